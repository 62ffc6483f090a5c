"""What a run leaves behind: the ``Run`` and one ``NodeRecord`` per node.

Plain objects with ``__slots__``, built in memory while the run goes, so
recording costs a few hundred nanoseconds per node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .interface import Interface

SUCCEEDED, FAILED, SKIPPED, INTERRUPTED, RUNNING = (
    "succeeded", "failed", "skipped", "interrupted", "running")


class Attempt:
    """One try of a node: 1-based ``number``, wall-clock start/end, error text if it failed."""

    __slots__ = ("end", "error", "number", "start")

    def __init__(self, number: int, start: float, end: float, error: str | None) -> None:
        self.number = number
        self.start = start
        self.end = end
        self.error = error

    @property
    def duration(self) -> float:
        return self.end - self.start

    def __repr__(self) -> str:
        outcome = "ok" if self.error is None else self.error
        return f"<attempt {self.number}: {outcome} in {self.duration * 1e3:.2f} ms>"


class CacheInfo:
    """What the cache did for one node, and where its time went.

    ``status`` is hit, miss, overwritten or disabled; times are seconds spent
    hashing inputs, loading inputs from the store, computing, and storing
    outputs; ``saved_s`` is the compute time a hit avoided.
    """

    __slots__ = ("bytes_in", "bytes_out", "compute_s", "hash_s", "inputs", "key", "load_s",
                 "outputs", "saved_s", "status", "store_s")

    def __init__(self, status: str, key: str | None = None) -> None:
        self.status = status
        self.key = key
        self.hash_s = self.load_s = self.compute_s = self.store_s = self.saved_s = 0.0
        self.bytes_in = self.bytes_out = 0
        self.inputs: dict[str, str] = {}
        self.outputs: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<cache {self.status} {self.key or ''}>"


class NodeRecord:
    """The execution of one node: status, attempts, timing and error.

    ``cache`` is a ``CacheInfo`` for nodes of cached tasks (None otherwise).
    """

    __slots__ = ("attempts", "cache", "end", "error", "node_id", "start", "status", "task")

    def __init__(self, node_id: str, task: str, status: str, start: float, end: float,
                 attempts: list[Attempt], error: str | None = None) -> None:
        self.node_id = node_id
        self.task = task
        self.status = status
        self.start = start
        self.end = end
        self.attempts = attempts
        self.error = error
        self.cache: CacheInfo | None = None

    @property
    def cache_status(self) -> str:
        """hit, miss, overwritten, or disabled (the task is not cached, or caching is off)."""
        return "disabled" if self.cache is None else self.cache.status

    @property
    def duration(self) -> float:
        return self.end - self.start

    def __repr__(self) -> str:
        return (f"<node {self.node_id} ({self.task}): {self.status}, "
                f"{len(self.attempts)} attempt(s), {self.duration * 1e3:.2f} ms>")


class Run:
    """A workflow run: id, status, inputs, per-node records and outputs.

    ``outputs`` is what calling the workflow returns (a value, a tuple, a
    NamedTuple or None); ``outputs_by_name`` maps output names to values.
    """

    __slots__ = ("end", "error", "executor", "input_digests", "inputs", "interface", "name",
                 "nodes", "outputs_by_name", "run_id", "start", "status")

    def __init__(self, run_id: str, name: str, interface: Interface, inputs: dict[str, Any],
                 executor: str, start: float) -> None:
        self.run_id = run_id
        self.name = name
        self.interface = interface
        self.inputs = inputs
        self.executor = executor
        self.start = start
        self.end = start
        self.status = RUNNING
        self.nodes: dict[str, NodeRecord] = {}
        self.outputs_by_name: dict[str, Any] = {}
        self.error: str | None = None
        self.input_digests: dict[str, str] = {}

    @property
    def outputs(self) -> Any:
        """The outputs as calling the workflow returns them; only a succeeded run has them."""
        if self.status != SUCCEEDED:
            from .errors import SternaError

            raise SternaError(f"run {self.run_id} of {self.name} {self.status}; it has no outputs")
        return self.interface.pack(self.outputs_by_name)

    @property
    def duration(self) -> float:
        return self.end - self.start

    def __repr__(self) -> str:
        return (f"<run {self.run_id} of {self.name}: {self.status}, {len(self.nodes)} nodes, "
                f"{self.duration * 1e3:.1f} ms>")
