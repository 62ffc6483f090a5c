"""The engine: run a graph node by node, with retries, timeouts and records.

The graph is compiled once into a plan (nodes in dependency order, bindings
as small tuples) so the per-node cost of the loop is a dict build, two type
checks, the call and a record: a few microseconds. Values are handed from
node to node as the very same Python objects: an Arrow table is never copied
or serialised by the serial engine.
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import sys
import time
from typing import Any

from sterna.typesys.check import check_value

from . import config
from .errors import ConfigError, SternaError
from .executors.base import Item, failure_of, run_item
from .graph import Binding, Const, DictOf, Graph, InputRef, ListOf, NodeRef
from .interface import bind_arguments
from .journal import journal_for
from .records import FAILED, INTERRUPTED, SKIPPED, SUCCEEDED, Attempt, NodeRecord, Run
from .task import Task
from .workflow import Workflow

_CONST, _NODE, _INPUT, _NESTED, _COPY = 0, 1, 2, 3, 4
_Step = tuple[str, Task[..., Any], tuple[tuple[str, int, Any, Any], ...]]


def run(target: Workflow[..., Any] | Task[..., Any], /, *, executor: str | None = None,
        inputs: dict[str, Any] | None = None, cache: bool = True,
        overwrite_cache: bool = False, workers: int | None = None,
        ray_address: str | None = None, **kwargs: Any) -> Run:
    """Run a workflow or a single task and return its ``Run``.

    Inputs are keyword arguments (or ``inputs={...}`` for names that clash
    with this function's own). ``executor`` is "serial", "process" or "ray"
    (default: configuration). ``workers`` sizes the process pool;
    ``ray_address`` names a Ray cluster to join. ``cache=False`` ignores the
    cache (nothing is read or written); ``overwrite_cache=True`` recomputes
    cached tasks and replaces their entries. Raises ``TaskFailedError`` (with
    ``.run``) if a task fails.
    """
    if isinstance(target, Workflow):
        graph = target.graph
    elif isinstance(target, Task):
        target.warn_if_deprecated()
        if getattr(target, "is_map", False):  # lists mapped, single values fixed
            target = target.for_inputs({**(inputs or {}), **kwargs})  # type: ignore[attr-defined]
        graph = target.as_graph()
    else:
        raise SternaError(f"sterna.run() needs a @workflow or @task, got {target!r}")
    given = {**(inputs or {}), **kwargs}
    return run_graph(graph, given, executor=executor, cache=cache,
                     overwrite_cache=overwrite_cache, workers=workers, ray_address=ray_address)


def run_graph(graph: Graph, given: dict[str, Any], *, executor: str | None = None,
              cache: bool = True, overwrite_cache: bool = False, workers: int | None = None,
              ray_address: str | None = None) -> Run:
    """Run a traced graph with the given inputs on the chosen executor."""
    settings = config.current()
    name = executor or settings.executor
    if name not in config.EXECUTORS:
        raise ConfigError(f"unknown executor {name!r}; expected one of {config.EXECUTORS}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ConfigError(f"workers: expected a positive whole number, got {workers!r}")
    values = prepare_inputs(graph, given)
    run = Run(_new_run_id(), graph.name, graph.interface, values, name, time.time())
    uses_cache = cache and bool(graph.cached_tasks())
    hits: list[str] = []
    try:
        if name == "serial" and not uses_cache and not graph.has_maps:
            _run_serial(graph, run, values)
        else:
            _run_scheduled(graph, run, values, settings, hits, name, workers=workers,
                           ray_address=ray_address,
                           mode=("off" if not uses_cache else
                                 "overwrite" if overwrite_cache else "use"))
    except KeyboardInterrupt as exc:
        _finish(run, graph, INTERRUPTED, settings, hits, "interrupted (KeyboardInterrupt)")
        exc.run = run  # type: ignore[attr-defined]
        _write_now(settings)  # the process is likely ending: do not leave it to atexit
        raise
    except BaseException as exc:  # any failure, ours or not, still closes the record
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        _finish(run, graph, FAILED, settings, hits, message)
        if isinstance(exc, SternaError):
            exc.run = run
        raise
    _finish(run, graph, SUCCEEDED, settings, hits)
    return run


def _write_now(settings: config.Config) -> None:
    """Journal queued runs now. Left to ``atexit``, writing imports modules, and a first
    import at exit makes the interpreter forget it is ending on Ctrl-C (exit status 1
    instead of death by SIGINT, which shells and ``make`` look for)."""
    with contextlib.suppress(Exception):  # the atexit hook tries again
        journal_for(settings.home).write()


def prepare_inputs(graph: Graph, given: dict[str, Any]) -> dict[str, Any]:
    """The run's input values: defaults filled in, each checked (and coerced) by its type."""
    label = f"{graph.kind} {graph.name!r}"
    values = bind_arguments(graph.interface, (), given, owner=label)
    for param in graph.interface.inputs.values():
        values[param.name] = check_value(param.stype, values[param.name], owner=label,
                                         role="input", name=param.name)
    return values


def _run_scheduled(graph: Graph, run: Run, values: dict[str, Any], settings: config.Config,
                   hits: list[str], name: str, *, workers: int | None,
                   ray_address: str | None, mode: str) -> None:
    """Run through the scheduler: the cache, maps, and the parallel executors.

    Imported only now: the cache brings pyarrow (and duckdb when it is used).
    """
    from sterna.cache.store import Store

    from .cachedrun import CachedRun
    from .executors import executor_for

    executor, admission = executor_for(name, workers=workers, ray_address=ray_address)
    state = CachedRun(graph, run, values, Store.at(settings.home), mode, settings.project,
                      settings.domain)
    state.hits = hits  # filled as it goes, so a failed run still counts its hits
    try:
        state.execute(executor, admission)
    finally:
        shutil.rmtree(state.scratch, ignore_errors=True)  # handed-over tables (mapped ones live on)


def _new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(3).hex()}"


def _finish(run: Run, graph: Graph, status: str, settings: config.Config, hits: list[str],
            error: str | None = None) -> None:
    """Close the run's records and queue them for the index (off the caller's path)."""
    run.status = status
    run.error = error
    run.end = time.time()
    for node_id in graph.order:
        if node_id not in run.nodes:
            run.nodes[node_id] = NodeRecord(node_id, graph.nodes[node_id].task.name, SKIPPED,
                                            run.end, run.end, [])
    if len(run.nodes) > 1:  # in dependency order, whatever order they finished in
        rank = {node_id: i for i, node_id in enumerate(graph.order)}
        run.nodes = dict(sorted(run.nodes.items(), key=lambda kv: _rank(kv[0], rank)))
    journal_for(settings.home).add(run, graph, settings.project, settings.domain, hits)


def _rank(node_id: str, rank: dict[str, int]) -> tuple[int, int]:
    """Sort key of a record: its node's place, map items (``node[i]``) right after their node."""
    base, _, index = node_id.partition("[")
    return (rank.get(base, len(rank)), int(index[:-1]) + 1 if index else 0)


def plan(graph: Graph) -> tuple[_Step, ...]:
    """Nodes in dependency order with their bindings compiled to tuples (cached)."""
    plan = graph.__dict__.get("_plan")
    if plan is None:
        plan = tuple((node_id, graph.nodes[node_id].task,
                      tuple(_compile(name, b) for name, b in graph.nodes[node_id].bindings.items()))
                     for node_id in graph.order)
        graph.__dict__["_plan"] = plan
    return plan


def _compile(name: str, binding: Binding) -> tuple[str, int, Any, Any]:
    if isinstance(binding, NodeRef):
        return (name, _NODE, binding.node, binding.output)
    if isinstance(binding, InputRef):
        return (name, _INPUT, binding.name, None)
    if isinstance(binding, Const):
        return (name, _COPY if is_mutable(binding.value) else _CONST, binding.value, None)
    return (name, _NESTED, binding, None)


def is_mutable(value: Any) -> bool:
    """Whether a constant must be copied per run, so one run cannot change the next's.

    Unhashable values (lists, dicts, plain dataclasses) are copied; tables are
    immutable and never copied.
    """
    pa = sys.modules.get("pyarrow")
    if pa is not None and isinstance(value, (pa.Table, pa.RecordBatch, pa.Array)):
        return False
    try:
        hash(value)
    except TypeError:
        return True
    return False


def resolve(binding: Binding, results: dict[str, dict[str, Any]], inputs: dict[str, Any]) -> Any:
    """The value of a binding, given node results and workflow inputs."""
    if isinstance(binding, NodeRef):
        return results[binding.node][binding.output]
    if isinstance(binding, InputRef):
        return inputs[binding.name]
    if isinstance(binding, Const):
        return copy.deepcopy(binding.value) if is_mutable(binding.value) else binding.value
    if isinstance(binding, ListOf):
        return [resolve(b, results, inputs) for b in binding.items]
    assert isinstance(binding, DictOf)
    return {k: resolve(b, results, inputs) for k, b in binding.items}


def _run_serial(graph: Graph, run: Run, inputs: dict[str, Any]) -> None:
    results: dict[str, dict[str, Any]] = {}
    records = run.nodes
    for node_id, task, bindings in plan(graph):
        kwargs = {}
        for name, kind, a, b in bindings:
            if kind == _NODE:
                kwargs[name] = results[a][b]
            elif kind == _CONST:
                kwargs[name] = a
            elif kind == _INPUT:
                kwargs[name] = inputs[a]
            elif kind == _COPY:
                kwargs[name] = copy.deepcopy(a)
            else:
                kwargs[name] = resolve(a, results, inputs)
        results[node_id] = execute_node(node_id, task, kwargs, records)
    run.outputs_by_name = {name: resolve(b, results, inputs)
                           for name, b in graph.outputs.items()}


def execute_node(node_id: str, task: Task[..., Any], kwargs: dict[str, Any],
                 records: dict[str, NodeRecord]) -> dict[str, Any]:
    """Run one node in this process with its retries and timeout; record it; return outputs."""
    start = time.time()
    try:
        inputs = task.check_inputs(kwargs)
    except SternaError as exc:
        records[node_id] = NodeRecord(node_id, task.name, FAILED, start, time.time(), [], str(exc))
        raise
    cfg = task.config
    item = Item(node_id, inputs)
    attempts: list[Attempt] = []
    while True:
        began = time.time() if attempts else start
        try:
            outcome = run_item(task, item, timeout=cfg.timeout, environment=cfg.environment)
        except KeyboardInterrupt:
            end = time.time()
            attempts.append(Attempt(len(attempts) + 1, began, end, "KeyboardInterrupt"))
            records[node_id] = NodeRecord(node_id, task.name, INTERRUPTED, start, end, attempts,
                                          "KeyboardInterrupt")
            raise
        attempts.append(Attempt(len(attempts) + 1, began, outcome.end,
                                None if outcome.ok else outcome.error))
        if outcome.ok:
            records[node_id] = NodeRecord(node_id, task.name, SUCCEEDED, start, outcome.end,
                                          attempts)
            return outcome.outputs  # type: ignore[return-value]
        if outcome.retryable and len(attempts) <= cfg.retries:
            continue
        records[node_id] = NodeRecord(node_id, task.name, FAILED, start, outcome.end, attempts,
                                      outcome.error)
        raise failure_of(node_id, task, inputs, outcome, len(attempts))
