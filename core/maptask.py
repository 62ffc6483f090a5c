"""``map_task``: run one task over lists of inputs, each item on its own.

As in flytekit, ``map_task(t)(x=[1, 2, 3])`` calls ``t`` once per item and
returns a list per output; ``functools.partial`` fixes inputs, several lists
of equal length are mapped together, and an input given a single value
(rather than a list of them) is passed to every item. Each item is its own
call for the engine: cached on its own key (so changing one item recomputes
one), retried on its own, recorded on its own (node ``map_t[3]``), and run in
parallel by the process and Ray executors, at most ``concurrency`` at once.
With ``min_success_ratio < 1`` a failed item gives ``None`` and the map fails
only when fewer items than the ratio succeed.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Optional

from sterna.typesys.resolve import resolve
from sterna.typesys.types import ListT, Mismatch, SType

from .errors import InputError, SternaError, TaskDefinitionError, TaskFailedError
from .executors.base import fetch
from .interface import Interface, Param
from .promise import Promise, active_builder
from .records import FAILED, SUCCEEDED, NodeRecord
from .task import Task

if TYPE_CHECKING:
    from .graph import Graph
    from .scheduler import Scheduler

_BATCH_MAX = 64  # map items per round trip to a worker


def map_task(target: Task[..., Any] | functools.partial[Any], concurrency: int | None = None,
             min_success_ratio: float = 1.0, **kwargs: Any) -> MapTask:
    """Map ``target`` (a task, or a ``functools.partial`` of one) over lists of inputs.

    ``concurrency`` bounds how many items run at once (None: as many as the
    executor can); ``min_success_ratio`` is the share of items that must
    succeed. Other keyword arguments of flytekit's ``map_task`` are accepted
    and ignored, as they configure a cluster.
    """
    bound: dict[str, Any] = {}
    inner = target
    if isinstance(target, functools.partial):
        if target.args:
            raise TaskDefinitionError("map_task(partial(...)): fix inputs by keyword, not "
                                      "by position")
        inner, bound = target.func, dict(target.keywords)
    if not isinstance(inner, Task) or isinstance(inner, MapTask):
        raise TaskDefinitionError(f"map_task needs a @task (or a partial of one), got {inner!r}")
    if concurrency is not None and (isinstance(concurrency, bool) or
                                    not isinstance(concurrency, int) or concurrency < 1):
        raise TaskDefinitionError(f"map_task({inner.name}): concurrency must be a positive "
                                  f"whole number or None, got {concurrency!r}")
    if not isinstance(min_success_ratio, (int, float)) or not 0 <= min_success_ratio <= 1:
        raise TaskDefinitionError(f"map_task({inner.name}): min_success_ratio must be between "
                                  f"0 and 1, got {min_success_ratio!r}")
    unknown = sorted(set(bound) - set(inner.interface.inputs))
    if unknown:
        raise TaskDefinitionError(f"map_task: {inner.label} has no input {unknown[0]!r} to fix")
    return MapTask(inner, bound, frozenset(bound), concurrency, float(min_success_ratio))


class MapTask(Task[..., Any]):
    """A task mapped over lists. Its interface has a list for each mapped input and output."""

    is_map = True

    def __init__(self, inner: Task[..., Any], bound: dict[str, Any], fixed: frozenset[str],
                 concurrency: int | None, min_success_ratio: float) -> None:
        functools.update_wrapper(self, inner.fn)
        self.inner, self.bound, self.fixed = inner, bound, fixed
        self.concurrency, self.min_success_ratio = concurrency, min_success_ratio
        self.fn = inner.fn  # its code version is the inner task's
        prefix, _, last = inner.name.rpartition(".")
        self.name = f"{prefix}.map_{last}" if prefix else f"map_{last}"
        self.node_name = f"map_{inner.node_name}"
        self.label = f"map task {self.name!r}"
        self.interface = _mapped_interface(inner.interface, fixed, min_success_ratio < 1)
        self.config = dataclasses.replace(inner.config, cache=False, cache_serialize=False,
                                          retries=0, timeout=None)
        self._inputs = tuple((p.name, p.stype) for p in self.interface.inputs.values())
        self._outputs = tuple(self.interface.outputs.items())
        self._graph = None
        self._warned_deprecated = False
        self._variants: dict[frozenset[str], MapTask] = {}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args:
            raise InputError(f"{self.label}: pass inputs by keyword (x=[...]), not by position")
        given = {**self.bound, **kwargs}
        variant = self.for_inputs(given)
        builder = active_builder()
        if builder is not None:
            return builder.add_task_call(variant, (), given)
        return Task.__call__(variant, **given)

    def for_inputs(self, given: dict[str, Any]) -> MapTask:
        """The map task whose interface fits these inputs: lists mapped, single values fixed.

        Inputs left out that have defaults are fixed to them, for every item.
        """
        fixed = self.fixed | {name for name, value in given.items()
                              if name not in self.fixed and not self._is_mapped(name, value)}
        fixed |= {name for name, param in self.inner.interface.inputs.items()
                  if name not in given and not param.required}
        return self._variant(frozenset(fixed), self.bound)

    def as_graph(self) -> Graph:
        """The graph ``sterna.run(map_task(...))`` runs; ``partial`` inputs are constants."""
        if self._graph is None:
            from .graph import Const, Graph, InputRef, Node, NodeRef

            free = {n: p for n, p in self.interface.inputs.items() if n not in self.bound}
            bindings = {n: Const(self.bound[n]) if n in self.bound else InputRef(n)
                        for n in self.interface.inputs}
            node = Node(self.node_name, self, bindings)
            outputs = {n: NodeRef(self.node_name, n) for n in self.interface.outputs}
            interface = dataclasses.replace(self.interface, inputs=free)
            self._graph = Graph.build(self.name, interface, {self.node_name: node}, outputs,
                                      kind="task")
        return self._graph

    def _is_mapped(self, name: str, value: Any) -> bool:
        """Whether an input is a list to map over (else one value given to every item)."""
        param = self.inner.interface.inputs.get(name)
        if param is None:
            return True  # reported by the call's own checks
        if isinstance(value, Promise):
            return isinstance(value.stype, ListT) and not _fits_whole(value.stype, param.stype)
        if not isinstance(value, (list, tuple)):
            return False
        try:
            param.stype.check(value)
        except Mismatch:
            return True
        return bool(value) and all(_checks(param.stype, item) for item in value)

    def _variant(self, fixed: frozenset[str], bound: dict[str, Any]) -> MapTask:
        if fixed == self.fixed:
            return self
        known = self._variants.get(fixed)
        if known is None:
            known = self._variants[fixed] = MapTask(self.inner, bound, fixed, self.concurrency,
                                                    self.min_success_ratio)
        return known

    def run_checked(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """A direct call: the items one after another in this process."""
        inputs = self.check_inputs(inputs)
        results: list[dict[str, Any] | None] = []
        first: BaseException | None = None
        for item in self.items(inputs, label=self.label):
            try:
                results.append(self.inner.run_checked(item))
            except Exception as exc:
                if self.min_success_ratio >= 1:
                    raise
                first = first or exc
                results.append(None)
        needed = items_needed(self.min_success_ratio, len(results))
        if sum(r is not None for r in results) < needed:
            raise TaskFailedError(f"{self.label}: only {sum(r is not None for r in results)} "
                                  f"of {len(results)} items succeeded, {needed} needed; first "
                                  f"failure: {first}", task=self.name) from first
        return self.collect(results)

    def items(self, inputs: dict[str, Any], *, label: str) -> list[dict[str, Any]]:
        """One input dict per item: the mapped lists zipped, the fixed values repeated."""
        mapped = [name for name in inputs if name not in self.fixed]
        lengths = {name: len(inputs[name]) for name in mapped}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k} has {v}" for k, v in lengths.items())
            raise InputError(f"{label}: mapped inputs must have the same length ({shown})")
        count = next(iter(lengths.values()), 0)
        return [{name: inputs[name][i] if name in lengths else inputs[name] for name in inputs}
                for i in range(count)]

    def collect(self, results: list[dict[str, Any] | None]) -> dict[str, Any]:
        """Item outputs -> one list per output (None where an item failed)."""
        return {name: [r[name] if r is not None else None for r in results]
                for name in self.interface.outputs}


def items_needed(ratio: float, count: int) -> int:
    """How many of ``count`` items must succeed (0.07 of 100 is 7, despite float rounding)."""
    return math.ceil(ratio * count - 1e-9)


def _mapped_interface(inner: Interface, fixed: frozenset[str], optional: bool) -> Interface:
    inputs = {name: param if name in fixed else Param(name, _list_of(param.stype))
              for name, param in inner.inputs.items()}
    outputs = {name: _list_of(stype, optional) for name, stype in inner.outputs.items()}
    return Interface(inputs, outputs, inner.output_kind, inner.namedtuple)


def _list_of(stype: SType, optional: bool = False) -> SType:
    item = stype.annotation
    return resolve(list[Optional[item]] if optional else list[item])  # type: ignore[valid-type]  # noqa: UP045


def _checks(stype: SType, value: Any) -> bool:
    try:
        stype.check(value)
    except Mismatch:
        return False
    return True


def _fits_whole(given: SType, param: SType) -> bool:
    from sterna.typesys.compat import assignable

    return assignable(given, param) and not assignable(given, _list_of(param))


class MapState:
    """The items of one map node while the scheduler runs them."""

    def __init__(self, scheduler: Scheduler, node_id: str, task: MapTask, count: int) -> None:
        self.scheduler, self.node_id, self.task = scheduler, node_id, task
        self.count = count
        self.results: list[dict[str, Any] | None] = [None] * count
        self.finished = self.failures = self.running = 0
        self.first_error: SternaError | None = None
        self.start = time.time()
        self.needed = items_needed(task.min_success_ratio, count)
        self.queued = 0  # items in the scheduler's queue
        self.waiting: deque[Any] = deque()  # items held back by ``concurrency``
        self.expanding = True

    @classmethod
    def expand(cls, scheduler: Scheduler, node_id: str) -> MapState:
        """Resolve the map's inputs and start (or look up) every item."""
        from .cachedrun import Deferred, Work
        from .scheduler import Job

        state = scheduler.state
        task: MapTask = scheduler.graph.nodes[node_id].task  # type: ignore[assignment]
        started = time.time()
        try:
            inputs = task.check_inputs(fetch(state.inputs_of(node_id)))
            items = task.items(inputs, label=f"{task.label} (node {node_id!r})")
        except SternaError as exc:
            scheduler.records[node_id] = NodeRecord(node_id, task.name, FAILED, started,
                                                    time.time(), [], str(exc))
            raise
        mapped = cls(scheduler, node_id, task, len(items))
        inner = task.inner
        cached = inner.config.cache and state.mode != "off"
        fixed = {name: state.digest_of(state.graph.nodes[node_id].bindings[name],
                                       inner.interface.inputs[name].stype)
                 for name in task.fixed if cached}

        def start(index: int, values: dict[str, Any]) -> None:
            record_id = f"{node_id}[{index}]"
            work: Work | Deferred | None = Work(record_id, inner, dict(values), item=True)
            if cached:
                began = time.perf_counter()
                digests = {name: fixed.get(name) or _digest(inner, name, value)
                           for name, value in values.items()}
                work = state.begin_call(record_id, inner, digests, lambda: dict(values),
                                        began=began, item=True)
            if work is None:
                mapped.done(index, state.values[record_id])
                scheduler.finish_map(mapped)  # a resumed duplicate may be the last item
            elif isinstance(work, Deferred):
                scheduler.defer(work, lambda: start(index, values))
            else:
                scheduler.enqueue(Job(work, time.time(), mapped=mapped, index=index))

        for index, values in enumerate(items):
            start(index, values)
        return mapped

    def room(self) -> int:
        """How many more items may start now (``concurrency``)."""
        limit = self.task.concurrency
        return self.count if limit is None else limit - self.running

    def batch_size(self, slots: int) -> int:
        """Items per round trip: enough to amortise it, few enough to spread the work."""
        return max(1, min(_BATCH_MAX, self.count // max(1, slots * 4)))

    def done(self, index: int, outputs: dict[str, Any]) -> None:
        self.results[index] = outputs
        self.finished += 1

    def failed(self, index: int, error: SternaError) -> None:
        self.results[index] = None
        self.failures += 1
        self.finished += 1
        self.first_error = self.first_error or error

    def complete(self) -> bool:
        return self.finished == self.count

    def hopeless(self) -> bool:
        """Whether too many items failed for the map to succeed."""
        return self.count - self.failures < self.needed

    def failure(self) -> SternaError:
        """The map's error (its node recorded as failed), naming the first item failure."""
        message = (f"{self.task.label} (node {self.node_id!r}): {self.failures} of "
                   f"{self.count} items failed, {self.needed} must succeed; first failure: "
                   f"{self.first_error}")
        self._record(FAILED, message)
        if self.task.min_success_ratio >= 1 and self.first_error is not None:
            return self.first_error
        error = TaskFailedError(message, task=self.task.name, node=self.node_id,
                                attempts=1)
        error.__cause__ = self.first_error
        return error

    def finish(self) -> None:
        """All items ended and enough succeeded: the node's outputs are the lists.

        Every item's outputs were checked where it ran, so the lists are not
        checked again (their tables may still be in Ray's object store).
        """
        self._record(SUCCEEDED, None)
        self.scheduler.state.values[self.node_id] = self.task.collect(self.results)

    def _record(self, status: str, error: str | None) -> None:
        self.scheduler.records[self.node_id] = NodeRecord(
            self.node_id, self.task.name, status, self.start, time.time(), [], error)


def _digest(task: Task[..., Any], name: str, value: Any) -> str:
    from sterna.cache.codecs import digest_value

    return digest_value(task.interface.inputs[name].stype, value)
