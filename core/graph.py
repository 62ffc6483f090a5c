"""The workflow graph: pure data, built by tracing and read by the engine.

A ``Graph`` holds nodes (one task call each), how each input is bound
(a workflow input, another node's output, a constant, or a list/dict of
those), explicit ordering edges (``a >> b``) and the workflow's outputs.
Dependencies are exactly the data and explicit edges: two nodes with neither
between them carry no order, so parallel executors may run them at once.
"""

from __future__ import annotations

import graphlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

from .errors import WorkflowDefinitionError

if TYPE_CHECKING:
    from .interface import Interface
    from .task import Task


@dataclass(frozen=True, slots=True)
class InputRef:
    """The workflow input ``name``."""

    name: str


@dataclass(frozen=True, slots=True)
class NodeRef:
    """Output ``output`` of node ``node``."""

    node: str
    output: str


@dataclass(frozen=True, slots=True)
class Const:
    """A literal value fixed when the workflow was defined."""

    value: Any


@dataclass(frozen=True, slots=True)
class ListOf:
    """A list built from several bindings (``t(xs=[a, b])``)."""

    items: tuple[Binding, ...]


@dataclass(frozen=True, slots=True)
class DictOf:
    """A dict built from several bindings (``t(m={"a": a})``)."""

    items: tuple[tuple[str, Binding], ...]


Binding = Union[InputRef, NodeRef, Const, ListOf, DictOf]


def binding_nodes(binding: Binding) -> set[str]:
    """Node ids a binding reads from."""
    if isinstance(binding, NodeRef):
        return {binding.node}
    if isinstance(binding, ListOf):
        return set().union(*(binding_nodes(b) for b in binding.items))
    if isinstance(binding, DictOf):
        return set().union(*(binding_nodes(b) for _, b in binding.items))
    return set()


@dataclass(frozen=True)
class Node:
    """One call of a task inside a workflow."""

    id: str
    task: Task[..., Any]
    bindings: dict[str, Binding]
    after: frozenset[str] = frozenset()

    def producers(self) -> frozenset[str]:
        """Nodes whose outputs this node reads."""
        data: set[str] = set()
        for binding in self.bindings.values():
            data |= binding_nodes(binding)
        return frozenset(data)

    def upstream(self) -> frozenset[str]:
        """Nodes that must finish first: data producers plus explicit ``>>`` edges."""
        return self.producers() | self.after


@dataclass(frozen=True)
class Graph:
    """A workflow as data: nodes, their bindings, the outputs, a dependency order."""

    name: str
    interface: Interface
    nodes: dict[str, Node]
    outputs: dict[str, Binding]
    order: tuple[str, ...]
    kind: str = "workflow"  # "task" for the one-node graph of ``sterna.run(task)``

    @classmethod
    def build(
        cls, name: str, interface: Interface, nodes: dict[str, Node],
        outputs: dict[str, Binding], kind: str = "workflow",
    ) -> Graph:
        """Validate references, reject cycles, and compute a dependency order."""
        deps = {node_id: node.upstream() for node_id, node in nodes.items()}
        for node_id, upstream in deps.items():
            missing = upstream - nodes.keys()
            if missing:
                raise WorkflowDefinitionError(
                    f"workflow {name!r}: node {node_id!r} depends on unknown node "
                    f"{sorted(missing)[0]!r}")
        try:
            order = tuple(graphlib.TopologicalSorter(deps).static_order())
        except graphlib.CycleError as exc:
            cycle = " >> ".join(exc.args[1])
            raise WorkflowDefinitionError(
                f"workflow {name!r} has a cycle: {cycle}; remove one of the '>>' orderings"
            ) from None
        return cls(name, interface, nodes, outputs, order, kind)

    def tasks(self) -> list[Task[..., Any]]:
        """Every task the graph calls: its nodes' tasks and the tasks map nodes call."""
        found: dict[int, Task[..., Any]] = {}
        for node in self.nodes.values():
            found.setdefault(id(node.task), node.task)
            inner = getattr(node.task, "inner", None)
            if inner is not None:
                found.setdefault(id(inner), inner)
        return list(found.values())

    def cached_tasks(self) -> list[Task[..., Any]]:
        """Tasks whose calls go to the cache, including the tasks that map nodes call."""
        return [task for task in self.tasks() if task.config.cache]

    @property
    def has_maps(self) -> bool:
        """Whether a node maps its task over lists (such graphs run through the scheduler)."""
        cached = self.__dict__.get("_has_maps")
        if cached is None:
            cached = any(getattr(n.task, "is_map", False) for n in self.nodes.values())
            object.__setattr__(self, "_has_maps", cached)
        return cached

    def dependencies(self, node_id: str) -> frozenset[str]:
        """Direct upstream nodes of ``node_id``."""
        return self.nodes[node_id].upstream()

    def sorter(self) -> graphlib.TopologicalSorter[str]:
        """A fresh scheduler over the graph (``get_ready`` / ``done``), for parallel loops."""
        sorter = graphlib.TopologicalSorter({n: node.upstream() for n, node in self.nodes.items()})
        sorter.prepare()
        return sorter
