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
    cached = sorted({task.name for task in graph.cached_tasks()})
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
        if getattr(task, "is_map", False) and task.inner.config.cache:  # type: ignore[attr-defined]
            unknown[node_id] = "is a map (its lists are rebuilt from its items)"
            result.append(_explain_map(node_id, task, node.bindings, inputs, by_task))
            continue
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


def _explain_map(node_id: str, task: Any, bindings: dict[str, Binding], inputs: dict[str, Any],
                 by_task: dict[str, list[Entry]]) -> NodeExplanation:
    """A map node: how many of its items would hit, and why the first misses miss.

    Items are known only when the mapped lists come from workflow inputs or
    constants; an upstream result is known only once it has run.
    """
    from sterna.core.engine import resolve

    inner = task.inner
    upstream = sorted({b.node for b in bindings.values() if isinstance(b, NodeRef)})
    if upstream:
        return NodeExplanation(node_id, task.name, "depends", [
            f"its items come from the result of {upstream[0]!r}; each item hits if its "
            "inputs are unchanged"])
    values = {name: resolve(b, {}, inputs) for name, b in bindings.items()}
    entries = by_task.get(inner.name, [])
    found = {e.key for e in entries}
    misses = []
    items = task.items(values, label=task.label)
    for index, item in enumerate(items):
        digests = {n: digest_value(inner.interface.inputs[n].stype, v) for n, v in item.items()}
        key = task_key(inner, digests)
        if key.key not in found:
            misses.append((index, key))
    if not misses:
        return NodeExplanation(node_id, task.name, "hit", [f"all {len(items)} items hit"])
    code = task_version(inner).code_components
    reasons = [f"{len(misses)} of {len(items)} items miss"]
    for index, key in misses[:3]:
        why = _reasons(key.components, code, entries, {})
        reasons.append(f"item {index}: {'; '.join(why)}")
    return NodeExplanation(node_id, task.name, "miss", reasons)


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
