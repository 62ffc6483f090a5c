"""The engine loop: run every node whose inputs are ready, up to the executor's capacity.

The loop owns everything but the call itself: the dependency order
(``graphlib``), cache lookups and stores (through ``CachedRun``), map
expansion, input checks, admission against resources, retries, and the
records. An executor only runs ``Call``s and hands back ``Outcome``s, so the
same workflow gives the same outputs, records and cache entries on every
executor. When a node fails, nothing new starts; calls already running finish
and are recorded (their cache entries kept), then the failure is raised.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import config
from .admission import Admission, Grant
from .cachedrun import Deferred
from .errors import SternaError
from .executors.base import Call, Executor, Item, Outcome, failure_of, holds_remote
from .records import FAILED, INTERRUPTED, SUCCEEDED, Attempt, NodeRecord

_POLL_S = 0.05  # how often a call waits for a key another process is computing

if TYPE_CHECKING:
    from .cachedrun import CachedRun, Work
    from .maptask import MapState
    from .task import Task


@dataclass(slots=True, eq=False)
class Job:
    """One call the loop must get done: a plain node, or one item of a map."""

    work: Work
    start: float
    attempts: list[Attempt] = field(default_factory=list)
    mapped: MapState | None = None
    index: int = 0
    solo: bool = False  # sent alone (its batch's worker died)

    @property
    def task(self) -> Task[..., Any]:
        return self.work.task


class Scheduler:
    """Drives one run of a graph over an executor."""

    def __init__(self, state: CachedRun, executor: Executor, admission: Admission | None,
                 ) -> None:
        self.state = state
        self.graph = state.graph
        self.records = state.run.nodes
        self.executor = executor
        self.admission = admission
        self.queue: deque[Job] = deque()
        self.flight: dict[Future[list[Outcome]], tuple[list[Job], Grant | None]] = {}
        self.failure: BaseException | None = None
        self.settings = config.snapshot()
        self.deferred: dict[str, list[Callable[[], None]]] = {}
        self.polling: list[Callable[[], None]] = []  # keys another process is computing
        self.sorter = self.graph.sorter()
        self.rank = {node_id: i for i, node_id in enumerate(self.graph.order)}

    # -- the loop -----------------------------------------------------------------
    def execute(self) -> None:
        """Run the graph to the end; raise the first failure once nothing is in flight."""
        feasible = getattr(self.executor, "check", None)
        for task in self.graph.tasks():
            if self.admission is not None:
                self.admission.check(task)
            if feasible is not None:
                feasible(task)
        try:
            self._loop()
        except KeyboardInterrupt:
            self._interrupt()
            raise
        except BaseException:
            self._interrupt(status=FAILED, error="the engine stopped")
            raise
        finally:
            self._drop_queued()
        if self.failure is not None:
            raise self.failure

    def _loop(self) -> None:
        while True:
            if self.failure is None:
                self._poll()
                self._start_ready()
                self._dispatch()
            if not self.flight:
                if self.failure is not None or not self.sorter.is_active():
                    return
                if self.polling:  # another process holds a key this run waits for
                    time.sleep(_POLL_S)
                    continue
                if not self.queue:  # pragma: no cover - a graph always makes progress
                    raise SternaError("engine stalled: no node is ready or running")
                continue
            timeout = _POLL_S if self.polling else None
            done, _ = wait(list(self.flight), timeout=timeout, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: self._order_of(f)):
                self._collect(future)

    def _poll(self) -> None:
        """Try again the calls whose key another process was computing."""
        waiting, self.polling = self.polling, []
        for again in waiting:
            self._guarded(again)

    def _guarded(self, step: Callable[[], None]) -> None:
        try:
            step()
        except SternaError as exc:
            self.failure = self.failure or exc

    def _drop_queued(self) -> None:
        """Release what queued calls hold; one waiting for a retry is recorded as failed."""
        queued = list(self.queue)
        self.queue.clear()
        for mapped in {id(j.mapped): j.mapped for j in queued if j.mapped}.values():
            queued += mapped.waiting
            mapped.waiting.clear()
        for job in queued:
            self.state.abort(job.work)
            if job.attempts:
                last = job.attempts[-1]
                self.records[job.work.node_id] = NodeRecord(
                    job.work.node_id, job.task.name, FAILED, job.start, last.end,
                    job.attempts, last.error)

    def _order_of(self, future: Future[list[Outcome]]) -> int:
        jobs, _ = self.flight[future]
        return self.rank.get(jobs[0].work.node_id.split("[", 1)[0], 0)

    def _start_ready(self) -> None:
        ready = self.sorter.get_ready()
        while ready and self.failure is None:
            for node_id in sorted(ready, key=self.rank.__getitem__):
                try:
                    self._start_node(node_id)
                except SternaError as exc:
                    self.failure = exc
                    return
            ready = self.sorter.get_ready()

    def _start_node(self, node_id: str) -> None:
        node = self.graph.nodes[node_id]
        if getattr(node.task, "is_map", False):
            from .maptask import MapState

            mapped = MapState.expand(self, node_id)
            mapped.expanding = False
            if mapped.complete():
                self._finish_map(mapped)
            return
        work = self.state.begin(node_id)
        if work is None:  # a cache hit, or the same call made earlier in this run
            self.sorter.done(node_id)
            return
        if isinstance(work, Deferred):
            self.defer(work, lambda: self._start_node(node_id))
            return
        self.enqueue(Job(work, time.time()))

    def defer(self, deferred: Deferred, again: Callable[[], None]) -> None:
        """Start again once the call computing the same key ends (here, or in another process)."""
        if deferred.elsewhere:
            self.polling.append(again)
        else:
            self.deferred.setdefault(deferred.key, []).append(again)

    def _resume(self, key: str | None) -> None:
        for again in self.deferred.pop(key or "", []):
            if self.failure is None:
                self._guarded(again)

    def enqueue(self, job: Job) -> None:
        """Check a job's inputs and queue it (a failed check fails the node at once)."""
        inputs = job.work.inputs
        remote = tuple(name for name, value in inputs.items() if holds_remote(value))
        try:  # a value still in Ray's object store is checked by the actor that fetches it
            job.work.inputs = job.task.check_inputs(inputs, remote)
        except SternaError as exc:
            self.records[job.work.node_id] = NodeRecord(
                job.work.node_id, job.task.name, FAILED, job.start, time.time(), [], str(exc))
            self.state.abort(job.work)
            self.failure = self.failure or exc
            return
        self._queue(job)

    def _queue(self, job: Job, *, front: bool = False) -> None:
        """Queue a job; items of a map past its ``concurrency`` wait in the map's own queue."""
        mapped = job.mapped
        if mapped is not None:
            if mapped.room() - mapped.queued < 1:
                mapped.waiting.append(job)
                return
            mapped.queued += 1
        if front:
            self.queue.appendleft(job)
        else:
            self.queue.append(job)

    def _release_waiting(self, mapped: MapState) -> None:
        while mapped.waiting and mapped.room() - mapped.queued >= 1:
            mapped.queued += 1
            self.queue.append(mapped.waiting.popleft())

    # -- dispatching ------------------------------------------------------------
    def _dispatch(self) -> None:
        slots = self.executor.slots()
        skipped: list[Job] = []
        while self.queue and len(self.flight) < slots:
            job = self.queue.popleft()
            grant = None
            if self.admission is not None:
                grant = self.admission.take(job.task)
                if grant is None:
                    skipped.append(job)
                    continue
            jobs = [job, *self._batch_with(job)]
            self._submit(jobs, grant)
        self.queue.extendleft(reversed(skipped))

    def _batch_with(self, first: Job) -> list[Job]:
        """More queued items of the same map for the same round trip (no timeout only)."""
        mapped = first.mapped
        if mapped is None or first.solo or first.task.config.timeout \
                or self.executor.name == "serial":
            return []
        size = min(mapped.batch_size(self.executor.slots()), mapped.room())
        batch: list[Job] = []
        while len(batch) + 1 < size and self.queue and self.queue[0].mapped is mapped \
                and not self.queue[0].solo:
            batch.append(self.queue.popleft())
        return batch

    def _submit(self, jobs: list[Job], grant: Grant | None) -> None:
        task = jobs[0].task
        environment = dict(task.config.environment)
        gpus = grant.gpus if grant is not None else ()
        if gpus:
            environment["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpus))
        items = [Item(job, job.work.inputs, job.work.info is not None) for job in jobs]
        store = self.state.store
        call = Call(task, items, task.config.timeout, environment, str(store.home),
                    self.state.scratch, gpus, store.blobs_uri, self.settings)
        for job in jobs:
            if job.mapped is not None:
                job.mapped.running += 1
                job.mapped.queued -= 1
        try:
            future = self.executor.submit(call)
        except KeyboardInterrupt:  # the serial executor runs the call inside submit
            self.flight[Future()] = (jobs, grant)
            raise
        self.flight[future] = (jobs, grant)

    # -- results ----------------------------------------------------------------
    def _collect(self, future: Future[list[Outcome]]) -> None:
        jobs, grant = self.flight.pop(future)
        if grant is not None and self.admission is not None:
            self.admission.give_back(grant)
        outcomes = future.result()
        for job, outcome in zip(jobs, outcomes, strict=True):
            key = job.work.key.key if job.work.key is not None else None
            if job.mapped is not None:
                job.mapped.running -= 1
            if outcome.lost and len(jobs) > 1 and not outcome.timed_out:
                job.solo = True  # its worker died running the batch: not its fault yet
                self._queue(job, front=True)
                continue
            job.attempts.append(Attempt(len(job.attempts) + 1, outcome.start, outcome.end,
                                        None if outcome.ok else outcome.error))
            if outcome.ok:
                self._succeed(job, outcome)
            elif outcome.retryable and len(job.attempts) <= job.task.config.retries:
                self._queue(job, front=True)
            else:
                self._fail(job, outcome)
            if job.mapped is not None:
                self._release_waiting(job.mapped)
            if key in self.deferred:
                self._resume(key)

    def _succeed(self, job: Job, outcome: Outcome) -> None:
        work = job.work
        record = NodeRecord(work.node_id, job.task.name, SUCCEEDED, job.start, outcome.end,
                            job.attempts)
        record.cache = work.info
        self.records[work.node_id] = record
        if work.info is not None:
            work.info.compute_s = sum(a.duration for a in job.attempts)
            work.info.store_s += outcome.store_s
        assert outcome.outputs is not None
        try:
            self.state.finish(work, outcome.outputs, outcome.stored)
        except SternaError as exc:
            record.status = FAILED
            record.error = str(exc)
            if job.mapped is not None:  # one item: the map's min_success_ratio decides
                self._item_failed(job, exc)
            else:
                self.failure = self.failure or exc
            return
        if job.mapped is not None:
            job.mapped.done(job.index, outcome.outputs)
            if job.mapped.complete():
                self._finish_map(job.mapped)
        else:
            self.sorter.done(work.node_id)

    def _fail(self, job: Job, outcome: Outcome) -> None:
        work = job.work
        record = NodeRecord(work.node_id, job.task.name, FAILED, job.start, outcome.end,
                            job.attempts, outcome.error)
        record.cache = work.info
        if work.info is not None:
            work.info.compute_s = sum(a.duration for a in job.attempts)
        self.records[work.node_id] = record
        self.state.abort(work)
        error = failure_of(work.node_id, job.task, work.inputs, outcome, len(job.attempts))
        if job.mapped is not None:
            self._item_failed(job, error)
            return
        self.failure = self.failure or error

    def _item_failed(self, job: Job, error: SternaError) -> None:
        assert job.mapped is not None
        job.mapped.failed(job.index, error)
        if job.mapped.hopeless():
            self.failure = self.failure or job.mapped.failure()
        elif job.mapped.complete():
            self._finish_map(job.mapped)

    def finish_map(self, mapped: MapState) -> None:
        """An item ended outside the loop's own bookkeeping (a resumed duplicate)."""
        if not mapped.expanding and mapped.complete():
            self._finish_map(mapped)

    def _finish_map(self, mapped: MapState) -> None:
        if mapped.hopeless():
            self.failure = self.failure or mapped.failure()
            return
        try:
            mapped.finish()
        except SternaError as exc:
            self.failure = self.failure or exc
            return
        self.sorter.done(mapped.node_id)

    def _interrupt(self, status: str = INTERRUPTED, error: str = "KeyboardInterrupt") -> None:
        """Stop what runs, record it as interrupted, and release every held lock."""
        self.executor.cancel_all()
        now = time.time()
        for jobs, _ in self.flight.values():
            for job in jobs:
                job.attempts.append(Attempt(len(job.attempts) + 1, now, now, error))
                self.records[job.work.node_id] = NodeRecord(
                    job.work.node_id, job.task.name, status, job.start, now, job.attempts, error)
                self.state.abort(job.work)
        for job in self.queue:
            self.state.abort(job.work)
        self.flight.clear()
        self.queue.clear()
