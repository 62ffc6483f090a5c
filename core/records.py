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


class NodeRecord:
    """The execution of one node: status, attempts, timing and error."""

    __slots__ = ("attempts", "end", "error", "node_id", "start", "status", "task")

    def __init__(self, node_id: str, task: str, status: str, start: float, end: float,
                 attempts: list[Attempt], error: str | None = None) -> None:
        self.node_id = node_id
        self.task = task
        self.status = status
        self.start = start
        self.end = end
        self.attempts = attempts
        self.error = error

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

    __slots__ = ("end", "executor", "inputs", "interface", "name", "nodes", "outputs_by_name",
                 "run_id", "start", "status")

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
