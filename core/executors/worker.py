"""The worker side: run calls sent by the driver, one at a time, in the main thread.

Used by worker processes (``main``) and by Ray actors (``run_call``). A
worker never opens the index: for a cached call it writes the outputs' blobs
(content-addressed, so a duplicate is harmless) and returns where they are;
the driver records the entry. Tasks run in the main thread, so a timeout is a
``SIGALRM`` that stops the task; the driver kills the worker if even that fails.
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from .base import Item, Outcome, run_item

if TYPE_CHECKING:
    from sterna.cache.store import Store

    from ..task import Task

_stores: dict[str, Store] = {}
_PLAIN = (int, float, str, bytes, bool, type(None))  # always picklable


def run_call(task: Task[..., Any], items: list[Item], *, timeout: float | None,
             environment: dict[str, str], home: str, blobs: str = "") -> list[Outcome]:
    """Run one attempt of each item; store the outputs of cached ones."""
    outcomes = []
    for item in items:
        try:
            outcome = run_item(task, item, timeout=timeout, environment=environment)
        except KeyboardInterrupt:  # raised by the task itself: a failure of that task
            now = time.time()
            outcome = Outcome(False, now, now, error="KeyboardInterrupt", retryable=False)
        if outcome.ok and item.store:
            store_outputs(task, outcome, home, blobs)
        outcomes.append(outcome)
    return outcomes


def store_outputs(task: Task[..., Any], outcome: Outcome, home: str, blobs: str = "") -> None:
    """Write a cached call's outputs as blobs; on any problem leave it to the driver.

    The driver stores what a worker could not (and warns if it cannot either),
    so a full disk or a store this worker cannot reach (credentials it was not
    started with) costs speed, never a result.
    """
    from sterna.cache.blobs import BlobStore
    from sterna.cache.codec_base import EncodeError
    from sterna.cache.store import Store

    from .shipping import remember

    store = _stores.get(home + "\0" + blobs)
    if store is None:
        store = _stores[home + "\0" + blobs] = Store(home, blobs)
    began = time.perf_counter()
    assert outcome.outputs is not None
    try:
        stored = {}
        for name, value in outcome.outputs.items():
            prepared = store.prepare(task.interface.outputs[name], value)
            stored[name] = store.write(prepared)
            if prepared.codec == "arrow" and isinstance(store.blobs, BlobStore):
                remember(value, str(store.blobs.path(stored[name].blob)))  # sent as that file
    except EncodeError as exc:  # as in the driver: the task fails, nothing is cached
        outcome.ok, outcome.retryable, outcome.outputs = False, False, None
        outcome.error = f"an output cannot be stored: {exc}"
        return
    except Exception:  # the driver retries the store and reports it
        return
    outcome.stored = stored
    outcome.store_s = time.perf_counter() - began


def without_stray_exceptions(outcomes: list[Outcome]) -> list[Outcome]:
    """Drop exceptions the driver could not unpickle (their text and traceback stay)."""
    for outcome in outcomes:
        if outcome.exception is not None and not _round_trips(outcome.exception):
            outcome.exception = None
    return outcomes


def refuse_unsendable(outcomes: list[Outcome], cached: list[bool], where: str,
                      ) -> list[Outcome]:
    """Fail calls whose outputs cannot be pickled, saying so, before the return does.

    Tables are left to the transport (they are sent as Arrow); other values are
    tried with cloudpickle, which is what carries them.
    """
    import cloudpickle

    pa = sys.modules.get("pyarrow")
    for outcome, is_cached in zip(outcomes, cached, strict=True):
        rest = [v for v in (outcome.outputs or {}).values()
                if type(v) not in _PLAIN and (pa is None or not isinstance(v, pa.Table))]
        if not outcome.ok or not rest:
            continue
        try:
            cloudpickle.dumps(rest)
        except Exception as exc:
            outcome.ok, outcome.retryable, outcome.outputs = False, False, None
            reason = f"{type(exc).__name__}: {exc}"
            outcome.error = (f"an output cannot be stored: {reason}" if is_cached else
                             f"its outputs cannot be sent back from the {where}: {reason}")
    return outcomes


def sendable(outcomes: list[Outcome], scratch: str) -> bytes:
    """Pickle outcomes for the driver; what cannot travel is described instead."""
    from . import shipping

    without_stray_exceptions(outcomes)
    try:
        return shipping.dumps(outcomes, scratch)
    except Exception:  # narrowed below, outcome by outcome
        pass
    for outcome in outcomes:
        if outcome.outputs is not None and not _travels(outcome.outputs, scratch):
            outcome.ok, outcome.retryable = False, False
            outcome.error = ("its outputs cannot be sent back from the worker process: "
                             f"{_why(outcome.outputs, scratch)}")
            outcome.outputs = outcome.stored = None
    return shipping.dumps(outcomes, scratch)


def _round_trips(exc: BaseException) -> bool:
    """Whether an exception unpickles on the other side (custom ``__init__``s often do not)."""
    from . import shipping

    try:
        shipping.loads(shipping.dumps(exc, ""))
    except Exception:  # then only its text travels
        return False
    return True


def _travels(value: Any, scratch: str) -> bool:
    return not _why(value, scratch)


def _why(value: Any, scratch: str) -> str:
    from . import shipping

    try:
        shipping.dumps(value, scratch)
    except Exception as exc:  # reported as text
        return f"{type(exc).__name__}: {exc}"
    return ""


def main() -> None:
    """Serve calls over two pipes until the driver closes them."""
    from multiprocessing.connection import Connection

    from .. import config
    from . import shipping
    from .payload import load_task

    incoming = Connection(int(sys.argv[1]), writable=False)
    outgoing = Connection(int(sys.argv[2]), readable=False)
    setup = pickle.loads(incoming.recv_bytes())
    sys.path[:] = setup["sys_path"]
    sys.argv[:] = setup["argv"]  # a task reading sys.argv sees the driver's, as in serial
    tasks: dict[int, Task[..., Any] | str] = {}
    while True:
        try:
            message = incoming.recv_bytes()
        except (EOFError, OSError):
            return
        kind, token, count, body = pickle.loads(message)
        if kind == "task":
            tasks[token] = _load(body, load_task)
            continue
        task = tasks[token]
        try:
            (inputs, stores, timeout, environment, home, scratch, blobs,
             settings) = shipping.loads(body)
        except Exception as exc:  # e.g. a table file that is gone: the call fails, not us
            _reply(outgoing, shipping.dumps([_unreadable(exc)] * count, ""))
            continue
        items = [Item(None, values, store) for values, store in zip(inputs, stores, strict=True)]
        if isinstance(task, str):  # the task could not be loaded here
            now = time.time()
            outcomes = [Outcome(False, now, now, error=task, retryable=False) for _ in items]
        else:
            config.apply(settings)
            if timeout:
                _reply(outgoing, b"S")  # the driver times the call from here
            outcomes = run_call(task, items, timeout=timeout, environment=environment,
                                home=home, blobs=blobs)
        _reply(outgoing, sendable(outcomes, scratch))


def _unreadable(exc: Exception) -> Outcome:
    now = time.time()
    return Outcome(False, now, now, retryable=False,
                   error=f"its inputs cannot be read in the worker process: "
                         f"{type(exc).__name__}: {exc}")


def _load(payload: bytes, load_task: Any) -> Any:
    try:
        return load_task(payload)
    except Exception as exc:  # every call of the task will report it
        return (f"the task cannot be loaded in a worker process "
                f"(pid {os.getpid()}): {type(exc).__name__}: {exc}")


def _reply(outgoing: Connection, data: bytes) -> None:
    try:
        outgoing.send_bytes(data)
    except (BrokenPipeError, OSError):  # the driver is gone
        sys.exit(0)
