"""How a task travels to a worker: by name when a fresh process can import it, else by value.

A task defined at the top of an importable module is sent as (module,
qualified name) and imported in the worker, exactly as the driver imported
it. A task defined in ``__main__``, in a notebook, inside a function, or in a
file no fresh process could import (a test file loaded by path) is sent by
value with cloudpickle, its module's functions and classes with it. Either
way the bytes are made once per task and sent once per worker.
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import itertools
import os
import pickle
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..task import Task


class Payloads:
    """Each task's payload and a token naming it, made once per task object."""

    def __init__(self) -> None:
        self._known: weakref.WeakKeyDictionary[Task[..., Any], tuple[int, bytes]] = (
            weakref.WeakKeyDictionary())
        self._tokens = itertools.count(1)
        self._lock = threading.Lock()

    def of(self, task: Task[..., Any]) -> tuple[int, bytes]:
        """(token, payload): a worker that knows the token needs only the token."""
        with self._lock:
            known = self._known.get(task)
        if known is None:
            known = (next(self._tokens), task_payload(task))
            with self._lock:
                self._known[task] = known
        return known


def task_payload(task: Task[..., Any]) -> bytes:
    """Bytes that ``load_task`` turns back into ``task`` in another process."""
    module = getattr(task.fn, "__module__", "") or ""
    qualname = getattr(task.fn, "__qualname__", "")
    if "<locals>" not in qualname and _resolves(module, qualname, task) and importable(module):
        return pickle.dumps(("name", module, qualname))
    import cloudpickle

    if module not in ("__main__", "") and module in sys.modules and not importable(module):
        cloudpickle.register_pickle_by_value(sys.modules[module])
    _fix_versions(task)
    return cloudpickle.dumps(("value", task, task.fn.__code__.co_filename))


def _fix_versions(task: Task[..., Any]) -> None:
    """Compute the versions of the task and of the tasks it refers to, here in the driver.

    They travel inside the tasks, so a run a task starts in its worker keys the
    cache exactly as the driver does (a function sent by value could not be
    fingerprinted the same way there).
    """
    from sterna.cache.registry import task_version

    from ..task import Task

    fn = task.fn
    found = [task]
    names = getattr(fn.__code__, "co_names", ())
    found += [fn.__globals__.get(name) for name in names]
    found += [cell.cell_contents for cell in fn.__closure__ or () if _filled(cell)]
    for item in found:
        if isinstance(item, Task):
            task_version(item)


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def load_task(payload: bytes) -> Task[..., Any]:
    """The task a payload describes (imports its module when sent by name)."""
    kind, *rest = pickle.loads(payload)
    if kind == "value":
        task, filename = rest
        code = task.fn.__code__
        if code.co_filename != filename:  # tracebacks then show the task's file and lines
            task.fn.__code__ = code.replace(co_filename=filename)
        return task  # type: ignore[no-any-return]
    module, qualname = rest
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found  # type: ignore[no-any-return]


def _resolves(module: str, qualname: str, task: Task[..., Any]) -> bool:
    found: Any = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found is task


@functools.lru_cache(maxsize=512)
def importable(name: str) -> bool:
    """Whether a fresh process with this ``sys.path`` imports ``name`` from the same file."""
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    if name == "__main__" or spec is None or spec.name != name or not spec.origin:
        return False
    locations: list[str] | None = list(sys.path)
    found = None
    parts = name.split(".")
    for depth in range(1, len(parts) + 1):
        found = importlib.machinery.PathFinder.find_spec(".".join(parts[:depth]), locations)
        if found is None:
            return False
        locations = list(found.submodule_search_locations or [])
    if found is None or not found.origin:
        return False
    return os.path.realpath(found.origin) == os.path.realpath(spec.origin)
