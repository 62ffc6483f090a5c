"""Run records on their way to the index, kept off the caller's path.

A workflow called a thousand times in a loop must not pay a DuckDB session
(~15 ms, and importing duckdb) per call. A finished run is queued in memory;
a background thread, and an ``atexit`` hook before the process ends, append
the queue to a JSON-lines file under ``<home>/journal/`` (written to a temp
file and renamed, so a file is whole or absent). The next session that opens
the index, in this process or any other, ingests the journal files and
deletes them; ingesting is idempotent, so a crash between commit and delete
only repeats work.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .graph import Graph
    from .records import NodeRecord, Run

_DELAY_S = 0.5
_BACKLOG = 200  # journal files after which even a duckdb-free process ingests them
_HOST = socket.gethostname()


class Journal:
    """Pending run records for one store home."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.folder = home / "journal"
        self._pending: list[dict[str, Any]] = []
        self._queued: list[tuple[Run, Graph, str, str, list[str]]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._journaled: set[tuple[str, str, str, str]] = set()
        self._sequence = 0

    def add(self, run: Run, graph: Graph, project: str, domain: str, hits: list[str]) -> None:
        """Queue a finished run: O(1) here, serialised later off the caller's path."""
        with self._lock:
            self._queued.append((run, graph, project, domain, hits))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                name="sterna-journal")
                self._thread.start()
        self._wake.set()

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(_DELAY_S)  # let a burst of runs collect into one file
            self._wake.clear()
            with contextlib.suppress(Exception):  # retried by the next wake or at exit
                self.write()
                self.ingest_if_cheap()
            with self._lock:
                if not self._queued:
                    self._thread = None
                    return

    def write(self) -> Path | None:
        """Append every queued run to a new journal file now; returns it (None if none)."""
        with self._lock:
            queued, self._queued = self._queued, []
        if not queued:
            return None
        tmp: Path | None = None
        try:
            lines = [json.dumps(self._payload(*item), default=str) for item in queued]
            self.folder.mkdir(parents=True, exist_ok=True)
            self._sequence += 1
            name = f"{time.time_ns()}-{os.getpid()}-{self._sequence}"
            tmp = self.folder / f".{name}.tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            final = self.folder / f"{name}.jsonl"
            os.replace(tmp, final)
            return final
        except BaseException:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    tmp.unlink()
            with self._lock:
                self._queued[:0] = queued
            raise

    def ingest_if_cheap(self) -> None:
        """Move journal files into the index, if this process already loaded duckdb.

        A process that never touched the store (only uncached runs) leaves its
        journal for the next one that does, rather than paying for duckdb, unless
        the journal has grown long (``_BACKLOG`` files).
        """
        if not self.folder.is_dir():
            return
        waiting = sum(1 for _ in self.folder.glob("*.jsonl"))
        if not waiting or ("duckdb" not in sys.modules and waiting < _BACKLOG):
            return
        from sterna.cache.store import Store

        with Store.at(self.home).session():
            pass

    def _payload(self, run: Run, graph: Graph, project: str, domain: str,
                 hits: list[str]) -> dict[str, Any]:
        from sterna.cache.registry import task_record, task_version, workflow_version

        version, graph_text, task_versions = workflow_version(graph)
        if not run.input_digests:  # an uncached run hashes nothing on its own path
            run.input_digests = _input_digests(run, graph)
        tasks = []
        for task in graph.tasks():
            record = task_version(task)
            key = (project, domain, record.name, record.version)
            if key not in self._journaled:
                self._journaled.add(key)
                tasks.append(task_record(task).__dict__)
        return {
            "project": project, "domain": domain, "hits": hits, "tasks": tasks,
            "workflow": {"name": graph.name, "kind": graph.kind, "version": version,
                         "graph": graph_text, "tasks": task_versions},
            "run": {"run_id": run.run_id, "status": run.status, "executor": run.executor,
                    "start": run.start, "end": run.end, "inputs": run.input_digests,
                    "error": run.error, "host": _HOST, "pid": os.getpid()},
            "nodes": [_node(record, task_versions) for record in run.nodes.values()],
        }


def _input_digests(run: Run, graph: Graph) -> dict[str, str]:
    """Digests of a run's inputs, computed here, off the caller's path (best effort)."""
    from sterna.cache.codecs import digest_value

    digests = {}
    for name, value in run.inputs.items():
        param = graph.interface.inputs.get(name)
        if param is not None:
            with contextlib.suppress(Exception):  # an unhashable input is left out
                digests[name] = digest_value(param.stype, value)
    return digests


def _node(record: NodeRecord, task_versions: dict[str, str]) -> dict[str, Any]:
    cache = record.cache
    compute = sum(a.end - a.start for a in record.attempts)
    node: dict[str, Any] = {
        "node_id": record.node_id, "task": record.task,
        "task_version": task_versions.get(record.task), "status": record.status,
        "attempts": len(record.attempts), "start": record.start, "end": record.end,
        "error": record.error, "cache_status": record.cache_status, "compute_s": compute,
    }
    if cache is not None:
        node.update(cache_key=cache.key, hash_s=cache.hash_s, load_s=cache.load_s,
                    compute_s=cache.compute_s or compute, store_s=cache.store_s,
                    saved_s=cache.saved_s, bytes_in=cache.bytes_in, bytes_out=cache.bytes_out,
                    inputs=cache.inputs, outputs=cache.outputs)
    return node


_journals: dict[Path, Journal] = {}


def journal_for(home: Path) -> Journal:
    """The process's journal for a store home."""
    home = home.resolve()
    journal = _journals.get(home)
    if journal is None:
        journal = _journals[home] = Journal(home)
    return journal


@atexit.register
def _write_all() -> None:
    for journal in list(_journals.values()):
        with contextlib.suppress(Exception):  # the process is ending; nothing more to do
            journal.write()
            journal.ingest_if_cheap()
