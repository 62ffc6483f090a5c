"""A blob store on any pyarrow filesystem (``s3://bucket/prefix``, ``gs://...``, ``file://...``).

For a cluster: workers on every node write the blobs of the values they
make, and the driver, which alone keeps the index, records them. Same layout
and the same guarantees as the local ``BlobStore``: content-addressed
objects under ``objects/<ab>/<digest>``, each written to a temporary object
and moved into place, so a reader never sees half a blob; every read is
verified against the digest. Tables are read into memory (object stores
cannot be memory-mapped).

Connection options go in the URI as pyarrow accepts them, e.g.
``s3://bucket/prefix?endpoint_override=127.0.0.1:9000&scheme=http&region=us-east-1``;
credentials come from the usual environment (``AWS_ACCESS_KEY_ID``, ...).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import xxhash

from .blobs import BlobError, CorruptBlobError, StoredBlob, _HashingSink, is_digest

_COPY_CHUNK = 4 << 20


class FsBlobStore:
    """Immutable, content-addressed objects under a filesystem URI."""

    def __init__(self, uri: str) -> None:
        import pyarrow.fs as pafs

        self.uri = uri
        try:
            self.fs, root = pafs.FileSystem.from_uri(uri)
        except (OSError, ValueError) as exc:
            raise BlobError(f"cannot open blob store {uri!r}: {exc}") from exc
        self.root = root.rstrip("/")

    def __repr__(self) -> str:
        return f"FsBlobStore({self.uri!r})"

    def key(self, digest: str) -> str:
        """Where a blob lives in the filesystem."""
        if not is_digest(digest):
            raise ValueError(f"not a blob digest (32 lowercase hex chars): {digest!r}")
        return f"{self.root}/objects/{digest[:2]}/{digest}"

    def stat(self, digest: str) -> tuple[int, float] | None:
        """(size, modification time) of a blob, or None if it is not there."""
        import pyarrow.fs as pafs

        try:
            info = self.fs.get_file_info(self.key(digest))
        except OSError as exc:
            raise BlobError(f"cannot look up blob {digest} in {self.uri}: {exc}",
                            digest=digest) from exc
        if info.type != pafs.FileType.File:
            return None
        mtime = info.mtime.timestamp() if info.mtime is not None else time.time()
        return int(info.size or 0), mtime

    def exists(self, digest: str) -> bool:
        return self.stat(digest) is not None

    # -- writing ----------------------------------------------------------------
    def put_bytes(self, data: bytes | memoryview) -> StoredBlob:
        view = memoryview(data).cast("B")
        digest = xxhash.xxh3_128_hexdigest(view)
        if self.stat(digest) is not None:
            return StoredBlob(digest, view.nbytes)
        return self._write(lambda sink: sink.write(view), digest)

    def put_file(self, source: str | os.PathLike[str]) -> StoredBlob:
        def copy(sink: _HashingSink) -> None:
            with open(source, "rb") as handle:
                while chunk := handle.read(_COPY_CHUNK):
                    sink.write(chunk)

        return self._write(copy)

    def put_table(self, table: Any) -> StoredBlob:
        import pyarrow as pa

        def write_ipc(sink: _HashingSink) -> None:
            with pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)

        return self._write(write_ipc)

    def _write(self, fill: Callable[[_HashingSink], object], digest: str = "") -> StoredBlob:
        """Write through a hashing sink to a temporary object, then move it into place."""
        tmp = f"{self.root}/tmp/{os.getpid()}-{os.urandom(8).hex()}.tmp"
        try:
            self.fs.create_dir(f"{self.root}/tmp", recursive=True)
            with self.fs.open_output_stream(tmp) as stream:
                sink = _HashingSink(stream)
                fill(sink)
            blob = StoredBlob(sink.hexdigest(), sink.size)
            final = self.key(blob.digest)
            self.fs.create_dir(final.rsplit("/", 1)[0], recursive=True)
            self.fs.move(tmp, final)
        except OSError as exc:
            self._forget(tmp)
            raise BlobError(f"cannot write {digest or 'a blob'} to {self.uri}: {exc}",
                            digest=digest, path=tmp) from exc
        return blob

    def _forget(self, key: str) -> None:
        with contextlib.suppress(OSError):
            self.fs.delete_file(key)

    # -- reading ----------------------------------------------------------------
    def read_bytes(self, digest: str, *, verify: bool = True) -> bytes:
        key = self.key(digest)
        try:
            with self.fs.open_input_stream(key) as stream:
                data = stream.read()
        except FileNotFoundError as exc:
            raise CorruptBlobError(f"blob {digest} is missing: {self.uri}/{key}; recompute "
                                   "the value", digest=digest, path=key) from exc
        except OSError as exc:
            raise BlobError(f"cannot read blob {digest} from {self.uri}: {exc}",
                            digest=digest, path=key) from exc
        if verify and xxhash.xxh3_128_hexdigest(data) != digest:
            raise CorruptBlobError(f"blob {digest} is corrupt: {self.uri}/{key}; quarantine "
                                   "it and recompute the value", digest=digest, path=key)
        return bytes(data)

    def open_table(self, digest: str, *, verify: bool = True) -> Any:
        import pyarrow as pa

        data = self.read_bytes(digest, verify=verify)
        try:
            return pa.ipc.open_file(pa.py_buffer(data)).read_all()
        except (pa.ArrowInvalid, OSError) as exc:
            raise CorruptBlobError(f"blob {digest} is not a readable Arrow IPC file ({exc})",
                                   digest=digest, path=self.key(digest)) from exc

    def download(self, digest: str, target: str | os.PathLike[str]) -> None:
        """Copy a verified blob to a local file (for ``File`` and ``Directory`` values)."""
        data = self.read_bytes(digest)
        tmp = f"{os.fspath(target)}.{os.getpid()}.tmp"
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)

    def verify(self, digest: str) -> bool:
        try:
            self.read_bytes(digest)
        except CorruptBlobError:
            return False
        return True

    # -- maintenance ------------------------------------------------------------
    def quarantine(self, digest: str, reason: str) -> str | None:
        """Move a bad blob aside (with its reason) so the value can be recomputed."""
        if self.stat(digest) is None:
            return None
        dest = f"{self.root}/quarantine/{digest}.{time.time_ns()}"
        try:
            self.fs.create_dir(f"{self.root}/quarantine", recursive=True)
            self.fs.move(self.key(digest), dest)
            with self.fs.open_output_stream(f"{dest}.reason") as stream:
                stream.write(f"{reason}\n".encode())
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BlobError(f"cannot quarantine blob {digest}: {exc}", digest=digest) from exc
        return dest

    def delete(self, digest: str) -> int:
        found = self.stat(digest)
        if found is None:
            return 0
        self._forget(self.key(digest))
        return found[0]

    def iter_digests(self) -> Iterator[str]:
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(f"{self.root}/objects", recursive=True,
                                     allow_not_found=True)
        names = sorted(info.base_name for info in self.fs.get_file_info(selector)
                       if info.type == pafs.FileType.File)
        yield from (name for name in names if is_digest(name))

    def sweep_tmp(self, older_than_s: float = 3600) -> int:
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(f"{self.root}/tmp", allow_not_found=True)
        cutoff = time.time() - older_than_s
        removed = 0
        for info in self.fs.get_file_info(selector):
            if info.type == pafs.FileType.File and (
                    info.mtime is None or info.mtime.timestamp() <= cutoff):
                self._forget(info.path)
                removed += 1
        return removed
