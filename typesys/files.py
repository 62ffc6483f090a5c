"""``File`` and ``Directory``: paths whose identity is their content.

Flyte keys files by their remote path; two runs that write the same bytes to
different temp paths then miss each other's cache. Here a file is equal to
another file when its content is, and its digest (xxh3_128) is what the cache
will see. Digests are memoised per (size, mtime) so re-hashing an unchanged
file is free.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

from sterna.cache.fingerprint import digest_file, digest_parts


class _PathValue(os.PathLike):
    """Shared behaviour of File and Directory: a path plus a content digest."""

    __slots__ = ("_memo", "path")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if isinstance(path, _PathValue):
            path = path.path
        self.path: str = os.fspath(path)
        self._memo: tuple[object, str] | None = None

    def __fspath__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    @property
    def name(self) -> str:
        """The last component of the path."""
        return Path(self.path).name

    def exists(self) -> bool:
        """Whether the path exists and has the right kind (file or directory)."""
        raise NotImplementedError

    def _stamp(self) -> object:
        """A cheap value that changes whenever the content may have changed."""
        raise NotImplementedError

    def _compute_digest(self) -> str:
        raise NotImplementedError

    def digest(self) -> str:
        """Content digest; recomputed only when size or mtime changed."""
        stamp = self._stamp()
        if self._memo is None or self._memo[0] != stamp:
            self._memo = (stamp, self._compute_digest())
        return self._memo[1]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _PathValue)
        if self.path == other.path:
            return True
        try:
            return self.digest() == other.digest()
        except OSError:  # one side is missing: not the same content
            return False

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.digest()))


class File(_PathValue):
    """A file passed between tasks; equal to any file with the same bytes."""

    __slots__ = ()

    def exists(self) -> bool:
        return os.path.isfile(self.path)

    def open(self, mode: str = "rb", **kwargs: Any) -> IO[Any]:
        """Open the file (binary read by default)."""
        return open(self.path, mode, **kwargs)

    def read_bytes(self) -> bytes:
        return Path(self.path).read_bytes()

    def read_text(self, encoding: str = "utf-8") -> str:
        return Path(self.path).read_text(encoding=encoding)

    def _stamp(self) -> tuple[int, int]:
        stat = os.stat(self.path)
        return (stat.st_size, stat.st_mtime_ns)

    def _compute_digest(self) -> str:
        return digest_file(self.path)


class Directory(_PathValue):
    """A directory passed between tasks; its identity is its files' names and bytes."""

    __slots__ = ()

    def exists(self) -> bool:
        return os.path.isdir(self.path)

    def files(self) -> list[File]:
        """Every regular file below the directory, in a stable (sorted) order."""
        root = Path(self.path)
        return [File(p) for p in sorted(root.rglob("*")) if p.is_file()]

    def _stamp(self) -> object:
        stamps = []
        for file in self.files():
            stat = os.stat(file.path)
            stamps.append((file.path, stat.st_size, stat.st_mtime_ns))
        return tuple(stamps)

    def _compute_digest(self) -> str:
        root = Path(self.path)
        parts = [(Path(f.path).relative_to(root).as_posix(), f.digest()) for f in self.files()]
        return digest_parts(parts)
