"""Content-addressed blob store: immutable files named by the hash of their bytes.

Layout under a store root ``R``::

    R/objects/ab/<digest>            a blob; ``ab`` is the digest's first two hex chars
    R/tmp/<random>.tmp               an in-flight write (swept when stale)
    R/quarantine/<digest>.<stamp>    a blob that failed verification, with a ``.reason`` file

A digest is the xxh3_128 hex digest of the bytes as stored, so writing the same
bytes twice is a no-op and two processes writing the same value cannot clash.

Why each write goes temp file -> flush -> fsync(file) -> rename -> fsync(dir):
a reader must never see a partial blob under its final name, and a blob must
be durable before the index row pointing at it commits (a crash may leave an
orphan blob or a stale temp file, never a row pointing at torn bytes). Writing
straight to the final path left torn files under kill -9; this order left none.

Why reads verify by default: a flipped byte in an Arrow IPC file reads back
without any error and returns wrong data. Only the content hash catches it, and
xxh3_128 over a memory-mapped file runs at page-cache speed (~10 GB/s).

Workers import this module, so it never imports duckdb; pyarrow is imported
only by the table methods.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import mmap
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import xxhash

from sterna.core.errors import SternaError

if TYPE_CHECKING:
    import pyarrow as pa

_HEX = frozenset("0123456789abcdef")
_DIGEST_LEN = 32
_COPY_CHUNK = 4 << 20  # put_file reads the source in 4 MiB chunks
_WRITE_BUFFER = 1 << 20  # coalesces Arrow's small metadata/padding writes


class BlobError(SternaError):
    """A blob cannot be written, read or moved (disk full, permissions, I/O error).

    ``digest`` is the blob's digest when known, ``path`` the file involved and
    ``errno`` the OS error number (None when the failure is not an OS error).
    """

    def __init__(
        self, message: str, *, digest: str = "", path: str = "", errno: int | None = None,
    ) -> None:
        super().__init__(message)
        self.digest = digest
        self.path = path
        self.errno = errno


class CorruptBlobError(BlobError):
    """A blob is missing, truncated, unreadable as its format, or does not hash to its address.

    The caller should quarantine it (``BlobStore.quarantine``) and recompute.
    """


@dataclass(frozen=True)
class StoredBlob:
    """A blob as written: its address and its size in bytes."""

    digest: str
    size: int


def is_digest(text: str) -> bool:
    """True if ``text`` is a blob address: 32 lowercase hex characters."""
    return len(text) == _DIGEST_LEN and _HEX.issuperset(text)


def _errno_name(exc: OSError) -> str:
    """``ENOSPC``-style name of an OSError's errno, for messages people can search."""
    if exc.errno is None:
        return type(exc).__name__
    return _errno.errorcode.get(exc.errno, f"errno {exc.errno}")


def _os_detail(exc: OSError) -> str:
    """``ENOSPC (No space left on device)``: the errno name and the OS's own words."""
    reason = exc.strerror or str(exc)
    return f"{_errno_name(exc)} ({reason})"


def _fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Persist a directory's entries, so a rename or mkdir in it survives a crash."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dir(directory: Path) -> None:
    """Create ``directory`` and missing parents, fsyncing each parent that gained an entry.

    Without the parent fsync a blob renamed into a freshly created prefix
    directory could vanish with that directory after a power loss.
    """
    try:
        os.mkdir(directory)
    except FileExistsError:
        return
    except FileNotFoundError:
        _make_dir(directory.parent)
        try:
            os.mkdir(directory)
        except FileExistsError:
            return
    _fsync_dir(directory.parent)


def _unlink_quietly(path: str | os.PathLike[str]) -> None:
    """Remove a temp file during cleanup; the original error matters more than this one."""
    with contextlib.suppress(OSError):
        os.unlink(path)


def _hash_file(path: str | os.PathLike[str]) -> str:
    """xxh3_128 of a file's content via mmap: no copy into Python memory."""
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return xxhash.xxh3_128_hexdigest(b"")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return xxhash.xxh3_128_hexdigest(mapped)


class _HashingSink:
    """Write-only file object that hashes every byte on its way to the temp file.

    Arrow's IPC writer hands over column buffers as zero-copy ``pyarrow.Buffer``
    objects, so a table costs a handful of calls here, not one per row, and the
    written file never has to be read back to learn its digest.
    """

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self._hasher = xxhash.xxh3_128()
        self.size = 0
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data)
        self._hasher.update(view)
        self._handle.write(view)
        self.size += view.nbytes
        return view.nbytes

    def flush(self) -> None:
        self._handle.flush()

    def close(self) -> None:
        """Arrow may close its stream; the store closes the real file itself."""
        self.closed = True

    def hexdigest(self) -> str:
        return self._hasher.hexdigest()


class BlobStore:
    """Immutable, content-addressed files under one root directory.

    Safe to share between processes and threads: every write goes through its
    own temp file and an atomic rename, and blobs are never modified in place
    (which is also why memory-mapped tables stay valid). Nothing is created on
    disk until the first write; reads of a store that does not exist find nothing.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._objects = self.root / "objects"
        self._tmp = self.root / "tmp"
        self._quarantine = self.root / "quarantine"

    def __repr__(self) -> str:
        return f"BlobStore({str(self.root)!r})"

    # -- addressing ---------------------------------------------------------------

    def path(self, digest: str) -> Path:
        """Final path of a blob: ``R/objects/<first two hex chars>/<digest>``.

        Raises ValueError for anything but 32 lowercase hex chars, so a bad
        digest can never address a file outside the store.
        """
        if not is_digest(digest):
            raise ValueError(f"not a blob digest (32 lowercase hex chars): {digest!r}")
        return self._objects / digest[:2] / digest

    def stat(self, digest: str) -> tuple[int, float] | None:
        """(size, modification time) of a blob, or None if it is not there."""
        try:
            found = os.stat(self.path(digest))
        except OSError:
            return None
        return found.st_size, found.st_mtime

    def exists(self, digest: str) -> bool:
        """True if a blob is stored under ``digest`` (its content is not checked)."""
        return os.path.isfile(self.path(digest))

    def _has_size(self, digest: str, size: int) -> bool:
        """True if the final file exists with the expected size (dedup check).

        Any OS error counts as "not there": the write that follows reports it properly.
        """
        try:
            return os.stat(self.path(digest)).st_size == size
        except OSError:
            return False

    # -- writing ------------------------------------------------------------------

    def put_bytes(self, data: bytes | memoryview) -> StoredBlob:
        """Store a byte string; a no-op (no write at all) if the blob is already there."""
        view = memoryview(data)
        if not view.c_contiguous:
            view = memoryview(view.tobytes())
        view = view.cast("B")
        digest = xxhash.xxh3_128_hexdigest(view)
        if self._has_size(digest, view.nbytes):
            return StoredBlob(digest, view.nbytes)
        return self._write(lambda sink: sink.write(view), what="blob", digest=digest)

    def put_file(self, source: str | os.PathLike[str]) -> StoredBlob:
        """Store a copy of a file's content, hashing while copying (one pass, streaming)."""
        try:
            src = open(source, "rb", buffering=0)  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise BlobError(
                f"cannot store file {os.fspath(source)!r}: {_os_detail(exc)}",
                path=os.fspath(source), errno=exc.errno,
            ) from exc

        def copy(sink: _HashingSink) -> None:
            chunk = memoryview(bytearray(_COPY_CHUNK))
            while count := src.readinto(chunk):
                sink.write(chunk[:count])

        with src:
            return self._write(copy, what=f"blob for file {os.fspath(source)!r}")

    def put_table(self, table: pa.Table) -> StoredBlob:
        """Store a table as an uncompressed Arrow IPC *file*, so it can be read memory-mapped.

        The IPC writer streams into a hashing sink over the temp file, so the
        digest is known when the last byte is written; nothing is read back.
        """
        import pyarrow as pa

        def write_ipc(sink: _HashingSink) -> None:
            with pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)

        return self._write(write_ipc, what="table blob")

    def _write(
        self, fill: Callable[[_HashingSink], object], *, what: str, digest: str = "",
    ) -> StoredBlob:
        """Run ``fill`` against a hashing temp file, make it durable and install it.

        On any OSError the temp file is removed and BlobError raised naming the
        errno, the blob (its digest once known) and the file; the store stays usable.
        """
        tmp: Path | None = None
        target = str(self.path(digest)) if digest else ""
        try:
            tmp, handle = self._open_temp()
            with handle:
                sink = _HashingSink(handle)
                fill(sink)
                handle.flush()
                os.fsync(handle.fileno())
            digest = sink.hexdigest()
            blob = StoredBlob(digest, sink.size)
            target = str(self.path(digest))
            self._install(tmp, blob)
        except BaseException as exc:
            if tmp is not None:
                _unlink_quietly(tmp)
            if not isinstance(exc, OSError):
                raise
            where = target or (f"temp file {tmp}" if tmp else f"store {self.root}")
            name = f"blob {digest}" if digest else what
            raise BlobError(
                f"cannot write {name} to {where}: {_os_detail(exc)}",
                digest=digest, path=target or str(tmp or self.root), errno=exc.errno,
            ) from exc
        return blob

    def _open_temp(self) -> tuple[Path, BinaryIO]:
        """Create ``R/tmp/<random>.tmp`` exclusively; lay out the store on first use."""
        tmp = self._tmp / f"{secrets.token_hex(12)}.tmp"
        try:
            return tmp, open(tmp, "xb", buffering=_WRITE_BUFFER)
        except FileNotFoundError:
            for directory in (self._objects, self._tmp, self._quarantine):
                _make_dir(directory)
            return tmp, open(tmp, "xb", buffering=_WRITE_BUFFER)

    def _install(self, tmp: Path, blob: StoredBlob) -> None:
        """Rename a synced temp file to its final name, then sync the directory.

        If the blob is already there with the right size (another writer won, or
        it was stored before) the temp file is dropped and the existing file kept.
        A file of the wrong size there is torn or foreign and gets replaced.
        """
        if self._has_size(blob.digest, blob.size):
            os.unlink(tmp)
            return
        final = self.path(blob.digest)
        _make_dir(final.parent)
        os.replace(tmp, final)
        _fsync_dir(final.parent)

    # -- reading ------------------------------------------------------------------

    def read_bytes(self, digest: str, *, verify: bool = True) -> bytes:
        """A blob's bytes; with ``verify`` (default) CorruptBlobError unless they hash to it."""
        path = self.path(digest)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise self._missing(digest, path) from exc
        except OSError as exc:
            raise self._unreadable(digest, path, exc) from exc
        if verify:
            self._check(digest, path, data)
        return data

    def open_table(self, digest: str, *, verify: bool = True) -> pa.Table:
        """A table blob, memory-mapped: zero-copy, its buffers live in the page cache.

        With ``verify`` the whole mapping is hashed before Arrow parses it, since
        Arrow itself returns flipped bytes without complaint. A blob that is not
        a readable IPC file raises CorruptBlobError even with ``verify=False``.
        """
        import pyarrow as pa

        path = self.path(digest)
        try:
            mapped = pa.memory_map(str(path))
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise self._missing(digest, path) from exc
        except OSError as exc:
            raise self._unreadable(digest, path, exc) from exc
        with mapped:  # the table's buffers keep the mapping alive after close
            buffer = mapped.read_buffer()
            if verify:
                self._check(digest, path, buffer)
            try:
                return pa.ipc.open_file(buffer).read_all()
            except (pa.ArrowInvalid, OSError) as exc:
                raise CorruptBlobError(
                    f"blob {digest} is not a readable Arrow IPC file ({exc}): {path}",
                    digest=digest, path=str(path),
                ) from exc

    def verify(self, digest: str) -> bool:
        """Re-hash a blob on disk: True if present and intact, False if missing or corrupt."""
        path = self.path(digest)
        try:
            return _hash_file(path) == digest
        except (FileNotFoundError, IsADirectoryError):
            return False
        except OSError as exc:
            raise self._unreadable(digest, path, exc) from exc

    def _check(self, digest: str, path: Path, data: bytes | pa.Buffer) -> None:
        """Raise CorruptBlobError unless ``data`` hashes to ``digest``."""
        actual = xxhash.xxh3_128_hexdigest(data)
        if actual != digest:
            size = len(data) if isinstance(data, bytes) else data.size
            raise CorruptBlobError(
                f"blob {digest} is corrupt: its {size} bytes hash to {actual}: {path}; "
                "quarantine it and recompute the value",
                digest=digest, path=str(path),
            )

    @staticmethod
    def _missing(digest: str, path: Path) -> CorruptBlobError:
        return CorruptBlobError(
            f"blob {digest} is missing: {path}; recompute the value",
            digest=digest, path=str(path), errno=_errno.ENOENT,
        )

    @staticmethod
    def _unreadable(digest: str, path: Path, exc: OSError) -> BlobError:
        return BlobError(
            f"cannot read blob {digest} at {path}: {_os_detail(exc)}",
            digest=digest, path=str(path), errno=exc.errno,
        )

    # -- maintenance ----------------------------------------------------------------

    def quarantine(self, digest: str, reason: str) -> Path | None:
        """Move a blob aside to ``R/quarantine/<digest>.<UTC stamp>`` with a ``.reason`` file.

        Keeps the bad bytes for inspection instead of deleting them, and frees
        the address so the value can be recomputed. Returns the new path, or
        None if the blob was not there (e.g. another process moved it first).
        """
        source = self.path(digest)
        if not source.is_file():
            return None
        now = time.time_ns()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now // 1_000_000_000))
        dest = self._quarantine / f"{digest}.{stamp}.{now % 1_000_000_000:09d}Z"
        try:
            _make_dir(self._quarantine)
            os.rename(source, dest)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BlobError(
                f"cannot quarantine blob {digest} to {dest}: {_os_detail(exc)}",
                digest=digest, path=str(source), errno=exc.errno,
            ) from exc
        try:
            Path(f"{dest}.reason").write_text(f"{reason}\n", encoding="utf-8")
        except OSError as exc:
            raise BlobError(
                f"quarantined blob {digest} to {dest} but cannot write its reason: "
                f"{_os_detail(exc)}",
                digest=digest, path=str(dest), errno=exc.errno,
            ) from exc
        return dest

    def delete(self, digest: str) -> int:
        """Remove a blob; returns the bytes freed (0 if it was not there)."""
        path = self.path(digest)
        try:
            size = os.stat(path).st_size
            os.unlink(path)
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise BlobError(
                f"cannot delete blob {digest} at {path}: {_os_detail(exc)}",
                digest=digest, path=str(path), errno=exc.errno,
            ) from exc
        return size

    def iter_digests(self) -> Iterator[str]:
        """Every stored blob's digest, in sorted order; stray files are ignored."""
        try:
            prefixes = sorted(os.listdir(self._objects))
        except FileNotFoundError:
            return
        for prefix in prefixes:
            if len(prefix) != 2 or not _HEX.issuperset(prefix):
                continue
            directory = self._objects / prefix
            try:
                names = sorted(os.listdir(directory))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for name in names:
                if name.startswith(prefix) and is_digest(name) and (directory / name).is_file():
                    yield name

    def sweep_tmp(self, older_than_s: float = 3600) -> int:
        """Remove in-flight files not modified for ``older_than_s`` seconds; returns the count.

        Such files are left by writers that crashed or were killed. A live
        writer touches its file on every write, so the default hour never
        catches one; ``older_than_s=0`` removes everything (only when no writer runs).
        """
        cutoff = time.time() - older_than_s
        try:
            entries = list(os.scandir(self._tmp))
        except FileNotFoundError:
            return 0
        removed = 0
        for entry in entries:
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                if entry.stat(follow_symlinks=False).st_mtime <= cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
