"""Index sessions (cache/index.py): one transaction under the store lock, all or nothing.

Whatever ends a session early (an exception, Ctrl-C, a DuckDB error) must roll
back everything the session wrote and release the lock; a read-only session
must not be able to change the store.
"""

import contextlib
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import duckdb
import pytest

from sterna.cache.index import SCHEMA, Index, StoreError
from sterna.core.errors import SternaError

TABLES = ("blobs", "cache_entries", "lineage", "meta", "node_executions", "runs",
          "task_versions", "workflow_versions")


def _run_row(run_id: str) -> list[object]:
    return [run_id, "p", "d", "wf", "v1", "workflow", "{}", "serial", "running", None, None,
            "host", 1, None]


def _insert_run(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    con.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _run_row(run_id))


def _run_ids(index: Index) -> list[str]:
    with index.session(read_only=True) as con:
        return [r for (r,) in con.execute("SELECT run_id FROM runs ORDER BY run_id").fetchall()]


@pytest.fixture
def index(tmp_path: Path) -> Index:
    index = Index(tmp_path / "home", deadline_s=5)
    with index.session():
        pass  # database and schema exist
    return index


def _session_from_another_process(home: Path) -> subprocess.CompletedProcess[str]:
    """Take a session in a fresh process with a short deadline: proves the lock is free."""
    script = textwrap.dedent("""
        import sys
        from sterna.cache.index import Index
        with Index(sys.argv[1], deadline_s=2).session() as con:
            print(con.execute("SELECT count(*) FROM runs").fetchone()[0])
    """)
    return subprocess.run([sys.executable, "-c", script, str(home)], capture_output=True,
                          text=True, timeout=60, check=False)


def test_first_session_creates_every_documented_table(tmp_path: Path) -> None:
    index = Index(tmp_path / "new")
    with index.session() as con:
        tables = {t for (t,) in con.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()}
        version = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert tables == set(TABLES)
    assert all(f"CREATE TABLE IF NOT EXISTS {name} (" in SCHEMA for name in TABLES)
    assert version == ("1",)


def test_committed_session_is_visible_to_the_next(index: Index) -> None:
    with index.session() as con:
        _insert_run(con, "r1")
        _insert_run(con, "r2")
    assert _run_ids(index) == ["r1", "r2"]


def test_exception_rolls_back_every_statement(index: Index) -> None:
    with index.session() as con:
        _insert_run(con, "kept")
    with pytest.raises(ValueError, match="boom"), index.session() as con:
        _insert_run(con, "lost-1")
        con.execute("UPDATE runs SET status = 'failed' WHERE run_id = 'kept'")
        _insert_run(con, "lost-2")
        raise ValueError("boom")
    assert _run_ids(index) == ["kept"]
    with index.session(read_only=True) as con:
        assert con.execute("SELECT status FROM runs").fetchone() == ("running",)
    result = _session_from_another_process(index.home)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


def test_keyboard_interrupt_rolls_back_and_propagates(index: Index) -> None:
    with pytest.raises(KeyboardInterrupt), index.session() as con:
        _insert_run(con, "lost")
        raise KeyboardInterrupt
    assert _run_ids(index) == []
    with index.session() as con:  # the lock was released: the next session gets in
        _insert_run(con, "after")
    assert _run_ids(index) == ["after"]


def test_duckdb_error_becomes_store_error_and_rolls_back(index: Index) -> None:
    with pytest.raises(StoreError, match=r"sterna\.duckdb.*(?i:constraint|duplicate)") as info, \
            index.session() as con:
        _insert_run(con, "first")
        _insert_run(con, "first")  # primary key violation
    assert isinstance(info.value, SternaError)
    assert isinstance(info.value.__cause__, duckdb.Error)
    assert _run_ids(index) == []


def test_caught_duckdb_error_inside_a_session_is_not_a_silent_loss(index: Index) -> None:
    """DuckDB aborts the transaction on an error; a COMMIT after that rolls back silently.

    A session whose caller swallowed the error must not report success while
    its earlier writes vanish: it either keeps them or raises StoreError.
    """
    try:
        with index.session() as con:
            _insert_run(con, "written")
            with contextlib.suppress(duckdb.ConstraintException):
                _insert_run(con, "written")  # the caller decides the duplicate does not matter
    except StoreError:
        assert _run_ids(index) == []  # reported: acceptable
    else:
        assert _run_ids(index) == ["written"], "the session ended normally but lost its write"


def test_read_only_session_cannot_write(index: Index) -> None:
    with index.session() as con:
        _insert_run(con, "existing")
    statements = [
        lambda con: _insert_run(con, "new"),
        lambda con: con.execute("DELETE FROM runs"),
        lambda con: con.execute("UPDATE runs SET status = 'failed'"),
        lambda con: con.execute("CREATE TABLE extra (x INTEGER)"),
    ]
    for statement in statements:
        with pytest.raises(StoreError, match="read-only"), index.session(read_only=True) as con:
            assert con.execute("SELECT count(*) FROM runs").fetchone() == (1,)
            statement(con)
    with index.session(read_only=True) as con:
        assert con.execute("SELECT run_id, status FROM runs").fetchall() == [
            ("existing", "running")]
        tables = {t for (t,) in con.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()}
    assert tables == set(TABLES)


def test_read_only_session_of_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    home = tmp_path / "absent"
    with pytest.raises(StoreError, match=r"sterna\.duckdb"), Index(home).session(read_only=True):
        pass
    assert not (home / "sterna.duckdb").exists()


def test_ctrl_c_while_a_session_writes_rolls_back_as_keyboard_interrupt(tmp_path: Path) -> None:
    """A real SIGINT while a session is busy writing: nothing survives, and Ctrl-C stays Ctrl-C.

    The signal lands inside a DuckDB query almost every time (DuckDB then reports
    ``RuntimeError('Query interrupted')``); the session must still end with the
    KeyboardInterrupt the user pressed, so the engine records an interrupted run.
    """
    home = tmp_path / "home"
    script = textwrap.dedent("""
        import sys
        from sterna.cache.index import Index

        index = Index(sys.argv[1])
        try:
            with index.session() as con:
                for number in range(10_000_000):
                    con.execute("INSERT INTO meta VALUES (?, 'x')", [f"row{number}"])
                    if number == 0:
                        print("writing", flush=True)
            print("finished", flush=True)
        except BaseException as exc:
            print("raised", type(exc).__name__, exc, flush=True)
        with index.session() as con:
            print(con.execute("SELECT count(*) FROM meta").fetchone()[0], flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script, str(home)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "writing"
        threading.Event().wait(0.2)  # let it write a few hundred rows
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    raised, count = out.strip().splitlines()
    assert count == "1"  # only the schema version: every inserted row was rolled back
    assert raised.split()[:2] == ["raised", "KeyboardInterrupt"], raised


def test_sessions_from_two_threads_keep_every_row(index: Index) -> None:
    """The journal thread and the caller share one process: their sessions must serialise."""
    errors: list[BaseException] = []

    def writer(prefix: str) -> None:
        try:
            for number in range(15):
                with Index(index.home).session() as con:
                    _insert_run(con, f"{prefix}-{number:02d}")
        except BaseException as exc:  # handed to the test
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert _run_ids(index) == sorted(f"{p}-{n:02d}" for p in ("a", "b") for n in range(15))
