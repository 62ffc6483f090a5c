"""Values between processes: pickles, with Arrow tables as memory-mapped files.

A table is never pickled. The pickler replaces it by the path of an Arrow
IPC file holding it: the blob it was loaded from, the file it arrived in, or
a new file under the run's scratch folder. The receiving side maps that file,
so the table's buffers are file-backed pages shared through the page cache:
handing a 1 GB table to another process neither copies it nor adds to the
receiver's anonymous memory.

Plain pickle is tried first (fast); values it cannot handle (classes and
functions defined in ``__main__`` or inside functions) go through cloudpickle.
"""

from __future__ import annotations

import functools
import io
import os
import pickle
import sys
import weakref
from typing import Any

_mapped: dict[int, tuple[weakref.ref[Any], str]] = {}  # id(table) -> (table, its file)


def remember(table: Any, path: str) -> None:
    """Note that ``table`` is the content of the Arrow IPC file ``path``."""
    key = id(table)
    _mapped[key] = (weakref.ref(table, lambda _: _mapped.pop(key, None)), path)


def file_of(table: Any) -> str | None:
    """The file a table was mapped from (or written to), if this process knows one still there.

    A run's scratch folder is deleted when the run ends; a table the caller keeps
    (a workflow input used again) is then written anew by the next run.
    """
    known = _mapped.get(id(table))
    if known is not None and known[0]() is table and os.path.exists(known[1]):
        return known[1]
    return None


def open_mapped(path: str) -> Any:
    """Map an Arrow IPC file written by sterna (no copy; the bytes stay in the page cache)."""
    import pyarrow as pa

    with pa.memory_map(path) as mapped:
        table = pa.ipc.open_file(mapped).read_all()
    remember(table, path)
    return table


def write_scratch(table: Any, folder: str) -> str:
    """Write a table as an uncompressed Arrow IPC file under ``folder``; return its path.

    Not fsynced: a scratch file lives only as long as its run, and a crash loses
    the run anyway.
    """
    import pyarrow as pa

    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{os.getpid()}-{os.urandom(8).hex()}.arrow")
    tmp = path + ".tmp"
    with pa.OSFile(tmp, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    os.replace(tmp, path)
    remember(table, path)
    return path


class _Mixin:
    scratch: str

    def persistent_id(self, obj: Any) -> Any:
        pa = sys.modules.get("pyarrow")
        if pa is None or type(obj) is not pa.Table:
            return None
        path = file_of(obj)
        if path is None:
            path = write_scratch(obj, self.scratch)
        return ("arrow", path)


class _Pickler(_Mixin, pickle.Pickler):
    def __init__(self, file: io.BytesIO, scratch: str) -> None:
        super().__init__(file, protocol=5)
        self.scratch = scratch


class _Unpickler(pickle.Unpickler):
    def persistent_load(self, pid: Any) -> Any:
        kind, path = pid
        if kind != "arrow":  # pragma: no cover - only sterna writes these
            raise pickle.UnpicklingError(f"unknown persistent reference {kind!r}")
        return open_mapped(path)


def dumps(value: Any, scratch: str) -> bytes:
    """Pickle ``value``; tables go to files under ``scratch`` unless they have one."""
    buffer = io.BytesIO()
    try:
        _Pickler(buffer, scratch).dump(value)
    except (pickle.PicklingError, AttributeError, TypeError):
        buffer = io.BytesIO()
        pickler = _cloud_pickler()(buffer, protocol=5)
        pickler.scratch = scratch
        pickler.dump(value)
    return buffer.getvalue()


@functools.cache
def _cloud_pickler() -> type:
    """The cloudpickle variant of the pickler (cloudpickle imported, the class made, once)."""
    import cloudpickle

    class _CloudPickler(_Mixin, cloudpickle.Pickler):
        pass

    return _CloudPickler


def loads(data: bytes) -> Any:
    """Unpickle what ``dumps`` made, mapping every table from its file."""
    return _Unpickler(io.BytesIO(data)).load()
