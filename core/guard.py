"""Run a task function in-process with its timeout and environment variables.

In the main thread a timeout is a ``SIGALRM`` timer whose handler raises
inside the task, so the task is really stopped (pure Python code and
``time.sleep`` are interrupted; a long C call is interrupted when it returns).
The exception is a ``BaseException`` so a task's own ``except Exception``
cannot swallow it. Off the main thread, where signals cannot be used, the task
runs in a helper thread that is abandoned on timeout.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any


class Expired(BaseException):
    """Raised inside a task whose timeout ran out (internal)."""


def call_guarded(fn: Callable[..., Any], kwargs: dict[str, Any], *, timeout: float | None,
                 environment: Mapping[str, str]) -> Any:
    """Call ``fn(**kwargs)`` with ``environment`` set and ``timeout`` enforced."""
    with _environment(environment):
        if not timeout:
            return fn(**kwargs)
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
            return _call_with_alarm(fn, kwargs, timeout)
        return _call_in_thread(fn, kwargs, timeout)


@contextmanager
def _environment(environment: Mapping[str, str]) -> Iterator[None]:
    if not environment:
        yield
        return
    saved = {key: os.environ.get(key) for key in environment}
    os.environ.update(environment)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _on_alarm(signum: int, frame: Any) -> None:
    raise Expired()


def _call_with_alarm(fn: Callable[..., Any], kwargs: dict[str, Any], timeout: float) -> Any:
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, timeout)
    started = time.monotonic()
    try:
        return fn(**kwargs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay > 0:  # give back a timer someone else had set (nested runs, test tools)
            left = outer_delay - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3), outer_interval)


def _call_in_thread(fn: Callable[..., Any], kwargs: dict[str, Any], timeout: float) -> Any:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn(**kwargs)
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    worker = threading.Thread(target=target, daemon=True, name="sterna-task")
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise Expired()
    if "error" in box:
        raise box["error"]
    return box.get("value")
