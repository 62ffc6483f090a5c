"""What the engine hands an executor, and what comes back.

The engine decides *what* runs (cache lookups, retries, admission, records);
an executor only decides *where*: ``submit(call)`` returns a future of one
``Outcome`` per item. A ``Call`` is one attempt of one or more items of the
same task (a batch of map items shares one round trip to a worker). Every
executor runs an item through ``run_item``, so the same checks, timeouts and
environment handling hold in the driver, in a worker process and in a Ray
actor.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sterna.typesys.check import summarize

from ..errors import SternaError, TaskFailedError, TaskTimeoutError
from ..guard import Expired, call_guarded

if TYPE_CHECKING:
    from concurrent.futures import Future

    from sterna.cache.store import StoredOutput

    from ..task import Task


@dataclass(slots=True)
class Item:
    """One call of the task: its checked inputs, and whether its outputs go to the cache.

    Workers on the store's machine (worker processes, Ray actors on the
    driver's node) write the blobs of a cached call themselves; elsewhere they
    return the values and the driver stores them.
    """

    ref: Any  # the engine's handle for this item (never looked at by executors)
    inputs: dict[str, Any]
    store: bool = False


@dataclass(slots=True)
class Call:
    """One attempt of each of ``items``, all of ``task``, in one environment.

    ``environment`` holds the task's variables plus any the engine adds for
    this attempt (``CUDA_VISIBLE_DEVICES`` for the GPUs it was given).
    ``home`` is the store root, where workers write output blobs and tables.
    """

    task: Task[..., Any]
    items: list[Item]
    timeout: float | None
    environment: Mapping[str, str]
    home: str
    scratch: str = ""  # folder for tables handed between processes in this run
    gpus: tuple[int, ...] = ()
    blobs: str = ""  # where blobs go when not under ``home`` (a folder or a URI)
    settings: dict[str, str] = field(default_factory=dict)  # the driver's configuration


@dataclass(slots=True)
class Outcome:
    """The result of one item's attempt.

    On success ``outputs`` holds the checked outputs by name and, for cached
    calls run away from the driver, ``stored`` the blobs written for them. On
    failure ``error`` is a one-line text, ``exception`` the exception when it
    could travel, ``trace`` the task's formatted traceback, and ``retryable``
    False for failures a retry cannot fix (a wrong output type).
    """

    ok: bool
    start: float
    end: float
    outputs: dict[str, Any] | None = None
    stored: dict[str, StoredOutput] | None = None
    store_s: float = 0.0
    error: str = ""
    exception: BaseException | None = None
    trace: str = ""
    retryable: bool = True
    timed_out: bool = False
    lost: bool = False  # the worker died or was stopped while running it


class Executor(Protocol):
    """Where calls run. ``slots`` bounds how many calls the engine keeps in flight."""

    name: str

    def slots(self) -> int:
        """How many calls may be in flight at once."""

    def submit(self, call: Call) -> Future[list[Outcome]]:
        """Start one attempt of every item in ``call``; the future holds their outcomes."""

    def cancel_all(self) -> None:
        """Stop every call in flight (Ctrl-C, or a failed run): workers are stopped."""


@dataclass
class Capacity:
    """What a machine (or cluster node) offers: cores, bytes of memory, GPU ids."""

    cpu: float
    mem: int
    gpus: tuple[int, ...] = ()
    extra: dict[str, float] = field(default_factory=dict)


def is_remote(value: Any) -> bool:
    """Whether a value was left where it was made (Ray's object store), to fetch when needed."""
    return hasattr(type(value), "sterna_fetch")


def holds_remote(value: Any) -> bool:
    """Whether a value is, or directly holds, a remote value (see ``fetch``)."""
    if is_remote(value):
        return True
    if type(value) in (list, tuple):
        return any(holds_remote(v) for v in value)
    if type(value) is dict:
        return any(holds_remote(v) for v in value.values())
    return False


def fetch(value: Any) -> Any:
    """A value itself: remote values fetched, also inside lists, tuples and dicts."""
    if is_remote(value):
        return value.sterna_fetch()
    if type(value) in (list, tuple) and any(is_remote(v) or type(v) in (list, tuple, dict)
                                            for v in value):
        return type(value)(fetch(v) for v in value)
    if type(value) is dict and any(is_remote(v) or type(v) in (list, tuple, dict)
                                   for v in value.values()):
        return {k: fetch(v) for k, v in value.items()}
    return value


def run_item(task: Task[..., Any], item: Item, *, timeout: float | None,
             environment: Mapping[str, str]) -> Outcome:
    """Run one attempt of one item: call the function, check its outputs.

    Exceptions of the task become a failed ``Outcome``; ``KeyboardInterrupt``
    passes through (the run is being stopped).
    """
    start = time.time()
    try:
        if timeout or environment:
            value = call_guarded(task.fn, item.inputs, timeout=timeout, environment=environment)
        else:
            value = task.fn(**item.inputs)
    except KeyboardInterrupt:
        raise
    except (Exception, SystemExit, Expired) as exc:
        # SystemExit too: a task calling sys.exit() (argparse does) fails, not the process.
        return Outcome(False, start, time.time(), error=error_text(exc, timeout), exception=exc,
                       trace=task_traceback(exc), timed_out=isinstance(exc, Expired))
    try:
        outputs = task.check_outputs(value)
    except SternaError as exc:
        return Outcome(False, start, time.time(), error=str(exc), exception=exc,
                       retryable=False)
    return Outcome(True, start, time.time(), outputs=outputs)


def error_text(exc: BaseException, timeout: float | None) -> str:
    """One line describing a failed attempt."""
    if isinstance(exc, Expired):
        return f"timed out after {timeout:g} s"
    return f"{type(exc).__name__}: {exc}"


def task_traceback(exc: BaseException) -> str:
    """The exception's traceback without sterna's own frames in front of the task's."""
    import os

    tb = exc.__traceback__
    sterna_core = os.path.dirname(os.path.dirname(__file__))
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(sterna_core):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def failure_of(node_id: str, task: Task[..., Any], inputs: dict[str, Any], outcome: Outcome,
               attempts: int) -> SternaError:
    """The error a failed call raises: the task, its inputs, the cause and the traceback."""
    cause = outcome.exception
    if isinstance(cause, SternaError) and not outcome.retryable:
        return cause  # a wrong output type: the type error says it all
    summary = {name: summarize(value) for name, value in inputs.items()}
    shown = ", ".join(f"{k}={v}" for k, v in summary.items()) or "no inputs"
    tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
    if outcome.timed_out:
        return TaskTimeoutError(
            f"{task.label} (node {node_id!r}) timed out after {task.config.timeout:g} s "
            f"({tries}); inputs: {shown}", task=task.name, node=node_id, attempts=attempts,
            inputs=summary, traceback=outcome.trace)
    error = TaskFailedError(
        f"{task.label} (node {node_id!r}) failed after {tries}: {outcome.error}; "
        f"inputs: {shown}", task=task.name, node=node_id, attempts=attempts, inputs=summary,
        traceback=outcome.trace)
    error.__cause__ = cause
    error.__suppress_context__ = True
    return error
