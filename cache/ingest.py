"""Ingest journal files (finished runs) into the index.

Idempotent: a run's rows are deleted and rewritten by run id, registrations
are inserted only when absent, so a journal file ingested twice (a crash
between the commit and the file's deletion) changes nothing.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
from pathlib import Path
from typing import Any

from .registry import RegistrationError, TaskVersion, register_task


def _ts(seconds: float | None) -> datetime.datetime | None:
    return None if seconds is None else datetime.datetime.fromtimestamp(seconds)


def journal_files(home: Path) -> list[Path]:
    """Whole journal files waiting to be ingested, oldest first."""
    folder = home / "journal"
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.jsonl"))


def ingest(con: Any, home: Path) -> list[Path]:
    """Write every journal file's runs into the open session; returns the files read."""
    files = journal_files(home)
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                write_payload(con, json.loads(line))
    return files


def write_payload(con: Any, payload: dict[str, Any]) -> None:
    """Registrations, the run row, node executions and lineage of one journaled run."""
    project, domain = payload["project"], payload["domain"]
    now = datetime.datetime.now()
    for task in payload["tasks"]:
        # A pinned-version clash is reported by `sterna register`, not by a run.
        with contextlib.suppress(RegistrationError):
            register_task(con, TaskVersion(**task), project=project, domain=domain,
                          registered_at=now)
    workflow = payload["workflow"]
    if workflow["kind"] == "workflow":
        con.execute("INSERT INTO workflow_versions VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    [project, domain, workflow["name"], workflow["version"], workflow["graph"],
                     json.dumps(workflow["tasks"], sort_keys=True), now])
    run = payload["run"]
    before = con.execute("SELECT status FROM runs WHERE run_id = ?", [run["run_id"]]).fetchone()
    ingested = before is not None and before[0] != "running"  # this file was read already
    con.execute("DELETE FROM runs WHERE run_id = ?", [run["run_id"]])
    con.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run["run_id"], project, domain, workflow["name"], workflow["version"],
                 workflow["kind"], json.dumps(run["inputs"], sort_keys=True), run["executor"],
                 run["status"], _ts(run["start"]), _ts(run["end"]), run["host"], run["pid"],
                 run["error"]])
    con.execute("DELETE FROM node_executions WHERE run_id = ?", [run["run_id"]])
    nodes = [_node_row(run["run_id"], node) for node in payload["nodes"]]
    if nodes:
        con.executemany("INSERT INTO node_executions VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", nodes)
    lineage = [[digest, run["run_id"], node["node_id"], node["task"], name,
                json.dumps(node.get("inputs", {}), sort_keys=True)]
               for node in payload["nodes"] if node["cache_status"] not in ("hit", "disabled")
               for name, digest in node.get("outputs", {}).items()]
    if lineage:
        con.executemany("INSERT INTO lineage VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        lineage)
    hits = payload["hits"]
    if hits and not ingested:
        marks = ", ".join("?" for _ in hits)
        con.execute(f"UPDATE cache_entries SET hits = hits + 1, last_used = ? "
                    f"WHERE cache_key IN ({marks})", [_ts(run["end"]), *hits])


def mark_running(con: Any, run: Any, graph: Any, project: str, domain: str) -> None:
    """Record a run as running, so a run killed midway is seen (and later marked)."""
    from .registry import workflow_version

    con.execute("DELETE FROM runs WHERE run_id = ?", [run.run_id])
    con.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run.run_id, project, domain, graph.name, workflow_version(graph)[0],
                 graph.kind, "{}", run.executor, "running", _ts(run.start), None,
                 socket.gethostname(), os.getpid(), None])


def mark_abandoned(con: Any) -> int:
    """Mark runs of this host still 'running' whose process is gone as interrupted."""
    host = socket.gethostname()
    stale = [run_id for run_id, pid in con.execute(
        "SELECT run_id, pid FROM runs WHERE status = 'running' AND host = ?", [host]).fetchall()
        if not _alive(pid)]
    for run_id in stale:
        con.execute("UPDATE runs SET status = 'interrupted', error = 'the process ended "
                    "before the run finished' WHERE run_id = ?", [run_id])
    return len(stale)


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _node_row(run_id: str, node: dict[str, Any]) -> list[Any]:
    return [run_id, node["node_id"], node["task"], node["task_version"], node["status"],
            node["cache_status"], node.get("cache_key"), node["attempts"], _ts(node["start"]),
            _ts(node["end"]), node["end"] - node["start"], node.get("hash_s", 0.0),
            node.get("load_s", 0.0), node.get("compute_s", 0.0), node.get("store_s", 0.0),
            node.get("saved_s", 0.0), node.get("bytes_in", 0), node.get("bytes_out", 0),
            json.dumps(node.get("inputs", {}), sort_keys=True),
            json.dumps(node.get("outputs", {}), sort_keys=True), node["error"]]
