"""The process executor: a pool of worker processes that survives any one of them dying.

Workers are fresh interpreters (``sys.executable`` started anew, never a
fork of the driver, so no DuckDB connection or lock is inherited). Each talks
to the driver over its own pair of pipes and runs one call at a time; a
collector thread reads results and completes futures. When a worker dies
(segfault, ``kill -9``, out of memory) only the call it ran is lost: the
engine retries or fails that call, and a new worker takes the dead one's
place. A call that outlives its timeout (plus a grace period for the worker's
own alarm) has its worker killed, so the task really stops.

``concurrent.futures.ProcessPoolExecutor`` is not used because one dead
worker breaks its whole pool, and it cannot stop a single running call.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from ..admission import cores
from . import shipping
from .base import Call, Outcome
from .payload import Payloads

_GRACE_S = 2.0  # after a timeout, how long the worker's own alarm gets before a kill
_BOOT = "from sterna.core.executors.worker import main; main()"
_STARTED = b"S"  # a worker's word that a call with a timeout begins now


@dataclass(slots=True)
class _Busy:
    future: Future[list[Outcome]]
    items: int
    start: float
    deadline: float | None
    timeout: float | None


class _Worker:
    """One worker process and the driver's ends of its pipes."""

    def __init__(self) -> None:
        to_worker, self_in = os.pipe()
        self_out, from_worker = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT, str(to_worker), str(from_worker)],
            pass_fds=(to_worker, from_worker), stdin=subprocess.DEVNULL,
            start_new_session=True)  # Ctrl-C reaches the driver, which stops the workers
        os.close(to_worker)
        os.close(from_worker)
        self.send = Connection(self_in, readable=False)
        self.recv = Connection(self_out, writable=False)
        self.tasks: set[int] = set()
        self.gpus: tuple[int, ...] | None = None  # GPUs it was first given (CUDA stays bound)
        self.busy: _Busy | None = None
        self._killed: str | None = None
        self._kill_lock = threading.Lock()
        self.send.send_bytes(pickle.dumps({"sys_path": list(sys.path), "argv": list(sys.argv)}))

    def kill(self) -> str:
        """Stop the process now; return how it ended (safe to call twice, from two threads)."""
        with self._kill_lock:
            if self._killed is None:
                self._killed = self._stop()
            return self._killed

    def _stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
        for end in (self.send, self.recv):
            with contextlib.suppress(OSError):
                end.close()
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not ignorable
            return "did not stop"
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exited with status {code}"


class ProcessPool:
    """Worker processes, reused across runs until the driver exits."""

    name = "process"

    def __init__(self, size: int) -> None:
        self.size = size
        self.workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._payloads = Payloads()
        wake_read, wake_write = os.pipe()
        self._wake_read = Connection(wake_read, writable=False)
        self._wake_write = Connection(wake_write, readable=False)
        self._closed = False
        self._collector = threading.Thread(target=self._collect, daemon=True,
                                           name="sterna-process-pool")
        self._collector.start()

    def slots(self) -> int:
        return self.size

    # -- submitting -------------------------------------------------------------
    def submit(self, call: Call) -> Future[list[Outcome]]:
        future: Future[list[Outcome]] = Future()
        try:
            token, payload = self._payloads.of(call.task)
            body = shipping.dumps(([item.inputs for item in call.items],
                                   [item.store for item in call.items], call.timeout,
                                   dict(call.environment), call.home, call.scratch,
                                   call.blobs, call.settings),
                                  call.scratch)
        except Exception as exc:  # the call fails, with the reason
            future.set_result(_failed(call, f"it cannot be sent to a worker process: "
                                            f"{type(exc).__name__}: {exc}"))
            return future
        now = time.time()
        with self._lock:
            worker = self._idle_worker(call.gpus)
            # The backstop deadline is set when the worker says the call started: a fresh
            # worker's start and the first import of the task do not count.
            worker.busy = _Busy(future, len(call.items), now, None, call.timeout)
            try:
                if token not in worker.tasks:
                    worker.send.send_bytes(pickle.dumps(("task", token, 0, payload)))
                    worker.tasks.add(token)
                worker.send.send_bytes(pickle.dumps(("call", token, len(call.items), body)))
            except OSError:  # it died while idle: the collector reports the call as lost
                pass
        self._wake_write.send_bytes(b"")
        return future

    def _idle_worker(self, gpus: tuple[int, ...]) -> _Worker:
        """An idle worker; one that has used other GPUs is replaced (CUDA binds at start)."""
        for dead in [w for w in self.workers if w.busy is None and w.proc.poll() is not None]:
            self.workers.remove(dead)  # died while idle: replaced before it is given a call
            dead.kill()
        idle = [w for w in self.workers if w.busy is None]
        if len(self.workers) < self.size and (gpus or not idle):
            self._start_all()
            idle = [w for w in self.workers if w.busy is None]
        want = gpus or None
        for worker in sorted(idle, key=lambda w: (w.gpus != want, w.gpus is not None)):
            if not gpus or worker.gpus in (None, gpus):
                worker.gpus = worker.gpus or want
                return worker
        old = idle[0]
        old.kill()
        self.workers.remove(old)
        fresh = _Worker()
        fresh.gpus = want
        self.workers.append(fresh)
        return fresh

    def _start_all(self) -> None:
        while len(self.workers) < self.size:  # all at once: they boot in parallel
            self.workers.append(_Worker())

    # -- collecting -------------------------------------------------------------
    def _collect(self) -> None:
        while not self._closed:
            with self._lock:
                busy = {w.recv: w for w in self.workers if w.busy is not None}
                deadlines = [w.busy.deadline for w in busy.values()
                             if w.busy is not None and w.busy.deadline is not None]
            wait_s = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            try:
                ready = wait([self._wake_read, *busy], timeout=wait_s)
            except (OSError, ValueError):  # a worker was replaced meanwhile
                continue
            for end in ready:
                if end is self._wake_read:
                    self._wake_read.recv_bytes()
                else:
                    self._receive(busy[end])  # type: ignore[index]
            self._expire()

    def _receive(self, worker: _Worker) -> None:
        with self._lock:
            if worker not in self.workers:  # stopped meanwhile (Ctrl-C): nothing to collect
                return
        try:
            data = worker.recv.recv_bytes()
        except (EOFError, OSError):
            self._lose(worker, timed_out=False)
            return
        if data == _STARTED:
            with self._lock:
                busy = worker.busy
                if busy is not None and busy.timeout:
                    busy.deadline = time.monotonic() + busy.timeout * busy.items + _GRACE_S
            return
        with self._lock:
            busy, worker.busy = worker.busy, None
        if busy is None or busy.future.done():  # cancelled by Ctrl-C meanwhile
            return
        try:
            outcomes = shipping.loads(data)
        except Exception as exc:  # the driver cannot read the reply
            now = time.time()
            outcomes = [Outcome(False, busy.start, now, retryable=False,
                                error=f"its result cannot be read: {type(exc).__name__}: {exc}")
                        for _ in range(busy.items)]
        busy.future.set_result(outcomes)

    def _expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            late = [w for w in self.workers
                    if w.busy is not None and w.busy.deadline is not None
                    and w.busy.deadline <= now]
        for worker in late:
            self._lose(worker, timed_out=True)

    def _lose(self, worker: _Worker, *, timed_out: bool) -> None:
        """A worker died or overran: its call fails (or is retried); a new worker follows."""
        with self._lock:
            busy, worker.busy = worker.busy, None
            if worker in self.workers:
                self.workers.remove(worker)
        how = worker.kill()
        if busy is None or busy.future.done():
            return
        now = time.time()
        error = (f"timed out after {busy.timeout:g} s" if timed_out and busy.timeout else
                 f"its worker process (pid {worker.proc.pid}) died: {how}")
        busy.future.set_result([Outcome(False, busy.start, now, error=error, lost=True,
                                        timed_out=timed_out) for _ in range(busy.items)])

    # -- stopping ---------------------------------------------------------------
    def cancel_all(self) -> None:
        """Kill every worker (Ctrl-C or a broken run); the next call starts new ones."""
        with self._lock:
            workers, self.workers = self.workers, []
            taken = [(worker, worker.busy) for worker in workers]
            for worker in workers:
                worker.busy = None
        for worker, busy in taken:
            worker.kill()  # never raises: every worker is stopped
            if busy is not None and not busy.future.done():
                busy.future.cancel()
        self._wake_write.send_bytes(b"")

    def close(self) -> None:
        """Let idle workers exit (their pipes close) and kill any still running."""
        self._closed = True
        self.cancel_all()


def _failed(call: Call, error: str) -> list[Outcome]:
    now = time.time()
    return [Outcome(False, now, now, error=error, retryable=False) for _ in call.items]


_pool: ProcessPool | None = None


def process_pool(size: int) -> ProcessPool:
    """The process's pool with ``size`` workers (0: one per core); resized if asked."""
    global _pool
    size = size or cores()
    if _pool is None or _pool.size != size:
        if _pool is not None:
            _pool.close()
        _pool = ProcessPool(size)
    return _pool


@atexit.register
def _shutdown() -> None:
    if _pool is not None:
        _pool.close()
