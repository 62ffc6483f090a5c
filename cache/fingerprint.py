"""Content fingerprints: xxh3_128 hex digests of bytes and files.

xxhash is imported on first use so ``import sterna`` stays light.
"""

from __future__ import annotations

import os

_CHUNK = 1 << 20


def digest_bytes(data: bytes | memoryview) -> str:
    """xxh3_128 hex digest of a byte string."""
    import xxhash

    return xxhash.xxh3_128_hexdigest(data)


def digest_file(path: str | os.PathLike[str]) -> str:
    """xxh3_128 hex digest of a file's content, streamed in 1 MiB chunks."""
    import xxhash

    hasher = xxhash.xxh3_128()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def digest_parts(parts: list[tuple[str, str]]) -> str:
    """Digest of an ordered list of (name, digest) pairs, e.g. a directory's files."""
    import xxhash

    hasher = xxhash.xxh3_128()
    for name, digest in parts:
        hasher.update(name.encode("utf-8") + b"\0" + digest.encode("ascii") + b"\n")
    return hasher.hexdigest()
