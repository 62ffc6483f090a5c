"""The store: blobs plus the index, and the cache's view of both.

``Store`` turns typed output values into durable blobs (``save``), turns
stored outputs back into values (``load``, verified), and reads and writes
cache entries. Caching never breaks a run: a value that cannot be stored is
reported and left uncached, a blob that is missing or corrupt is quarantined
and reported as ``CacheMiss`` so the engine recomputes it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sterna.core.errors import SternaError, SternaWarning
from sterna.typesys.files import Directory, File
from sterna.typesys.types import SType

from . import codecs
from .blobs import BlobError, BlobStore, CorruptBlobError

if TYPE_CHECKING:
    from .fsblobs import FsBlobStore
    from .index import Index

_BULK_LIMIT = 20_000  # entries read at once per run; above that, keys are looked up one by one


class CacheMiss(SternaError):
    """A stored value could not be loaded (missing or corrupt blob); recompute it."""


@dataclass(frozen=True)
class StoredOutput:
    """Where one output value lives: its logical digest, blob, codec and size."""

    digest: str
    blob: str
    codec: str
    size: int
    name: str = ""  # original file or directory name, for File / Directory outputs

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "blob": self.blob, "codec": self.codec, "size": self.size,
                "name": self.name}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoredOutput:
        return cls(data["digest"], data["blob"], data["codec"], int(data["size"]),
                   data.get("name", ""))


@dataclass
class Prepared:
    """A value ready to be written: its codec and digest, and what remains to write."""

    codec: str
    digest: str
    payload: bytes | None = None
    table: Any = None
    stored: StoredOutput | None = None


@dataclass
class Entry:
    """A cache entry: the key, its components and the stored outputs."""

    key: str
    task: str
    components: dict[str, str]
    outputs: dict[str, StoredOutput]
    compute_s: float = 0.0
    code_components: dict[str, str] = field(default_factory=dict)


class Store:
    """Blob store and index under one home directory."""

    _open: dict[Path, Store] = {}

    def __init__(self, home: str | os.PathLike[str], blobs: str = "") -> None:
        self.home = Path(home)
        self.blobs_uri = blobs
        self.blobs: BlobStore | FsBlobStore
        if blobs and "://" in blobs and not blobs.startswith("file://"):
            from .fsblobs import FsBlobStore

            self.blobs = FsBlobStore(blobs)
        else:
            self.blobs = BlobStore(blobs.removeprefix("file://") if blobs else self.home)
        self._index: Index | None = None

    @property
    def index(self) -> Index:
        """The DuckDB index, opened on first use: workers only write blobs, never import duckdb."""
        if self._index is None:
            from .index import Index

            self._index = Index(self.home)
        return self._index

    @classmethod
    def at(cls, home: str | os.PathLike[str], blobs: str | None = None) -> Store:
        """The process-wide ``Store`` for a home (one per resolved path).

        ``blobs`` is where values go (default: configuration's ``blobs``, else
        the home itself): a folder, or a filesystem URI such as
        ``s3://bucket/prefix`` that every machine of a cluster can reach.
        """
        if blobs is None:
            from sterna.core.config import setting

            blobs = setting("blobs")
        path = Path(home).resolve()
        store = cls._open.get(path)
        if store is None or store.blobs_uri != blobs:
            store = cls._open[path] = cls(path, blobs)
        return store

    @contextmanager
    def session(self) -> Iterator[Any]:
        """An index session that first takes in the journaled runs of every process.

        For commands that read the record (``runs ls``, ``cache ls``, ...): this
        process's queued runs are written to the journal first, so what the
        session reads includes them; journal files are deleted only after the
        session has committed. A run's own lookup uses ``index.session()``
        directly, keeping ingestion off its path.
        """
        from sterna.core.journal import journal_for

        from .ingest import ingest, mark_abandoned

        with suppress(OSError):  # disk full or read-only: the records stay queued for later
            journal_for(self.home).write()
        with self.index.session() as con:
            files = ingest(con, self.home)
            mark_abandoned(con)
            yield con
        for path in files:
            path.unlink(missing_ok=True)

    # -- values -------------------------------------------------------------
    def save(self, stype: SType, value: Any) -> StoredOutput:
        """Encode and durably store one value; raises ``EncodeError`` or ``BlobError``."""
        return self.write(self.prepare(stype, value))

    def prepare(self, stype: SType, value: Any) -> Prepared:
        """Everything about a value that must happen now: its digest and its encoding.

        Values that a later task could still change in place (lists, dicts,
        files) are encoded or copied into the store here; only immutable data
        (an Arrow table, encoded bytes) is left for ``write``, which may then run
        in another thread while the next task computes.
        """
        codec = codecs.codec_for(stype, value)
        if codec == "arrow":
            from .tablehash import digest_table

            return Prepared(codec, digest_table(value), table=value)
        if codec == "file":
            blob = self.blobs.put_file(value.path)
            return Prepared(codec, codecs.digest_value(stype, value), stored=StoredOutput(
                codecs.digest_value(stype, value), blob.digest, codec, blob.size,
                Path(value.path).name))
        if codec == "dir":
            stored = self._save_directory(stype, value)
            return Prepared(codec, stored.digest, stored=stored)
        payload = codecs.encode_pickle(value) if codec == "pickle" else codecs.encode_json(
            stype, value)
        return Prepared(codec, codecs.digest_value(stype, value), payload=payload)

    def write(self, prepared: Prepared) -> StoredOutput:
        """Write a prepared value's blob durably (a no-op if ``prepare`` already did)."""
        if prepared.stored is not None:
            return prepared.stored
        if prepared.table is not None:
            blob = self.blobs.put_table(prepared.table)
        else:
            assert prepared.payload is not None
            blob = self.blobs.put_bytes(prepared.payload)
        return StoredOutput(prepared.digest, blob.digest, prepared.codec, blob.size)

    def _save_directory(self, stype: SType, value: Directory) -> StoredOutput:
        root = Path(value.path)
        manifest = {}
        size = 0
        for file in value.files():
            blob = self.blobs.put_file(file.path)
            manifest[Path(file.path).relative_to(root).as_posix()] = blob.digest
            size += blob.size
        listing = self.blobs.put_bytes(json.dumps(manifest, sort_keys=True).encode())
        return StoredOutput(codecs.digest_value(stype, value), listing.digest, "dir",
                            size + listing.size, root.name)

    def load(self, stype: SType, stored: StoredOutput) -> Any:
        """The value of a stored output, verified; ``CacheMiss`` if its blob is unusable."""
        try:
            return self._load(stype, stored)
        except CorruptBlobError as exc:
            self.blobs.quarantine(stored.blob, str(exc))
            warnings.warn(f"cache: blob {stored.blob} is unusable ({exc}); quarantined, "
                          "recomputing", SternaWarning, stacklevel=2)
            raise CacheMiss(str(exc)) from None

    def _load(self, stype: SType, stored: StoredOutput) -> Any:
        codec = stored.codec
        if codec == "arrow":
            from sterna.core.executors.shipping import remember

            table = self.blobs.open_table(stored.blob)
            if isinstance(self.blobs, BlobStore):  # handed on by path, not copied
                remember(table, str(self.blobs.path(stored.blob)))
            return table
        if codec == "file":
            return File(self._materialize_file(stored.blob, stored.name or stored.blob))
        if codec == "dir":
            return Directory(self._materialize_dir(stored))
        payload = self.blobs.read_bytes(stored.blob)
        if codec == "pickle":
            return codecs.decode_pickle(payload)
        return codecs.decode_json(stype, payload)

    def _materialize_file(self, blob: str, name: str, target: Path | None = None) -> Path:
        """A read-only copy (a hard link where possible) of a blob under its original name."""
        path = target or self.home / "files" / blob / name
        if not isinstance(self.blobs, BlobStore):  # a remote store: one verified download
            if not (path.is_file() and digest_of_file(path) == blob):
                path.parent.mkdir(parents=True, exist_ok=True)
                self.blobs.download(blob, path)
            return path
        if not self.blobs.verify(blob):
            raise CorruptBlobError(f"blob {blob} is missing or does not match its digest")
        if not self._intact(path, blob):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            try:
                os.link(self.blobs.path(blob), tmp)
            except OSError:
                shutil.copyfile(self.blobs.path(blob), tmp)
            os.replace(tmp, path)
        return path

    def _intact(self, path: Path, blob: str) -> bool:
        """Whether a file handed out earlier still holds exactly the (verified) blob.

        A hard link to the blob shares its bytes, which were just verified; a
        copy is re-hashed. Anything else (edited, replaced) is made again.
        """
        try:
            if os.path.samefile(path, self.blobs.path(blob)):
                return True
        except OSError:
            return False
        from .fingerprint import digest_file

        return digest_file(path) == blob

    def _materialize_dir(self, stored: StoredOutput) -> Path:
        root = self.home / "dirs" / stored.blob / (stored.name or "dir")
        manifest = json.loads(self.blobs.read_bytes(stored.blob))
        for relative, blob in manifest.items():
            self._materialize_file(blob, Path(relative).name, root / relative)
        root.mkdir(parents=True, exist_ok=True)
        for path in sorted(root.rglob("*"), reverse=True):  # drop what the manifest lacks
            relative = path.relative_to(root).as_posix()
            if path.is_file() and relative not in manifest:
                path.unlink()
            elif path.is_dir() and not any(k.startswith(relative + "/") for k in manifest):
                shutil.rmtree(path, ignore_errors=True)
        return root

    # -- entries ------------------------------------------------------------
    def read_entries(self, con: Any, task_versions: list[tuple[str, str]],
                     keys: list[str]) -> tuple[dict[str, Entry], bool]:
        """Entries for the given (task, cache version) pairs, in one query when few enough.

        Returns (entries by key, complete): when ``complete`` every entry of those
        tasks was read, so a key not found is a miss without asking again.
        """
        if not task_versions:
            return {}, True
        where = " OR ".join("(task = ? AND cache_version = ?)" for _ in task_versions)
        params = [p for pair in task_versions for p in pair]
        count = con.execute(f"SELECT count(*) FROM cache_entries WHERE {where}",
                            params).fetchone()[0]
        if count <= _BULK_LIMIT:
            from .index import rows

            found = rows(con, f"SELECT * FROM cache_entries WHERE {where}", params)
            return {row["cache_key"]: _entry(row) for row in found}, True
        return self.lookup(con, keys), False

    def lookup(self, con: Any, keys: list[str]) -> dict[str, Entry]:
        """Entries for specific keys."""
        if not keys:
            return {}
        marks = ", ".join("?" for _ in keys)
        from .index import rows

        found = rows(con, f"SELECT * FROM cache_entries WHERE cache_key IN ({marks})", keys)
        return {row["cache_key"]: _entry(row) for row in found}

    def write_entry(self, con: Any, entry: Entry, *, project: str, domain: str,
                    task_version: str, cache_version: str, run_id: str) -> None:
        """Insert or replace a cache entry and its blobs (blobs are durable already)."""
        now = _now()
        outputs = {n: o.to_json() for n, o in entry.outputs.items()}
        components = {**entry.components, "code": entry.code_components}
        size = sum(o.size for o in entry.outputs.values())
        con.execute("DELETE FROM cache_entries WHERE cache_key = ?", [entry.key])
        con.execute(
            "INSERT INTO cache_entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            [entry.key, project, domain, entry.task, task_version, cache_version,
             json.dumps(components, sort_keys=True), json.dumps(outputs, sort_keys=True), size,
             entry.compute_s, run_id, now, now])
        for out in entry.outputs.values():
            con.execute("INSERT INTO blobs VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        [out.blob, out.size, out.codec, now])

    def touch(self, con: Any, keys: list[str]) -> None:
        """Count hits and refresh ``last_used`` (for ``cache ls`` and ``gc``)."""
        if keys:
            marks = ", ".join("?" for _ in keys)
            con.execute(f"UPDATE cache_entries SET hits = hits + 1, last_used = ? "
                        f"WHERE cache_key IN ({marks})", [_now(), *keys])


def digest_of_file(path: Path) -> str:
    from .fingerprint import digest_file

    return digest_file(path)


def _entry(row: dict[str, Any]) -> Entry:
    components = json.loads(row["components"])
    code = components.pop("code", {}) or {}
    outputs = {n: StoredOutput.from_json(o) for n, o in json.loads(row["outputs"]).items()}
    return Entry(row["cache_key"], row["task"], components, outputs, row["compute_s"] or 0.0,
                 code)


def _now() -> Any:
    import datetime

    return datetime.datetime.fromtimestamp(time.time())


__all__ = ["BlobError", "CacheMiss", "Entry", "Store", "StoredOutput"]
