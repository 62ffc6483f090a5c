"""Profiles of recorded runs: where the time went, what the cache saved, what changed.

Works from the record alone (runs, node executions, the workflow's graph), so
a run can be profiled long after it finished, from another process.
"""

from __future__ import annotations

import graphlib
import json
from dataclasses import dataclass, field
from typing import Any

from .history import resolve_run
from .index import rows
from .store import Store


@dataclass
class Profile:
    """One run's nodes with their times, totals, critical path and costly loads."""

    run: dict[str, Any]
    nodes: list[dict[str, Any]]
    critical_path: list[str] = field(default_factory=list)
    costly_loads: list[str] = field(default_factory=list)

    def total(self, column: str) -> float:
        return float(sum(n[column] or 0 for n in self.nodes))


def load_profile(store: Store, run_id: str | None = None) -> Profile:
    """The profile of a run (the latest when ``run_id`` is None; a prefix is enough)."""
    with store.session() as con:
        full = resolve_run(con, run_id)
        run = rows(con, "SELECT * FROM runs WHERE run_id = ?", [full])[0]
        nodes = rows(con, "SELECT * FROM node_executions WHERE run_id = ? "
                          "ORDER BY started_at, node_id", [full])
        graph = con.execute("SELECT graph FROM workflow_versions WHERE name = ? AND version = ?",
                            [run["workflow"], run["workflow_version"]]).fetchone()
    edges = _edges(json.loads(graph[0])) if graph else {}
    profile = Profile(run, nodes)
    profile.critical_path = critical_path(nodes, edges)
    profile.costly_loads = costly_loads(nodes, edges)
    return profile


def _edges(graph: dict[str, Any]) -> dict[str, set[str]]:
    """node id -> the nodes it depends on, from a registered graph's JSON."""
    def refs(binding: Any) -> set[str]:
        if "node" in binding:
            return {binding["node"]}
        items = binding.get("list") or list((binding.get("dict") or {}).values())
        return set().union(*(refs(b) for b in items)) if items else set()

    return {node_id: set(node["after"]).union(*(refs(b) for b in node["bindings"].values()))
            for node_id, node in graph["nodes"].items()}


def critical_path(nodes: list[dict[str, Any]], edges: dict[str, set[str]]) -> list[str]:
    """The chain of dependent nodes whose durations add up to the most time."""
    duration = {n["node_id"]: n["duration_s"] or 0.0 for n in nodes}
    if not duration:
        return []
    deps = {n: {d for d in edges.get(n, ()) if d in duration} for n in duration}
    finish: dict[str, float] = {}
    previous: dict[str, str | None] = {}
    for node_id in graphlib.TopologicalSorter(deps).static_order():
        best = max(deps[node_id], key=finish.__getitem__, default=None)
        previous[node_id] = best
        finish[node_id] = duration[node_id] + (finish[best] if best else 0.0)
    end: str | None = max(finish, key=finish.__getitem__)
    path = []
    while end is not None:
        path.append(end)
        end = previous.get(end)
    return list(reversed(path))


def costly_loads(nodes: list[dict[str, Any]], edges: dict[str, set[str]]) -> list[str]:
    """Nodes that spent longer loading cached inputs than recomputing them would take."""
    by_id = {n["node_id"]: n for n in nodes}
    found = []
    for node in nodes:
        upstream_hits = [by_id[d] for d in edges.get(node["node_id"], ())
                         if d in by_id and by_id[d]["cache_status"] == "hit"]
        recompute = sum(u["saved_s"] or 0.0 for u in upstream_hits)
        if upstream_hits and (node["load_s"] or 0.0) > recompute:
            names = ", ".join(u["node_id"] for u in upstream_hits)
            found.append(f"{node['node_id']}: loading its cached inputs ({names}) took "
                         f"{node['load_s'] * 1e3:.1f} ms; recomputing them took "
                         f"{recompute * 1e3:.1f} ms")
    return found


def chrome_trace(profile: Profile) -> dict[str, Any]:
    """The run as Chrome trace events (open in Perfetto or chrome://tracing)."""
    events = []
    origin = profile.run["started_at"].timestamp()
    for lane, node in enumerate(profile.nodes):
        start = (node["started_at"].timestamp() - origin) * 1e6
        events.append({"name": node["node_id"], "cat": node["cache_status"], "ph": "X",
                       "ts": start, "dur": max((node["duration_s"] or 0.0) * 1e6, 1.0),
                       "pid": 1, "tid": lane,
                       "args": {k: node[k] for k in ("task", "status", "cache_status",
                                                     "hash_s", "load_s", "compute_s",
                                                     "store_s", "saved_s", "bytes_in",
                                                     "bytes_out", "attempts")}})
        events.append({"name": "thread_name", "ph": "M", "pid": 1, "tid": lane,
                       "args": {"name": node["node_id"]}})
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"run_id": profile.run["run_id"], "workflow": profile.run["workflow"]}}


@dataclass
class NodeChange:
    """One node across two runs."""

    node_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reasons: list[str]


def compare(store: Store, run_a: str, run_b: str) -> tuple[Profile, Profile, list[NodeChange]]:
    """Node by node: cache status and time in each run and, for a recompute, why."""
    a, b = load_profile(store, run_a), load_profile(store, run_b)
    before = {n["node_id"]: n for n in a.nodes}
    after = {n["node_id"]: n for n in b.nodes}
    changes = []
    for node_id in list(dict.fromkeys([*before, *after])):
        old, new = before.get(node_id), after.get(node_id)
        changes.append(NodeChange(node_id, old, new, _why(old, new)))
    return a, b, changes


def _why(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[str]:
    if old is None or new is None:
        return ["only in one run"]
    if new["cache_status"] == "hit" or new["cache_status"] == "disabled":
        return []
    if new["cache_status"] == "overwritten":
        return ["the cache was overwritten on purpose"]
    reasons = []
    inputs_old, inputs_new = json.loads(old["inputs"]), json.loads(new["inputs"])
    for name in sorted(set(inputs_old) | set(inputs_new)):
        if inputs_old.get(name) != inputs_new.get(name):
            reasons.append(f"input {name!r} changed")
    if old["task_version"] != new["task_version"]:
        reasons.append(f"task version changed ({old['task_version']} -> "
                       f"{new['task_version']})")
    if not reasons and old["cache_key"] != new["cache_key"]:
        reasons.append("cache key changed")
    if not reasons:
        reasons.append("no entry was found (new, cleared or collected)")
    return reasons
