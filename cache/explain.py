"""Explain, without running anything, which tasks of a run would hit the cache and why not.

For each cached node whose inputs can be known (workflow inputs, constants,
outputs of nodes that would hit), the key is computed as a run would compute
it; a miss is compared with the closest earlier entry of the same task and
each changed component is named: the code of which function, which input,
which upstream result, the cache version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sterna.core.graph import Binding, DictOf, Graph, InputRef, ListOf, NodeRef
from sterna.typesys.types import SType

from .codecs import digest_value
from .index import rows
from .keys import closest, explain_difference
from .registry import task_key, task_version
from .store import Entry, Store, _entry


@dataclass
class NodeExplanation:
    """The cache verdict for one node: ``hit``, ``miss``, ``not cached`` or ``depends``."""

    node_id: str
    task: str
    status: str
    reasons: list[str] = field(default_factory=list)
    key: str | None = None


def explain(store: Store, graph: Graph, inputs: dict[str, Any]) -> list[NodeExplanation]:
    """Per node, in dependency order: would it hit, and if not, what changed."""
    cached = sorted({node.task.name for node in graph.nodes.values() if node.task.config.cache})
    with store.session() as con:
        found = rows(con, f"SELECT * FROM cache_entries WHERE task IN "
                          f"({', '.join('?' for _ in cached)}) ORDER BY created_at", cached
                     ) if cached else []
    by_task: dict[str, list[Entry]] = {}
    for row in found:
        by_task.setdefault(row["task"], []).append(_entry(row))
    known: dict[tuple[str, str], str] = {}
    unknown: dict[str, str] = {}  # node id -> why its outputs cannot be known
    result = []
    for node_id in graph.order:
        node = graph.nodes[node_id]
        task = node.task
        waiting = [n for n in node.producers() if n in unknown]
        if not task.config.cache:
            unknown[node_id] = "is not cached"
            result.append(NodeExplanation(node_id, task.name, "not cached",
                                          ["the task has cache=False: it always runs"]))
            continue
        if waiting:
            unknown[node_id] = "runs first"
            reasons = [f"needs the result of {w!r}, which {unknown[w]}; it hits afterwards only "
                       "if that result is unchanged" for w in sorted(set(waiting))]
            result.append(NodeExplanation(node_id, task.name, "depends", reasons))
            continue
        digests = {name: _digest(b, task.interface.inputs[name].stype, graph, inputs, known)
                   for name, b in node.bindings.items()}
        version = task_version(task)
        key = task_key(task, digests)
        entries = by_task.get(task.name, [])
        hit = next((e for e in entries if e.key == key.key), None)
        if hit is not None:
            for name, out in hit.outputs.items():
                known[(node_id, name)] = out.digest
            result.append(NodeExplanation(node_id, task.name, "hit", [], key.key))
            continue
        unknown[node_id] = "misses"
        result.append(NodeExplanation(node_id, task.name, "miss",
                                      _reasons(key.components, version.code_components,
                                               entries, node.bindings), key.key))
    return result


def _reasons(components: dict[str, str], code: dict[str, str], entries: list[Entry],
             bindings: dict[str, Binding]) -> list[str]:
    if not entries:
        return ["no earlier entry for this task"]
    best = entries[closest(components, [e.components for e in entries]) or 0]
    reasons = explain_difference(components, best.components, code, best.code_components)
    return [_name_source(r, bindings) for r in reasons] or ["the entry's key differs"]


def _name_source(reason: str, bindings: dict[str, Binding]) -> str:
    for name, binding in bindings.items():
        if reason.startswith(f"input {name!r} changed"):
            if isinstance(binding, NodeRef):
                return f"{reason}: the result of upstream {binding.node!r} differs"
            if isinstance(binding, InputRef):
                return f"{reason}: workflow input {binding.name!r} differs"
    return reason


def _digest(binding: Binding, stype: SType, graph: Graph, inputs: dict[str, Any],
            known: dict[tuple[str, str], str]) -> str:
    if isinstance(binding, NodeRef):
        return known[(binding.node, binding.output)]
    if isinstance(binding, InputRef):
        return digest_value(graph.interface.inputs[binding.name].stype, inputs[binding.name])
    if isinstance(binding, (ListOf, DictOf)):
        from sterna.core.cachedrun import collection_digest

        return collection_digest(binding, stype,
                                 lambda b, t: _digest(b, t, graph, inputs, known))
    from sterna.core.engine import resolve

    return digest_value(stype, resolve(binding, {}, inputs))


def explain_target(target: Any, given: dict[str, Any]) -> list[NodeExplanation]:
    """``explain`` for a workflow or task and its inputs, against the configured store."""
    from sterna.core import config
    from sterna.core.engine import prepare_inputs
    from sterna.core.task import Task

    graph = target.as_graph() if isinstance(target, Task) else target.graph
    return explain(Store.at(config.current().home), graph, prepare_inputs(graph, given))
