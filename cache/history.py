"""Read the record: runs, node executions, task versions, lineage, and plain SQL.

Every function opens one session of the store (taking in journaled runs
first, so what it reads includes runs that just finished).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import duckdb

from sterna.core.errors import SternaError

from .index import rows
from .store import Store


class NotFoundError(SternaError):
    """No run, task or digest matches what was asked for."""


def runs_list(store: Store, *, limit: int = 20, workflow: str | None = None,
              ) -> list[dict[str, Any]]:
    """The latest runs, newest first."""
    where, params = ("WHERE workflow = ?", [workflow]) if workflow else ("", [])
    with store.session() as con:
        return rows(con, f"SELECT run_id, workflow, status, executor, started_at, ended_at, "
                         f"date_diff('millisecond', started_at, ended_at) / 1000.0 AS "
                         f"duration_s FROM runs {where} ORDER BY started_at DESC LIMIT ?",
                    [*params, limit])


def resolve_run(con: Any, run_id: str | None) -> str:
    """A full run id from a prefix (or the latest run when None)."""
    if run_id is None:
        found = con.execute("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1").fetchall()
    else:
        found = con.execute("SELECT run_id FROM runs WHERE run_id LIKE ? || '%' LIMIT 2",
                            [run_id]).fetchall()
    if not found:
        raise NotFoundError(f"no run matches {run_id!r}" if run_id else "no runs recorded yet")
    if len(found) > 1:
        raise NotFoundError(f"run id prefix {run_id!r} is ambiguous; give more characters")
    return str(found[0][0])


def run_show(store: Store, run_id: str | None = None,
             ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A run and its node executions (in start order)."""
    with store.session() as con:
        full = resolve_run(con, run_id)
        run = rows(con, "SELECT * FROM runs WHERE run_id = ?", [full])[0]
        nodes = rows(con, "SELECT * FROM node_executions WHERE run_id = ? "
                          "ORDER BY started_at, node_id", [full])
    return run, nodes


def tasks_list(store: Store) -> list[dict[str, Any]]:
    """Every registered task: its latest version and how many versions it has."""
    with store.session() as con:
        return rows(con, "SELECT name, arg_max(version, registered_at) AS latest, "
                         "count(*) AS versions, max(registered_at) AS registered_at, "
                         "any_value(project) AS project, any_value(domain) AS domain "
                         "FROM task_versions GROUP BY name ORDER BY name")


def task_versions(store: Store, name: str) -> list[dict[str, Any]]:
    """Every version of a task, newest first."""
    with store.session() as con:
        found = rows(con, "SELECT project, domain, name, version, code_fingerprint, "
                          "registered_at FROM task_versions WHERE name = ? "
                          "ORDER BY registered_at DESC", [name])
    if not found:
        raise NotFoundError(f"no task named {name!r} is registered")
    return found


def task_show(store: Store, name: str, version: str | None = None) -> dict[str, Any]:
    """One version of a task (the latest when ``version`` is None), all fields."""
    with store.session() as con:
        if version is None:
            found = rows(con, "SELECT * FROM task_versions WHERE name = ? "
                              "ORDER BY registered_at DESC LIMIT 1", [name])
        else:
            found = rows(con, "SELECT * FROM task_versions WHERE name = ? AND version LIKE ? "
                              "|| '%' ORDER BY registered_at DESC", [name, version])
    if not found:
        shown = f"{name}@{version}" if version else name
        raise NotFoundError(f"no task {shown!r} is registered")
    if len({row["version"] for row in found}) > 1:
        raise NotFoundError(f"version prefix {version!r} of task {name!r} is ambiguous; "
                            "give more characters")
    return found[0]


@dataclass
class LineageNode:
    """How one value was made: by which node execution, from which input values."""

    digest: str
    task: str | None = None
    output: str | None = None
    run_id: str | None = None
    node_id: str | None = None
    inputs: dict[str, LineageNode] = field(default_factory=dict)


def lineage(store: Store, digest: str, *, depth: int = 50) -> LineageNode:
    """Walk upstream from a value digest (a prefix is enough) through its producers."""
    with store.session() as con:
        matches = con.execute("SELECT DISTINCT digest FROM lineage WHERE digest LIKE ? || '%' "
                              "LIMIT 2", [digest]).fetchall()
        if not matches:
            raise NotFoundError(f"no recorded value has digest {digest!r}")
        if len(matches) > 1:
            raise NotFoundError(f"digest prefix {digest!r} is ambiguous; give more characters")
        return _walk(con, str(matches[0][0]), depth, set())


def _walk(con: Any, digest: str, depth: int, seen: set[str]) -> LineageNode:
    node = LineageNode(digest)
    found = rows(con, "SELECT * FROM lineage WHERE digest = ? LIMIT 1", [digest])
    if not found or depth <= 0 or digest in seen:
        return node
    row = found[0]
    node.task, node.output, node.run_id, node.node_id = (
        row["task"], row["output"], row["run_id"], row["node_id"])
    for name, upstream in json.loads(row["inputs"]).items():
        node.inputs[name] = _walk(con, upstream, depth - 1, seen | {digest})
    return node


def sql(store: Store, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run a read-only query over the metadata; returns (column names, rows)."""
    with store.session():
        pass  # take in journaled runs first, so the query sees them
    with store.index.session(read_only=True) as con:
        try:
            cursor = con.execute(query)
        except duckdb.Error as exc:  # the parser's, the binder's and read-only errors
            raise SternaError(f"query failed: {exc}") from None
        if cursor.description is None:
            return [], []
        return [d[0] for d in cursor.description], cursor.fetchall()
