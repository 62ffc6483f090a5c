"""The metadata index: one DuckDB file, opened in short, locked sessions.

Only the driver process opens the database. DuckDB holds a process-wide lock
from connect to close and fails at once when another process holds it, so a
connection kept for a whole run would make a second run fail. Each session
instead takes an OS file lock (flock, via filelock: closing an unrelated
handle does not drop it), connects, runs one transaction and closes, retrying
DuckDB's lock error with backoff until a deadline. Any exception, Ctrl-C
included, rolls the transaction back before the connection closes.

The schema is plain tables, documented in ``SCHEMA`` and queryable with
``sterna sql``.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb
from filelock import FileLock, Timeout

from sterna.core.errors import SternaError

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key VARCHAR PRIMARY KEY,              -- 'schema_version'
    value VARCHAR
);
CREATE TABLE IF NOT EXISTS task_versions (
    project VARCHAR, domain VARCHAR, name VARCHAR, version VARCHAR,
    interface VARCHAR,                    -- JSON: {"inputs": {name: type}, "outputs": {name: type}}
    config VARCHAR,                       -- JSON: retries, timeout, resources, cache settings, ...
    code_fingerprint VARCHAR,             -- digest of the task's code (own source + helpers)
    code_components VARCHAR,              -- JSON: {"function m.f": digest, "constant m.X": digest}
    source VARCHAR,                       -- the task function's source text
    registered_at TIMESTAMP,
    PRIMARY KEY (project, domain, name, version)
);
CREATE TABLE IF NOT EXISTS workflow_versions (
    project VARCHAR, domain VARCHAR, name VARCHAR, version VARCHAR,
    graph VARCHAR,                        -- JSON: nodes, bindings, edges, outputs
    tasks VARCHAR,                        -- JSON: {task name: task version}
    registered_at TIMESTAMP,
    PRIMARY KEY (project, domain, name, version)
);
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY,
    project VARCHAR, domain VARCHAR,
    workflow VARCHAR, workflow_version VARCHAR, kind VARCHAR,   -- kind: 'workflow' or 'task'
    inputs VARCHAR,                       -- JSON: {input name: value digest}
    executor VARCHAR,
    status VARCHAR,                       -- running, succeeded, failed, interrupted
    started_at TIMESTAMP, ended_at TIMESTAMP,
    host VARCHAR, pid INTEGER,
    error VARCHAR
);
CREATE TABLE IF NOT EXISTS node_executions (
    run_id VARCHAR, node_id VARCHAR,
    task VARCHAR, task_version VARCHAR,
    status VARCHAR,                       -- succeeded, failed, skipped, interrupted
    cache_status VARCHAR,                 -- hit, miss, disabled, overwritten
    cache_key VARCHAR,
    attempts INTEGER,
    started_at TIMESTAMP, ended_at TIMESTAMP, duration_s DOUBLE,
    hash_s DOUBLE, load_s DOUBLE, compute_s DOUBLE, store_s DOUBLE,
    saved_s DOUBLE,                       -- for a hit: the compute time its entry recorded
    bytes_in BIGINT, bytes_out BIGINT,
    inputs VARCHAR,                       -- JSON: {input name: value digest}
    outputs VARCHAR,                      -- JSON: {output name: value digest}
    error VARCHAR,
    PRIMARY KEY (run_id, node_id)
);
CREATE TABLE IF NOT EXISTS cache_entries (
    cache_key VARCHAR PRIMARY KEY,
    project VARCHAR, domain VARCHAR, task VARCHAR, task_version VARCHAR,
    cache_version VARCHAR,
    components VARCHAR,                   -- JSON: every part of the key, to explain misses
    outputs VARCHAR,                      -- JSON: {name: {"digest", "blob", "codec", "size"}}
    size BIGINT,                          -- bytes of all output blobs
    compute_s DOUBLE,                     -- what computing it cost (the time a hit saves)
    run_id VARCHAR,                       -- the run that made it
    created_at TIMESTAMP, last_used TIMESTAMP,
    hits BIGINT
);
CREATE TABLE IF NOT EXISTS blobs (
    blob VARCHAR PRIMARY KEY,             -- xxh3_128 of the stored bytes; objects/ab/<blob>
    size BIGINT, codec VARCHAR, created_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS lineage (
    digest VARCHAR,                       -- an output value's digest
    run_id VARCHAR, node_id VARCHAR, task VARCHAR, output VARCHAR,
    inputs VARCHAR,                       -- JSON: {input name: value digest}
    PRIMARY KEY (digest, run_id, node_id, output)
);
"""

_PID = re.compile(r"PID (\d+)")
DB_FILE = "sterna.duckdb"
LOCK_FILE = "db.lock"


class StoreBusyError(SternaError):
    """The store's database stayed locked by another process past the deadline."""


class StoreError(SternaError):
    """The store's database cannot be opened or written."""


class Index:
    """Short, locked DuckDB sessions over ``<home>/sterna.duckdb``."""

    def __init__(self, home: str | os.PathLike[str], *, deadline_s: float = 30.0) -> None:
        self.home = Path(home)
        self.path = self.home / DB_FILE
        self.deadline_s = deadline_s
        self._schema_ready = False

    @contextmanager
    def session(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction under the store lock; rolled back on any exception.

        ``read_only`` opens DuckDB read-only (for user queries): nothing the
        session runs can change the store.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.deadline_s
        lock = FileLock(self.home / LOCK_FILE)
        try:
            lock.acquire(timeout=self.deadline_s)
        except Timeout:
            raise StoreBusyError(
                f"the store {self.home} stayed locked by another sterna process "
                f"({_lock_owner(self.home)}) for {self.deadline_s:g} s") from None
        try:
            _write_owner(self.home)
            con = self._connect(deadline, read_only)
            try:
                if not self._schema_ready and not read_only:
                    _ensure_schema(con)
                    self._schema_ready = True
                con.execute("BEGIN TRANSACTION")
                try:
                    yield con
                    # A COMMIT after a caught failure silently rolls back; this raises.
                    con.execute("SELECT 1")
                    con.execute("COMMIT")
                except BaseException:
                    _rollback(con)
                    raise
            finally:
                con.close()
        except duckdb.Error as exc:  # disk full, corrupt file, constraint, ...
            raise StoreError(f"{self.path}: {exc}") from exc
        except RuntimeError as exc:  # Ctrl-C inside a DuckDB call surfaces like this
            if str(exc) == "Query interrupted":
                raise KeyboardInterrupt from exc
            raise
        finally:
            lock.release()

    def _connect(self, deadline: float, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        delay = 0.005
        while True:
            try:
                # Read-only sessions also get no file access, so `sterna sql` cannot
                # write files (COPY ... TO) or read outside the store.
                config = {"enable_external_access": False} if read_only else {}
                return duckdb.connect(str(self.path), read_only=read_only, config=config)
            except duckdb.IOException as exc:
                message = str(exc)
                if "lock" not in message.lower():
                    raise StoreError(f"cannot open {self.path}: {message}") from None
                if time.monotonic() >= deadline:
                    pid = _PID.search(message)
                    holder = f"process {pid.group(1)}" if pid else "another process"
                    raise StoreBusyError(
                        f"{self.path} is held by {holder} (not through sterna's lock) for more "
                        f"than {self.deadline_s:g} s; stop it or wait") from None
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.25)


def _ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(SCHEMA)
    row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
    elif int(row[0]) > SCHEMA_VERSION:
        raise StoreError(f"the store was written by a newer sterna (schema {row[0]}); upgrade")


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    # Nothing open (it failed before or during BEGIN), or a second Ctrl-C: either way
    # the connection is closed next, which discards any open transaction.
    with suppress(duckdb.Error, RuntimeError):
        con.execute("ROLLBACK")


def _write_owner(home: Path) -> None:
    with suppress(OSError):
        (home / "db.lock.owner").write_text(f"{os.getpid()} {os.uname().nodename}\n")


def _lock_owner(home: Path) -> str:
    try:
        pid, host = (home / "db.lock.owner").read_text().split()[:2]
        return f"pid {pid} on {host}"
    except (OSError, ValueError):
        return "unknown pid"


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None,
         ) -> list[dict[str, Any]]:
    """Run a query and return rows as dicts (column name -> value)."""
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]
