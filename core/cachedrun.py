"""The engine loop with the cache: look up, load only what is needed, store, record.

For each node of a cached task the key is made from the digests of its
inputs; a hit yields *references* to the stored outputs, not values. A value
is loaded only when a node that actually runs needs it, or when it is a
workflow output, so a fully cached pipeline reads almost nothing. A miss runs
the task and hashes and encodes its outputs at once; a writer thread then
makes the blobs durable and commits the entry (blobs first, always) while the
next task computes, and the run waits for it before returning, so a run that
ends keeps everything it finished. A blob found missing or corrupt on load is
quarantined and its producer recomputed.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout

from sterna.cache.blobs import BlobError
from sterna.cache.codecs import EncodeError, digest_value
from sterna.cache.ingest import mark_running
from sterna.cache.keys import CacheKey
from sterna.cache.registry import task_key, task_version
from sterna.cache.store import CacheMiss, Entry, Prepared, Store, StoredOutput
from sterna.typesys.types import SType

from .engine import execute_node, resolve
from .errors import SternaError, SternaWarning
from .executors.base import fetch
from .graph import Binding, Const, DictOf, Graph, InputRef, ListOf, NodeRef, binding_nodes
from .records import SUCCEEDED, CacheInfo, NodeRecord, Run
from .task import Task

if TYPE_CHECKING:
    from .admission import Admission
    from .executors.base import Executor

USE, OVERWRITE, OFF = "use", "overwrite", "off"


@dataclass(frozen=True, slots=True)
class Deferred:
    """A call whose key another node of this run (or another process) is computing now."""

    key: str
    elsewhere: bool = False  # another process holds the key's lock: try again shortly


@dataclass(slots=True, eq=False)
class Work:
    """A call that must run: its inputs and, for a cached task, its key and cache record."""

    node_id: str  # the node, or ``node[i]`` for an item of a map
    task: Task[..., Any]
    inputs: dict[str, Any]
    info: CacheInfo | None = None
    key: CacheKey | None = None
    lock: FileLock | None = None
    item: bool = False
    code: dict[str, str] = field(default_factory=dict)


class CachedRun:
    """State of one run over the cache (values, references, digests)."""

    def __init__(self, graph: Graph, run: Run, inputs: dict[str, Any], store: Store,
                 mode: str, project: str, domain: str) -> None:
        self.graph, self.run, self.inputs, self.store = graph, run, inputs, store
        self.mode, self.project, self.domain = mode, project, domain
        self.values: dict[str, dict[str, Any]] = {}
        self.refs: dict[str, dict[str, StoredOutput]] = {}
        self.digests: dict[tuple[str, str], str] = {}
        self.entries: dict[str, Entry] = {}
        self.complete = True
        self.hits: list[str] = []
        self.marked = False  # whether the run's 'running' row is written
        self.made: dict[str, str] = {}  # cache key -> node that computed it in this run
        self.tasks: dict[str, Task[..., Any]] = {}  # map items' tasks, by record id
        self.computing: set[str] = set()  # keys of calls running now
        self.scratch = str(store.home / "scratch" / run.run_id)
        self._jobs: list[Future[list[str]]] = []
        self._queue: list[tuple[Any, ...]] = []
        self._queue_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    # -- the loop ---------------------------------------------------------------
    def execute(self, executor: Executor, admission: Admission | None = None) -> None:
        """Run every node through the scheduler, then resolve the workflow outputs.

        Background writes are waited for before returning, also when a task
        fails, so every finished task's entry is committed.
        """
        from .scheduler import Scheduler

        self._open()
        try:
            Scheduler(self, executor, admission).execute()
            self.run.outputs_by_name = {name: fetch(self.value_of(b, None))
                                        for name, b in self.graph.outputs.items()}
        finally:
            self.drain()

    def _open(self) -> None:
        """One read-only session: the entries of this graph's cached tasks.

        A run where everything hits needs this session and no other; the run is
        marked as running in the first session that writes (its first miss).
        """
        if self.mode != USE:
            return
        pairs = sorted({(task.name, task_version(task).cache_version)
                        for task in self.graph.cached_tasks()})
        read_only = self.store.index.path.exists()  # a new store needs its schema written
        try:
            with self.store.index.session(read_only=read_only) as con:
                self.entries, self.complete = self.store.read_entries(con, pairs, [])
                if not self.complete:
                    self._probe(con)
        except SternaError as exc:
            warnings.warn(f"cache: the store cannot be read ({exc}); running without the cache",
                          SternaWarning, stacklevel=2)
            self.mode = OFF

    def begin(self, node_id: str) -> Work | Deferred | None:
        """What a node needs to run, or None when the cache (or this run) already has it."""
        task = self.graph.nodes[node_id].task
        if not (task.config.cache and self.mode != OFF):
            return Work(node_id, task, self.inputs_of(node_id))
        began = time.perf_counter()
        digests = self._input_digests(node_id, task, known_only=False)
        assert digests is not None
        return self.begin_call(node_id, task, digests, lambda: self.inputs_of(node_id),
                               began=began)

    def begin_call(self, record_id: str, task: Task[..., Any], digests: dict[str, str],
                   inputs: Callable[[], dict[str, Any]], *, began: float,
                   item: bool = False) -> Work | Deferred | None:
        """Look a cached call up; on a miss, return the work with its inputs loaded.

        ``inputs`` is called only on a miss, so a hit loads nothing.
        ``cache_serialize`` tasks hold the key's lock from here until
        ``finish`` or ``abort``. A call whose key is being computed by another
        node of this run is ``Deferred`` until that node ends.
        """
        key = task_key(task, digests)
        hash_s = time.perf_counter() - began
        if key.key in self.made:  # the same call earlier in this run: reuse its values
            self._same_as(record_id, task, self.made[key.key], digests, key.key)
            return None
        if key.key in self.computing:  # the same call is running: wait for it, then reuse it
            return Deferred(key.key)
        entry = self._find(key.key) if self.mode == USE else None
        if entry is not None and self._hit(record_id, task, entry, digests, hash_s, item):
            return None
        lock = self._lock(task, key.key)
        if lock is False:
            return Deferred(key.key, elsewhere=True)
        try:
            if lock is not None and self.mode == USE:
                entry = self._lookup_now(key.key)  # another run may have made it meanwhile
                if entry is not None and self._hit(record_id, task, entry, digests, hash_s,
                                                   item):
                    lock.release()
                    return None
            info = CacheInfo("overwritten" if self.mode == OVERWRITE else "miss", key.key)
            info.inputs, info.hash_s = digests, hash_s
            self._mark_running()
            loading = time.perf_counter()
            values = inputs()
            info.load_s = time.perf_counter() - loading
            info.bytes_in = sum(_nbytes(v) for v in values.values())
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        self.tasks[record_id] = task
        self.computing.add(key.key)
        return Work(record_id, task, values, info, key, lock, item,
                    task_version(task).code_components)

    def finish(self, work: Work, outputs: dict[str, Any],
               stored: dict[str, StoredOutput] | None = None) -> None:
        """Keep a finished call's outputs; store them if its task is cached."""
        try:
            self.values[work.node_id] = outputs
            info, key = work.info, work.key
            if info is None or key is None:
                return
            if not work.item:
                loaded = self._input_digests(work.node_id, work.task, known_only=False)
                if loaded != info.inputs:  # loading recomputed an upstream value: it differs
                    assert loaded is not None
                    key = task_key(work.task, loaded)
                    info.key, info.inputs = key.key, loaded
            self.made[key.key] = work.node_id
            self._store(work.node_id, work.task, key.components, outputs, info, work.code,
                        stored)
        finally:
            self.abort(work)

    def abort(self, work: Work) -> None:
        """Release what a call held (the ``cache_serialize`` lock, its key being computed)."""
        if work.key is not None:
            self.computing.discard(work.key.key)
        if work.lock is not None:
            work.lock.release()
            work.lock = None

    def inputs_of(self, node_id: str) -> dict[str, Any]:
        """A node's input values, loading (or recomputing) stored outputs as needed."""
        node = self.graph.nodes[node_id]
        return {name: self.value_of(binding, None) for name, binding in node.bindings.items()}

    def _same_as(self, node_id: str, task: Task[..., Any], source: str,
                 digests: dict[str, str], key: str) -> None:
        """A node whose call was already computed in this run takes that node's outputs."""
        now = time.time()
        record = NodeRecord(node_id, task.name, SUCCEEDED, now, now, [])
        info = record.cache = CacheInfo("hit", key)
        done = self.run.nodes[source].cache
        info.inputs, info.saved_s = digests, done.compute_s if done else 0.0
        info.outputs = dict(done.outputs) if done else {}
        self.run.nodes[node_id] = record
        self.values[node_id] = self.values[source]
        for name in task.interface.outputs:
            self.digests[(node_id, name)] = self.digests[(source, name)]

    def _lock(self, task: Task[..., Any], key: str) -> FileLock | bool | None:
        """For ``cache_serialize`` tasks, one process computes a key while others wait.

        Never blocks: a key locked elsewhere gives False and the call is tried
        again shortly, so two runs locking keys in different orders cannot deadlock.
        """
        if not task.config.cache_serialize:
            return None
        folder = self.store.home / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(folder / f"{key}.lock", thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return False
        return lock

    def _lookup_now(self, key: str) -> Entry | None:
        with self.store.index.session(read_only=True) as con:
            return self.store.lookup(con, [key]).get(key)

    def _probe(self, con: Any) -> None:
        """Look up, in the open session, every key knowable without running anything.

        Used when a task has too many entries to read them all: keys are computed
        level by level from workflow inputs and from the outputs of hits found so
        far, each level in one query, so a run that hits everywhere still needs
        one session.
        """
        pending = [n for n in self.graph.order if self.graph.nodes[n].task.config.cache]
        while pending:
            keys: dict[str, str] = {}
            for node_id in pending:
                task = self.graph.nodes[node_id].task
                digests = self._input_digests(node_id, task, known_only=True)
                if digests is not None:
                    keys[node_id] = task_key(task, digests).key
            found = self.store.lookup(con, list(keys.values()))
            self.entries.update(found)
            hits = [n for n, k in keys.items() if k in found]
            for node_id in hits:
                for name, out in found[keys[node_id]].outputs.items():
                    self.digests[(node_id, name)] = out.digest
            if not hits:
                return
            pending = [n for n in pending if n not in keys]

    def _input_digests(self, node_id: str, task: Task[..., Any], *, known_only: bool,
                       ) -> dict[str, str] | None:
        """Digests of a node's inputs; with ``known_only``, None if one needs a value."""
        node = self.graph.nodes[node_id]
        if known_only and any((n, o) not in self.digests for n in node.producers()
                              for o in self.graph.nodes[n].task.interface.outputs):
            return None
        return {name: self.digest_of(node.bindings[name], param.stype)
                for name, param in task.interface.inputs.items()}

    def _find(self, key: str) -> Entry | None:
        entry = self.entries.get(key)
        if entry is None and not self.complete:
            with self.store.index.session(read_only=True) as con:
                entry = self.store.lookup(con, [key]).get(key)
        return entry

    def _hit(self, node_id: str, task: Task[..., Any], entry: Entry, digests: dict[str, str],
             hash_s: float, item: bool = False) -> bool:
        """Record a hit. A map item loads its values now (False if a blob is unusable)."""
        if item:
            self.tasks[node_id] = task
            try:
                self.values[node_id] = {name: self.store.load(task.interface.outputs[name], out)
                                        for name, out in entry.outputs.items()}
            except CacheMiss:
                return False
        now = time.time()
        record = NodeRecord(node_id, task.name, SUCCEEDED, now, now, [])
        info = record.cache = CacheInfo("hit", entry.key)
        info.inputs, info.hash_s, info.saved_s = digests, hash_s, entry.compute_s
        info.outputs = {name: out.digest for name, out in entry.outputs.items()}
        self.run.nodes[node_id] = record
        self.refs[node_id] = entry.outputs
        for name, out in entry.outputs.items():
            self.digests[(node_id, name)] = out.digest
        self.hits.append(entry.key)
        return True

    # -- computing and storing ----------------------------------------------------
    def _compute(self, node_id: str, task: Task[..., Any], info: CacheInfo | None,
                 ) -> dict[str, Any]:
        began = time.perf_counter()
        node = self.graph.nodes[node_id]
        kwargs = {name: fetch(self.value_of(binding, task.interface.inputs[name].stype))
                  for name, binding in node.bindings.items()}
        loaded = time.perf_counter()
        try:
            return execute_node(node_id, task, kwargs, self.run.nodes)
        finally:  # a failed node of a cached task is still a miss, with its times
            record = self.run.nodes.get(node_id)
            if info is not None and record is not None:
                info.load_s = loaded - began
                info.compute_s = time.perf_counter() - loaded
                info.bytes_in = sum(_nbytes(v) for v in kwargs.values())
                record.cache = info

    def _store(self, node_id: str, task: Task[..., Any], components: dict[str, str],
               outputs: dict[str, Any], info: CacheInfo, code: dict[str, str],
               stored: dict[str, StoredOutput] | None = None) -> None:
        """Digest and encode the outputs now; write blobs and the entry in the background.

        The entry is committed only after its blobs are durable, in the writer
        thread, so the next task computes while a table is written and fsynced.
        ``cache_serialize`` tasks write synchronously: another process waits for
        the entry. Outputs a worker already ``stored`` only need their entry.
        """
        began = time.perf_counter()
        try:
            prepared = ({name: Prepared(out.codec, out.digest, stored=out)
                         for name, out in stored.items()} if stored is not None else
                        {name: self.store.prepare(task.interface.outputs[name], fetch(value))
                         for name, value in outputs.items()})
        except EncodeError as exc:
            self.run.nodes[node_id].status = "failed"
            raise SternaError(f"{task.label} (node {node_id!r}): an output cannot be stored: "
                              f"{exc}") from None
        except BlobError as exc:
            warnings.warn(f"cache: outputs of {task.label} not stored ({exc}); the run goes on "
                          "without caching them", SternaWarning, stacklevel=2)
            return
        for name, ready in prepared.items():
            self.digests[(node_id, name)] = ready.digest
        info.outputs = {name: ready.digest for name, ready in prepared.items()}
        info.store_s += time.perf_counter() - began

        with self._queue_lock:
            self._queue.append((task, components, prepared, info, code))
        if task.config.cache_serialize:  # committed before the key's lock is released
            self._wait_jobs()
            for problem in self._write_queued():
                self._report(problem)
        else:
            self._jobs.append(self._writer().submit(self._write_queued))

    def _write_queued(self) -> list[str]:
        """Write the blobs of every queued output, then commit their entries in one session.

        Returns warning texts instead of raising (it runs in the writer thread).
        Entries that finish while a session is busy wait in the queue and share
        the next one, so a chain of small cached tasks does not pay a session each.
        """
        with self._queue_lock:
            queued, self._queue = self._queue, []
        problems, ready = [], []
        for task, components, prepared, info, code in queued:
            began = time.perf_counter()
            try:
                stored = {name: self.store.write(item) for name, item in prepared.items()}
            except Exception as exc:  # BlobError, or any failure of a store: never the run's
                problems.append(f"cache: outputs of {task.label} not stored ({exc}); the run "
                                "goes on without caching them")
                continue
            info.bytes_out = sum(out.size for out in stored.values())
            info.store_s += time.perf_counter() - began
            ready.append((task, Entry(info.key or "", task.name, components, stored,
                                      info.compute_s, code)))
        if ready:
            try:
                with self.store.index.session() as con:
                    for task, entry in ready:
                        version = task_version(task)
                        self.store.write_entry(con, entry, project=self.project,
                                               domain=self.domain, task_version=version.version,
                                               cache_version=version.cache_version,
                                               run_id=self.run.run_id)
            except SternaError as exc:
                names = ", ".join(sorted({task.label for task, _ in ready}))
                noun = "entry" if len(ready) == 1 else "entries"
                problems.append(f"cache: {noun} of {names} not recorded ({exc})")
        return problems

    def _mark_running(self) -> None:
        """Record the run as running at its first miss (so a killed run is still seen).

        Synchronous on purpose: a run that computes pays one short session for
        it, a run that only hits pays nothing.
        """
        if self.marked:
            return
        self.marked = True
        try:
            with self.store.index.session() as con:
                mark_running(con, self.run, self.graph, self.project, self.domain)
        except SternaError as exc:
            warnings.warn(f"cache: run not recorded as running ({exc})", SternaWarning,
                          stacklevel=3)

    def _writer(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sterna-store")
        return self._pool

    def _wait_jobs(self) -> None:
        """Wait for the background writes submitted so far; report their failures here."""
        jobs, self._jobs = self._jobs, []
        for job in jobs:
            for problem in job.result():
                self._report(problem)

    def drain(self) -> None:
        """Wait for every background write, then stop the writer thread."""
        self._wait_jobs()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    @staticmethod
    def _report(problem: str | None) -> None:
        if problem:
            warnings.warn(problem, SternaWarning, stacklevel=3)

    # -- values and digests -------------------------------------------------------
    def value_of(self, binding: Binding, stype: SType | None) -> Any:
        """The value of a binding, loading (or recomputing) stored outputs as needed."""
        if isinstance(binding, NodeRef):
            return self._node_value(binding.node, binding.output)
        if isinstance(binding, (InputRef, Const)):
            return resolve(binding, {}, self.inputs)
        for node_id in binding_nodes(binding):
            for output in self.graph.nodes[node_id].task.interface.outputs:
                self._node_value(node_id, output)
        return resolve(binding, self.values, self.inputs)

    def _node_value(self, node_id: str, output: str) -> Any:
        values = self.values.get(node_id)
        if values is None:
            values = self._load_node(node_id)
        return values[output]

    def _load_node(self, node_id: str) -> dict[str, Any]:
        """Load a hit's outputs (tables memory-mapped); recompute it if a blob is unusable."""
        task = self.graph.nodes[node_id].task
        try:
            values = {name: self.store.load(task.interface.outputs[name], stored)
                      for name, stored in self.refs[node_id].items()}
        except CacheMiss:
            self._recompute(node_id, task)
            return self.values[node_id]
        self.values[node_id] = values
        return values

    def _recompute(self, node_id: str, task: Task[..., Any]) -> None:
        """A hit whose blob is unusable: run its task again and store the result."""
        record = self.run.nodes.get(node_id)
        info = CacheInfo("miss", record.cache.key if record and record.cache else None)
        info.inputs = record.cache.inputs if record and record.cache else {}
        outputs = self._compute(node_id, task, info)
        self.values[node_id] = outputs
        self.refs.pop(node_id, None)
        version = task_version(task)
        components = task_key(task, info.inputs).components
        self._store(node_id, task, components, outputs, info, version.code_components)

    def digest_of(self, binding: Binding, stype: SType) -> str:
        """The digest of a binding's value, computing it only when not already known."""
        if isinstance(binding, NodeRef):
            known = self.digests.get((binding.node, binding.output))
            if known is None:
                producer = self.graph.nodes[binding.node].task
                value = fetch(self._node_value(binding.node, binding.output))
                known = digest_value(producer.interface.outputs[binding.output], value)
                self.digests[(binding.node, binding.output)] = known
            return known
        if isinstance(binding, InputRef):
            known = self.run.input_digests.get(binding.name)
            if known is None:
                known = digest_value(self.graph.interface.inputs[binding.name].stype,
                                     self.inputs[binding.name])
                self.run.input_digests[binding.name] = known
            return known
        if isinstance(binding, (ListOf, DictOf)):
            return collection_digest(binding, stype, self.digest_of)
        return digest_value(stype, fetch(self.value_of(binding, stype)))


def collection_digest(binding: ListOf | DictOf, stype: SType,
                      item_digest: Callable[[Binding, SType], str]) -> str:
    """Digest of a list or dict built from bindings, from its items' digests.

    Items that are upstream results contribute the digests already known, so
    hashing such an input never loads the values behind it.
    """
    from sterna.cache.fingerprint import digest_parts
    from sterna.typesys.types import AnyT, DictT, ListT

    if isinstance(binding, ListOf):
        item = stype.item if isinstance(stype, ListT) else AnyT(Any)
        parts = [(str(i), item_digest(b, item)) for i, b in enumerate(binding.items)]
        return digest_parts([("list", str(len(parts))), *parts])
    value = stype.value if isinstance(stype, DictT) else AnyT(Any)
    return digest_parts([("dict", str(len(binding.items))),
                         *sorted((k, item_digest(b, value)) for k, b in binding.items)])


def _nbytes(value: Any) -> int:
    size = getattr(value, "nbytes", None)
    return size if isinstance(size, int) else 0
