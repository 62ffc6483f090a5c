"""The Ray executor: tasks run in Ray actors, one pool of actors per task environment.

The only module that imports ray. It joins the Ray instance this process
already started, else the cluster named by ``ray_address=`` / ``RAY_ADDRESS``
(as under ``ray job submit``), else starts a local instance. An environment is
a task's resource requests (``num_cpus``, ``num_gpus``, ``memory``, the
accelerator type), its environment variables (the actor's ``runtime_env``)
and its container image; actors of one environment are reused across calls
and runs, so set-up kept in a module (a loaded model) survives between calls.
An actor holds its resources while it lives, so idle actors of other
environments are stopped when a new one needs the room. A request no node
can satisfy fails at once (Ray itself would wait forever); a call past its
timeout has its actor killed; an actor that dies fails (or retries) only its call.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ray

from ..admission import request_of
from ..errors import ResourceError
from .base import Call, Item, Outcome
from .payload import Payloads

if TYPE_CHECKING:
    from ..task import Task

_GRACE_S = 2.0
_PLACEMENT_CHECK_S = 2.0  # an actor not started by then may be waiting for room on its node
_IDLE_S = 30.0  # an actor idle this long gives its resources back to the cluster


@ray.remote(max_restarts=0)
class TaskActor:
    """Runs calls of tasks of one environment, one at a time, in its main thread."""

    def __init__(self, sys_path: list[str]) -> None:
        for entry in reversed(sys_path):  # the driver's import path, where it exists here
            if entry not in sys.path and (not entry or os.path.isdir(entry)):
                sys.path.insert(0, entry)
        self.tasks: dict[int, Any] = {}
        self.node = ray.get_runtime_context().get_node_id()

    def load(self, token: int, payload: bytes) -> None:
        """Load a task (import its module) before its first call, which is timed apart."""
        from .payload import load_task

        try:
            self.tasks[token] = load_task(payload)
        except Exception as exc:  # every call of this task reports it
            self.tasks[token] = (f"the task cannot be loaded in a Ray actor: "
                                 f"{type(exc).__name__}: {exc}")

    def run(self, token: int, payload: bytes | None, inputs: list[dict[str, Any]],
            cached: list[bool], timeout: float | None, environment: dict[str, str],
            home: str, home_node: str, blobs: str, settings: dict[str, str],
            ) -> list[Outcome]:
        """Run the calls; write the cached outputs' blobs where this actor reaches the store.

        That is on the driver's node, or anywhere when the blobs live at a URI
        every node can reach (``s3://...``).
        """
        from .. import config
        from .worker import refuse_unsendable, run_call, without_stray_exceptions

        config.apply(settings)
        if payload is not None:
            self.load(token, payload)
        task = self.tasks[token]
        if isinstance(task, str):
            now = time.time()
            return [Outcome(False, now, now, error=task, retryable=False) for _ in inputs]
        shared = "://" in blobs and not blobs.startswith("file://")
        local = shared or home_node == self.node
        items = [Item(None, values, store and local) for values, store in zip(inputs, cached)]
        ready, failed = _fetch_inputs(task, items)
        outcomes = run_call(task, ready, timeout=timeout, environment=environment,
                            home=home, blobs=blobs)
        outcomes = _merge(outcomes, failed, len(items))
        outcomes = refuse_unsendable(without_stray_exceptions(outcomes), cached, "Ray actor")
        tables = _table_outputs(task)
        if not tables:
            return outcomes  # type: ignore[return-value]
        # Each table is a return value of its own: it stays in this node's object store
        # and the driver holds only a reference, handed on to the next actor.
        slots = []
        for outcome in outcomes:
            for name in tables:
                table = (outcome.outputs or {}).get(name) if outcome.ok else None
                slots.append(table)
                if outcome.outputs is not None and table is not None:
                    outcome.outputs[name] = table.nbytes  # the driver puts the reference here
        return (outcomes, *slots)  # type: ignore[return-value]


class RemoteValue:
    """An output left in Ray's object store; the driver fetches it only when it needs it."""

    __slots__ = ("_value", "nbytes", "ref")

    def __init__(self, ref: Any, nbytes: int = 0) -> None:
        self.ref = ref
        self.nbytes = nbytes
        self._value: Any = RemoteValue

    def sterna_fetch(self) -> Any:
        if self._value is RemoteValue:
            self._value = ray.get(self.ref)
        return self._value

    def __reduce__(self) -> tuple[Any, ...]:
        return (RemoteValue, (self.ref, self.nbytes))


def _table_outputs(task: Task[..., Any]) -> list[str]:
    from sterna.typesys.types import TableT

    return [name for name, stype in task.interface.outputs.items() if isinstance(stype, TableT)]


def _fetch_inputs(task: Task[..., Any], items: list[Item]) -> tuple[list[Item], dict[int, Outcome]]:
    """Fetch inputs left in the object store, and check them (the driver could not)."""
    from ..errors import SternaError
    from .base import fetch, is_remote

    ready, failed = [], {}
    for index, item in enumerate(items):
        fetched = {name: fetch(value) for name, value in item.inputs.items()
                   if is_remote(value) or type(value) in (list, tuple, dict)}
        changed = {name: value for name, value in fetched.items()
                   if value is not item.inputs[name]}
        if changed:
            item.inputs.update(changed)
            try:
                task.check_inputs(item.inputs)
            except SternaError as exc:
                now = time.time()
                failed[index] = Outcome(False, now, now, error=str(exc), exception=exc,
                                        retryable=False)
                continue
        ready.append(item)
    return ready, failed


def _merge(outcomes: list[Outcome], failed: dict[int, Outcome], count: int) -> list[Outcome]:
    if not failed:
        return outcomes
    done = iter(outcomes)
    return [failed[i] if i in failed else next(done) for i in range(count)]


@dataclass(eq=False)
class _Actor:
    handle: Any
    pool: _Pool
    tasks: set[int] = field(default_factory=set)
    busy: _InFlight | None = None
    last_used: float = field(default_factory=time.monotonic)
    ready: bool = False  # placed and started (a timeout counts from then)
    created: float = field(default_factory=time.monotonic)


@dataclass(eq=False)
class _InFlight:
    call: Call
    future: Future[list[Outcome]]
    start: float
    deadline: float | None = None
    timed_out: bool = False
    loading: bool = False  # the actor loads (imports) the task first; the timeout waits
    tables: tuple[list[str], list[Any]] = ([], [])  # table outputs, and their references


@dataclass(eq=False)
class _Pool:
    """Actors of one environment, and the most the cluster can hold at once."""

    options: dict[str, Any]
    need: dict[str, float]
    limit: int
    actors: list[_Actor] = field(default_factory=list)


class RayExecutor:
    """Submits calls to actor pools; completes futures as Ray returns results."""

    name = "ray"

    def __init__(self, use_images: bool) -> None:
        self.use_images = use_images
        self.pools: dict[tuple[Any, ...], _Pool] = {}
        self.pending: list[_InFlight] = []
        self.payloads = Payloads()
        self.lock = threading.RLock()
        self.totals = _cluster_totals()
        self.node = ray.get_runtime_context().get_node_id()  # where the store's disk is
        self.results: queue.Queue[tuple[str, Any, Any]] = queue.Queue()
        threading.Thread(target=self._collect, daemon=True, name="sterna-ray").start()

    def refresh(self) -> None:
        """Re-read the cluster's resources (nodes join and leave; autoscaling)."""
        with self.lock:
            self.totals = _cluster_totals()
            for pool in self.pools.values():
                pool.limit = _fits_count(pool.need, self.totals)

    def slots(self) -> int:
        return max(2, int(self.totals.get("CPU", 1) + self.totals.get("GPU", 0)) * 2)

    # -- feasibility ------------------------------------------------------------
    def check(self, task: Task[..., Any]) -> None:
        """Raise ``ResourceError`` unless some alive node can hold the task's actor."""
        need = _needs(task)
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        if any(all(node.get(k, 0.0) + 1e-9 >= v for k, v in need.items()) for node in nodes):
            return
        shown = ", ".join(f"{k}={v:g}" for k, v in need.items())
        offered = "; ".join(", ".join(f"{k}={v:g}" for k, v in sorted(node.items())
                                      if not k.startswith("node:") and "memory" not in k)
                            for node in nodes) or "no alive nodes"
        raise ResourceError(f"{task.label} requests {shown}, which no node of the Ray cluster "
                            f"offers (nodes: {offered}); lower the request or add such a node")

    # -- submitting -------------------------------------------------------------
    def submit(self, call: Call) -> Future[list[Outcome]]:
        future: Future[list[Outcome]] = Future()
        with self.lock:
            self.pending.append(_InFlight(call, future, time.time()))
            self._dispatch()
        return future

    def _dispatch(self) -> None:
        waiting = []
        pending, self.pending = self.pending, []
        for flight in pending:
            try:
                actor = self._actor_for(flight.call.task, flight.call.environment)
                if actor is None:
                    waiting.append(flight)
                    continue
                self._start(actor, flight)
            except Exception as exc:  # e.g. an input Ray cannot serialise: only this call fails
                self._refuse(flight, exc)
        self.pending = waiting + self.pending

    def _refuse(self, flight: _InFlight, exc: Exception) -> None:
        for pool in self.pools.values():
            for actor in pool.actors:
                if actor.busy is flight:
                    actor.busy = None
        now = time.time()
        error = f"it cannot be sent to a Ray actor: {type(exc).__name__}: {_first_line(exc)}"
        if not flight.future.done():
            flight.future.set_result([Outcome(False, now, now, error=error, retryable=False)
                                      for _ in flight.call.items])

    def _actor_for(self, task: Task[..., Any], environment: Any) -> _Actor | None:
        pool = self._pool(task, environment)
        for actor in pool.actors:
            if actor.busy is None:
                return actor
        if len(pool.actors) >= pool.limit or not self._make_room(pool):
            return None
        handle = TaskActor.options(**pool.options).remote(list(sys.path))
        actor = _Actor(handle, pool)
        pool.actors.append(actor)
        handle.__ray_ready__.remote().future().add_done_callback(
            lambda _: self.results.put(("ready", actor, None)))
        self.results.put(("wake", None, None))  # the collector watches it until it starts
        return actor

    def _pool(self, task: Task[..., Any], environment: Any) -> _Pool:
        cfg = task.config
        env = dict(environment)
        key = (tuple(sorted(_needs(task).items())), tuple(sorted(env.items())),
               cfg.container_image if self.use_images else None)
        pool = self.pools.get(key)
        if pool is None:
            need = _needs(task)
            options: dict[str, Any] = {"num_cpus": need.get("CPU", 0),
                                       "num_gpus": need.get("GPU", 0)}
            if "memory" in need:
                options["memory"] = need["memory"]
            if cfg.accelerator is not None:
                options["accelerator_type"] = ray_accelerator(cfg.accelerator.device)
            runtime_env: dict[str, Any] = {}
            if env:
                runtime_env["env_vars"] = env
            if self.use_images and cfg.container_image:
                runtime_env["image_uri"] = cfg.container_image
            if runtime_env:
                options["runtime_env"] = runtime_env
            pool = self.pools[key] = _Pool(options, need, _fits_count(need, self.totals))
        return pool

    def _make_room(self, pool: _Pool) -> bool:
        """Whether another actor of ``pool`` fits now.

        Idle actors of other pools are stopped to make room only for a pool that
        has no actor at all; a pool that has one waits for it rather than churn
        actors (each start costs a process and the task's set-up).
        """
        while not _fits(pool.need, self._free()):
            idle = [a for p in self.pools.values() if p is not pool for a in p.actors
                    if a.busy is None]
            if not idle or pool.actors:
                return False
            self._stop(min(idle, key=lambda a: a.last_used))
        return True

    @staticmethod
    def _stop(actor: _Actor) -> None:
        """Kill an actor and forget it: its resources go back to the cluster."""
        ray.kill(actor.handle, no_restart=True)
        actor.pool.actors.remove(actor)

    def _free(self) -> dict[str, float]:
        free = dict(self.totals)
        for pool in self.pools.values():
            for key, amount in pool.need.items():
                free[key] = free.get(key, 0.0) - amount * len(pool.actors)
        return free

    def _start(self, actor: _Actor, flight: _InFlight) -> None:
        call = flight.call
        token, payload = self.payloads.of(call.task)
        flight.loading = token not in actor.tasks
        if flight.loading:  # loaded by a call of its own, so the timeout starts after it
            actor.handle.load.remote(token, payload).future().add_done_callback(
                lambda _: self.results.put(("loaded", actor, flight)))
        actor.tasks.add(token)
        actor.busy = flight
        flight.start = time.time()
        if call.timeout and actor.ready and not flight.loading:
            self._arm(flight)
        tables = _table_outputs(call.task)
        returns = 1 + len(tables) * len(call.items)
        method = actor.handle.run if returns == 1 else actor.handle.run.options(
            num_returns=returns)
        refs = method.remote(
            token, None, [item.inputs for item in call.items],
            [item.store for item in call.items], call.timeout, dict(call.environment),
            call.home, self.node, call.blobs, call.settings)
        first = refs[0] if returns > 1 else refs
        flight.tables = (tables, list(refs[1:]) if returns > 1 else [])
        # Ray runs this callback on its own I/O thread, where calling Ray deadlocks:
        # it only hands the result to the collector thread.
        first.future().add_done_callback(
            lambda done: self.results.put(("done", actor, (flight, done))))

    # -- results ----------------------------------------------------------------
    def _finished(self, actor: _Actor, flight: _InFlight, done: Future[Any]) -> None:
        count = len(flight.call.items)
        now = time.time()
        try:
            outcomes = done.result()
            names, refs = flight.tables
            slots = iter(refs)
            for outcome in outcomes:
                for name in names:
                    ref = next(slots)
                    if outcome.ok and outcome.outputs is not None:
                        outcome.outputs[name] = RemoteValue(ref, outcome.outputs[name])
        except ray.exceptions.RayActorError as exc:
            reason = (f"timed out after {flight.call.timeout:g} s" if flight.timed_out else
                      f"its Ray actor died: {_first_line(exc)}")
            outcomes = [Outcome(False, flight.start, now, error=reason, lost=True,
                                timed_out=flight.timed_out) for _ in range(count)]
            with self.lock:
                if actor in actor.pool.actors:
                    actor.pool.actors.remove(actor)
        except Exception as exc:  # the result could not travel (an unpicklable output)
            outcomes = [Outcome(False, flight.start, now, retryable=False,
                                error=f"{type(exc).__name__}: {_last_line(exc)}")
                        for _ in range(count)]
        with self.lock:
            actor.busy = None
            actor.last_used = time.monotonic()
            self._dispatch()
        if not flight.future.done():
            flight.future.set_result(outcomes)

    def _arm(self, flight: _InFlight) -> None:
        """Start a call's timeout (once its actor runs) and wake the collector to watch it."""
        timeout = flight.call.timeout or 0.0
        flight.deadline = time.monotonic() + timeout * len(flight.call.items) + _GRACE_S
        self.results.put(("wake", None, None))

    def _collect(self) -> None:
        """Finish calls as results arrive; kill actors past a timeout; unblock placement."""
        while True:
            with self.lock:
                actors = [a for p in self.pools.values() for a in p.actors]
                deadlines = [a.busy.deadline for a in actors
                             if a.busy is not None and a.busy.deadline is not None
                             and not a.busy.timed_out]
                if any(not a.ready for a in actors):
                    deadlines.append(time.monotonic() + _PLACEMENT_CHECK_S)
                deadlines += [a.last_used + _IDLE_S for a in actors if a.busy is None and a.ready]
            wait_s = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            try:
                kind, actor, done = self.results.get(timeout=wait_s)
            except queue.Empty:
                self._expire()
                self._unblock()
                self.release(idle_for=_IDLE_S)
                continue
            try:
                if kind == "ready":
                    self._ready(actor)
                elif kind == "loaded":
                    self._loaded(done)
                elif kind == "done":
                    self._finished(actor, *done)
                self._expire()
            except Exception as exc:  # the collector must outlive any one call
                if kind == "done":
                    self._refuse(done[0], exc)

    def _ready(self, actor: _Actor) -> None:
        with self.lock:
            actor.ready = True
            busy = actor.busy
            if busy is not None and busy.call.timeout and busy.deadline is None \
                    and not busy.loading:
                self._arm(busy)

    def _loaded(self, flight: _InFlight) -> None:
        with self.lock:
            flight.loading = False
            if flight.call.timeout and flight.deadline is None and not flight.future.done():
                self._arm(flight)

    def _unblock(self) -> None:
        """An actor Ray cannot place for a while: stop the idle actors of other environments.

        The room counted here is the cluster's total; one node may still lack it
        (an idle actor holding the only CPU of the node with the GPU).
        """
        now = time.monotonic()
        with self.lock:
            stuck = [a for p in self.pools.values() for a in p.actors
                     if not a.ready and now - a.created > _PLACEMENT_CHECK_S]
            for actor in stuck:
                idle = [a for p in self.pools.values() if p is not actor.pool
                        for a in p.actors if a.busy is None and a.ready]
                for other in idle:  # which node lacks room is Ray's to know: free them all
                    self._stop(other)
                actor.created = now  # give Ray time to place it before looking again

    def _expire(self) -> None:
        now = time.monotonic()
        with self.lock:
            for pool in self.pools.values():
                for actor in pool.actors:
                    busy = actor.busy
                    if busy and busy.deadline is not None and busy.deadline <= now \
                            and not busy.timed_out:
                        busy.timed_out = True  # its call then fails with RayActorError
                        ray.kill(actor.handle, no_restart=True)

    def release(self, idle_for: float = 0.0) -> int:
        """Stop actors idle for ``idle_for`` seconds; returns how many.

        An actor holds its CPUs and GPUs while it lives, even idle: after a
        while they go back to the cluster (and to the user's own Ray tasks).
        """
        now = time.monotonic()
        stopped = 0
        with self.lock:
            for pool in self.pools.values():
                for actor in [a for a in pool.actors if a.busy is None
                              and now - a.last_used >= idle_for]:
                    self._stop(actor)
                    stopped += 1
        return stopped

    def cancel_all(self) -> None:
        """Kill every actor (Ctrl-C or a broken run); the next call starts new ones."""
        with self.lock:
            pending, self.pending = self.pending, []
            for pool in self.pools.values():
                for actor in pool.actors:
                    ray.kill(actor.handle, no_restart=True)
                pool.actors.clear()
        for flight in pending:
            flight.future.cancel()


def _first_line(exc: BaseException) -> str:
    lines = str(exc).splitlines()
    return lines[0] if lines else type(exc).__name__


def _last_line(exc: BaseException) -> str:
    lines = str(exc).splitlines()
    return lines[-1] if lines else type(exc).__name__


def _needs(task: Task[..., Any]) -> dict[str, float]:
    """A task's requests as Ray resources (an unset cpu request is one CPU, as locally)."""
    request = request_of(task)
    need = {"CPU": request.cpu}
    if request.gpu:
        need["GPU"] = request.gpu
    if request.mem:
        need["memory"] = float(request.mem)
    if task.config.accelerator is not None:
        need[f"accelerator_type:{ray_accelerator(task.config.accelerator.device)}"] = 0.001
    return need


def ray_accelerator(device: str) -> str:
    """Ray's accelerator type for a flytekit device name ("nvidia-tesla-t4" -> "T4")."""
    name = device.strip()
    for prefix in ("nvidia-tesla-", "nvidia-", "amd-", "google-", "intel-"):
        if name.lower().startswith(prefix):
            name = name[len(prefix):]
            break
    return name.upper() if name.islower() or name.isalnum() else name


def _cluster_totals() -> dict[str, float]:
    totals: dict[str, float] = {}
    for node in ray.nodes():
        if node.get("Alive"):
            for key, value in node.get("Resources", {}).items():
                totals[key] = totals.get(key, 0.0) + float(value)
    return totals


def _fits(need: dict[str, float], free: dict[str, float]) -> bool:
    return all(free.get(k, 0.0) + 1e-9 >= v for k, v in need.items())


def _fits_count(need: dict[str, float], totals: dict[str, float]) -> int:
    counts = [int(totals.get(k, 0.0) / v + 1e-9) for k, v in need.items() if v >= 0.01]
    return max(1, min(counts, default=1))


_executor: tuple[str, RayExecutor] | None = None


def release_actors() -> int:
    """Stop sterna's idle Ray actors now, giving their resources back; returns how many."""
    return _executor[1].release() if _executor is not None else 0


def ray_executor(address: str | None) -> RayExecutor:
    """The Ray executor: joins Ray as described above, once per Ray session."""
    global _executor
    joined = bool(address or os.environ.get("RAY_ADDRESS"))
    if not ray.is_initialized():
        if joined:
            ray.init(address=address or os.environ["RAY_ADDRESS"], log_to_driver=True)
        else:
            ray.init(address="local", log_to_driver=True, include_dashboard=False)
    context = ray.get_runtime_context()
    session = f"{context.get_node_id()}/{context.get_job_id()}"  # new for every ray.init
    if _executor is None or _executor[0] != session:
        _executor = (session, RayExecutor(use_images=joined))
    else:
        _executor[1].refresh()
    return _executor[1]
