"""Reliability of the store with real processes, real signals and real full disks.

Each test drives sterna the way people do: pipelines written to ``.py`` files
and run by separate Python processes against one store home, killed with
SIGKILL or interrupted with SIGINT at random moments, or pointed at a tmpfs
that runs out of space. Afterwards the store must open, hold exactly one entry
per key, never point at a missing or torn blob, and reuse what was committed.
Processes are started with ``subprocess`` (a fresh interpreter, never fork).
"""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pytest
import xxhash

import sterna
from sterna import SternaWarning, TypeCheckError
from sterna.cache.blobs import BlobStore
from sterna.cache.index import Index, StoreBusyError, StoreError, rows
from sterna.cache.store import Store

CHILD_TIMEOUT = 60

# -- pipelines run by child processes ------------------------------------------------------

CONCURRENT_PIPELINE = '''
import json
import os
import sys
import time
from pathlib import Path

import sterna


def note(name: str) -> None:
    """One line per execution of a task body (O_APPEND: lines of two processes never mix)."""
    fd = os.open(os.environ["REL_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{name} {os.getpid()}\\n".encode())
    finally:
        os.close(fd)


@sterna.task(cache=True)
def shared(x: int) -> int:
    note("shared")
    time.sleep(0.3)
    return x * 10


@sterna.task(cache=True)
def left(y: int) -> int:
    note("left")
    time.sleep(0.1)
    return y + 1


@sterna.task(cache=True)
def right(y: int) -> int:
    note("right")
    time.sleep(0.1)
    return y + 2


@sterna.task(cache=True, cache_serialize=True)
def expensive(x: int) -> int:
    note("expensive")
    time.sleep(0.6)
    return x * 7


@sterna.workflow
def wf_left(x: int) -> int:
    return left(y=shared(x=x))


@sterna.workflow
def wf_right(x: int) -> int:
    return right(y=shared(x=x))


@sterna.workflow
def wf_serial(x: int) -> int:
    return expensive(x=x)


if __name__ == "__main__":
    target, x, go = globals()[sys.argv[1]], int(sys.argv[2]), Path(sys.argv[3])
    print("ready", flush=True)
    while not go.exists():  # the start barrier: both processes begin together
        time.sleep(0.002)
    run = sterna.run(target, x=x)
    print(json.dumps({"run_id": run.run_id, "outputs": run.outputs_by_name,
                      "cache": {n: r.cache_status for n, r in run.nodes.items()}}), flush=True)
'''

KILL_PIPELINE = '''
import json
import sys

import pyarrow as pa
import pyarrow.compute as pc

import sterna

ROWS = 400_000


@sterna.task(cache=True)
def make(seed: int) -> pa.Table:
    return pa.table({"v": pa.array(range(seed, seed + ROWS), pa.int64())})


@sterna.task(cache=True)
def scale(t: pa.Table) -> pa.Table:
    return pa.table({"v": pc.multiply(t["v"], 3)})


@sterna.task(cache=True)
def widen(t: pa.Table) -> pa.Table:
    return t.append_column("w", pc.add(t["v"], 1))


@sterna.task(cache=True)
def total(t: pa.Table) -> int:
    return pc.sum(t["w"]).as_py()


@sterna.task(cache=True)
def describe(n: int) -> str:
    return f"total={n}"


@sterna.workflow
def pipeline(seed: int) -> str:
    return describe(n=total(t=widen(t=scale(t=make(seed=seed)))))


if __name__ == "__main__":
    print("ready", flush=True)
    run = sterna.run(pipeline, seed=int(sys.argv[1]))
    print(json.dumps(run.outputs_by_name), flush=True)
'''

INTERRUPT_PIPELINE = '''
import json
import os
import sys
import time
from pathlib import Path

import sterna


@sterna.task(cache=True)
def first(x: int) -> int:
    return x + 1


@sterna.task(cache=True)
def slow(y: int) -> int:
    Path(os.environ["REL_MARK"]).touch()
    while Path(os.environ["REL_HOLD"]).exists():  # sleeps until the test lets it go
        time.sleep(0.02)
    return y * 2


@sterna.workflow
def wf_interrupt(x: int) -> int:
    return slow(y=first(x=x))


if __name__ == "__main__":
    run = sterna.run(wf_interrupt, x=int(sys.argv[1]))
    print(json.dumps({"outputs": run.outputs_by_name,
                      "cache": {n: r.cache_status for n, r in run.nodes.items()}}), flush=True)
'''

COMMITS_PIPELINE = '''
import sys

import sterna


@sterna.task(cache=True, cache_serialize=True)  # entries are committed on the main thread
def step(x: int) -> int:
    return x + 1


@sterna.workflow
def chain(x: int) -> int:
    for _ in range(40):
        x = step(x=x)
    return x


if __name__ == "__main__":
    print("ready", flush=True)
    print(sterna.run(chain, x=int(sys.argv[1])).outputs, flush=True)
'''

HOLD_DUCKDB = '''
import sys
import time

import duckdb

con = duckdb.connect(sys.argv[1])
con.execute("INSERT INTO meta VALUES ('foreign', 'was here')")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
print("released", flush=True)
time.sleep(60)
'''

HOLD_SESSION = '''
import sys
import time

from sterna.cache.index import Index

with Index(sys.argv[1]).session() as con:
    print("held", flush=True)
    time.sleep(60)
'''


# -- helpers --------------------------------------------------------------------------------


def _write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def _env(home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "STERNA_HOME": str(home), **extra}


def _spawn(args: list[str], home: Path, cwd: Path, **extra: str) -> "subprocess.Popen[str]":
    return subprocess.Popen([sys.executable, *args], cwd=cwd, env=_env(home, **extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _expect_line(proc: "subprocess.Popen[str]", expected: str) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != expected:
        proc.kill()
        _, err = proc.communicate(timeout=CHILD_TIMEOUT)
        pytest.fail(f"child printed {line!r} instead of {expected!r}; stderr:\n{err}")


def _finish(proc: "subprocess.Popen[str]") -> dict[str, Any]:
    """Wait for a child that prints a JSON line last; return that line, parsed."""
    out, err = proc.communicate(timeout=CHILD_TIMEOUT)
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{err}"
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _run_together(folder: Path, home: Path, first: list[str], second: list[str],
                  **extra: str) -> list[dict[str, Any]]:
    """Start two pipeline processes, let both finish importing, then release them at once."""
    go = folder / "go"
    procs = [_spawn([str(folder / "rel_concurrent.py"), *args, str(go)], home, folder, **extra)
             for args in (first, second)]
    try:
        for proc in procs:
            _expect_line(proc, "ready")
        go.touch()
        return [_finish(proc) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _duplicate_keys(con: Any) -> list[Any]:
    return con.execute("SELECT cache_key, count(*) FROM cache_entries GROUP BY cache_key "
                       "HAVING count(*) > 1").fetchall()


def _entry_blobs(entry: dict[str, Any]) -> list[str]:
    return [out["blob"] for out in json.loads(entry["outputs"]).values()]


def _assert_blobs_sound(home: Path, entries: list[dict[str, Any]]) -> None:
    """No entry points at a missing or corrupt blob; no partial blob is visible."""
    blobs = BlobStore(home)
    for entry in entries:
        for blob in _entry_blobs(entry):
            assert blobs.verify(blob), f"entry of {entry['task']} points at bad blob {blob}"
    objects = home / "objects"
    files = [p for p in objects.rglob("*") if p.is_file()] if objects.exists() else []
    for path in files:
        assert path.parent.name == path.name[:2], f"stray file under objects/: {path}"
        assert xxhash.xxh3_128_hexdigest(path.read_bytes()) == path.name, (
            f"partial or torn blob visible: {path}")


def _store_rows(home: Path, sql: str) -> list[dict[str, Any]]:
    with Store.at(home).session() as con:
        return rows(con, sql)


def _import_pipeline(folder: Path, name: str, source: str,
                     request: pytest.FixtureRequest) -> ModuleType:
    """Import a pipeline file as a module (same task names as when run as a script)."""
    import importlib

    _write(folder, f"{name}.py", source)
    sys.path.insert(0, str(folder))
    sys.modules.pop(name, None)
    try:
        module = importlib.import_module(name)
    finally:
        sys.path.remove(str(folder))
    request.addfinalizer(lambda: sys.modules.pop(name, None))
    return module


def _statuses(run: sterna.Run) -> dict[str, str]:
    return {node_id: record.cache_status for node_id, record in run.nodes.items()}


# -- 1. two runs at once on one store --------------------------------------------------------


@pytest.mark.parametrize(("workflows", "tasks", "outputs"), [
    (("wf_left", "wf_left"), {"rel_concurrent.shared", "rel_concurrent.left"}, [31, 31]),
    (("wf_left", "wf_right"), {"rel_concurrent.shared", "rel_concurrent.left",
                               "rel_concurrent.right"}, [31, 32]),
], ids=["same-workflow", "shared-task"])
def test_two_processes_share_one_store(tmp_path: Path, workflows: tuple[str, str],
                                       tasks: set[str], outputs: list[int]) -> None:
    home = tmp_path / "home"
    _write(tmp_path, "rel_concurrent.py", CONCURRENT_PIPELINE)
    results = _run_together(tmp_path, home, [workflows[0], "3"], [workflows[1], "3"],
                            REL_LOG=str(tmp_path / "calls.log"))

    assert [r["outputs"]["o0"] for r in results] == outputs
    with Store.at(home).session() as con:
        assert _duplicate_keys(con) == []
        entries = rows(con, "SELECT cache_key, task, outputs FROM cache_entries")
        runs = dict(con.execute("SELECT run_id, status FROM runs").fetchall())
        nodes = con.execute("SELECT run_id, count(*) FROM node_executions GROUP BY run_id"
                            ).fetchall()
    assert sorted(e["task"] for e in entries) == sorted(tasks)  # one entry per key
    assert runs == {r["run_id"]: "succeeded" for r in results}
    assert dict(nodes) == {r["run_id"]: 2 for r in results}
    _assert_blobs_sound(home, entries)


# -- 2. cache_serialize: one process computes, the other waits and reuses ---------------------


def test_cache_serialize_runs_the_body_once_across_processes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    log = tmp_path / "calls.log"
    _write(tmp_path, "rel_concurrent.py", CONCURRENT_PIPELINE)
    results = _run_together(tmp_path, home, ["wf_serial", "6"], ["wf_serial", "6"],
                            REL_LOG=str(log))

    assert [line.split()[0] for line in log.read_text().splitlines()] == ["expensive"]
    assert [r["outputs"]["o0"] for r in results] == [42, 42]
    assert sorted(r["cache"]["expensive"] for r in results) == ["hit", "miss"]
    with Store.at(home).session() as con:
        entries = rows(con, "SELECT cache_key, task, outputs FROM cache_entries")
        statuses = sorted(s for (s,) in con.execute(
            "SELECT cache_status FROM node_executions").fetchall())
    assert [e["task"] for e in entries] == ["rel_concurrent.expensive"]
    assert statuses == ["hit", "miss"]
    _assert_blobs_sound(home, entries)


def test_cache_serialize_waiter_takes_over_when_the_computing_process_is_killed(
        tmp_path: Path) -> None:
    """The per-key lock dies with its holder: the waiting process computes and caches."""
    home = tmp_path / "home"
    log = tmp_path / "calls.log"
    _write(tmp_path, "rel_concurrent.py", CONCURRENT_PIPELINE)
    go = tmp_path / "go"
    procs = [_spawn([str(tmp_path / "rel_concurrent.py"), "wf_serial", "6", str(go)], home,
                    tmp_path, REL_LOG=str(log)) for _ in range(2)]
    try:
        for proc in procs:
            _expect_line(proc, "ready")
        go.touch()
        deadline = time.monotonic() + CHILD_TIMEOUT
        while not log.exists() or not log.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.005)
        computing = int(log.read_text().split()[1])  # the pid inside the task body
        victim = next(p for p in procs if p.pid == computing)
        survivor = next(p for p in procs if p.pid != computing)
        victim.kill()
        victim.wait()
        result = _finish(survivor)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert result["outputs"] == {"o0": 42}
    assert result["cache"] == {"expensive": "miss"}
    assert [line.split() for line in log.read_text().splitlines()] == [
        ["expensive", str(computing)], ["expensive", str(survivor.pid)]]
    entries = _store_rows(home, "SELECT cache_key, task, outputs FROM cache_entries")
    assert [e["task"] for e in entries] == ["rel_concurrent.expensive"]
    _assert_blobs_sound(home, entries)


# -- 3. a database held by another process ----------------------------------------------------


def test_foreign_holder_past_the_deadline_is_named(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Index(home).session():
        pass  # the database and its schema exist
    script = _write(tmp_path, "hold_duckdb.py", HOLD_DUCKDB)
    holder = _spawn([str(script), str(home / "sterna.duckdb"), "60"], home, tmp_path)
    try:
        _expect_line(holder, "held")
        with pytest.raises(StoreBusyError) as info, Index(home, deadline_s=1).session():
            pass
        message = str(info.value)
        assert re.search(rf"\bprocess {holder.pid}\b", message), message
        assert "sterna.duckdb" in message
    finally:
        holder.kill()
        holder.wait()
    with Index(home, deadline_s=5).session() as con:  # the holder is gone: the store works
        assert con.execute("SELECT value FROM meta WHERE key = 'foreign'").fetchone() == (
            "was here",)


def test_foreign_holder_that_lets_go_within_the_deadline_is_waited_for(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Index(home).session():
        pass
    script = _write(tmp_path, "hold_duckdb.py", HOLD_DUCKDB)
    holder = _spawn([str(script), str(home / "sterna.duckdb"), "0.4"], home, tmp_path)
    try:
        _expect_line(holder, "held")
        with Index(home, deadline_s=10).session() as con:
            # Only reachable once the holder closed: its committed row is visible.
            assert con.execute("SELECT value FROM meta WHERE key = 'foreign'").fetchone() == (
                "was here",)
            con.execute("INSERT INTO meta VALUES ('after', 'ours')")
        assert holder.poll() is None  # it let go by closing, not by exiting
    finally:
        holder.kill()
        holder.wait()
    with Index(home).session() as con:
        assert con.execute("SELECT value FROM meta WHERE key = 'after'").fetchone() == ("ours",)


def test_sterna_session_held_past_the_deadline_names_its_pid(tmp_path: Path) -> None:
    home = tmp_path / "home"
    script = _write(tmp_path, "hold_session.py", HOLD_SESSION)
    holder = _spawn([str(script), str(home)], home, tmp_path)
    try:
        _expect_line(holder, "held")
        with pytest.raises(StoreBusyError) as info, Index(home, deadline_s=0.5).session():
            pass
        assert re.search(rf"\bpid {holder.pid}\b", str(info.value)), str(info.value)
    finally:
        holder.kill()
        holder.wait()
    with Index(home, deadline_s=5).session() as con:  # flock died with the process
        assert con.execute("SELECT count(*) FROM meta").fetchone() == (1,)


# -- 5. kill -9 at random moments -------------------------------------------------------------

KILL_TRIALS = 24
KILL_SEED = 11


def test_kill_9_at_random_points_never_breaks_the_store(
        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    pipe = _import_pipeline(tmp_path, "rel_kill_pipe", KILL_PIPELINE, request)
    script = tmp_path / "rel_kill_pipe.py"

    # A full run gives the expected output and the typical duration after start-up.
    reference = _spawn([str(script), str(KILL_SEED)], tmp_path / "reference", tmp_path)
    _expect_line(reference, "ready")
    began = time.monotonic()
    expected = _finish(reference)
    typical = time.monotonic() - began
    total = sum(3 * v + 1 for v in range(KILL_SEED, KILL_SEED + 400_000))
    assert expected == {"o0": f"total={total}"}
    node_count = len(pipe.pipeline.graph.nodes)

    rng = random.Random(20240601)
    partial = 0
    for trial in range(KILL_TRIALS):
        home = tmp_path / f"kill{trial}"
        delay = typical * (trial + rng.random()) / KILL_TRIALS  # spread over the whole run
        proc = _spawn([str(script), str(KILL_SEED)], home, tmp_path)
        _expect_line(proc, "ready")
        time.sleep(delay)
        proc.kill()
        proc.communicate(timeout=CHILD_TIMEOUT)

        # (i) the store opens; a run killed midway is no longer 'running'
        with Store.at(home).session() as con:
            entries = rows(con, "SELECT cache_key, task, outputs FROM cache_entries")
            assert _duplicate_keys(con) == []
            assert con.execute("SELECT count(*) FROM runs WHERE status = 'running'"
                               ).fetchone() == (0,)
        # (ii) no entry points at a missing blob, (iii) no partial blob is visible
        _assert_blobs_sound(home, entries)
        committed = {e["cache_key"] for e in entries}
        partial += 0 < len(committed) < node_count

        # A normal re-run is correct and hits exactly the entries committed before the kill.
        sterna.configure(home=home)
        run = sterna.run(pipe.pipeline, seed=KILL_SEED)
        assert run.outputs_by_name == expected
        hit_keys = {r.cache.key for r in run.nodes.values() if r.cache_status == "hit"}
        assert hit_keys == committed, f"trial {trial} (killed after {delay:.3f} s)"
        assert all(r.cache_status == "miss" for r in run.nodes.values()
                   if r.cache and r.cache.key not in committed)
        with Store.at(home).session() as con:
            after = rows(con, "SELECT cache_key, task, outputs FROM cache_entries")
        assert len(after) == node_count
        _assert_blobs_sound(home, after)
        shutil.rmtree(home, ignore_errors=True)  # keep the disk footprint small
    assert partial > 0, "no kill landed while the run was half done"


# -- 6. Ctrl-C during a run -------------------------------------------------------------------


def test_sigint_during_a_cached_task_records_an_interrupted_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    mark, hold = tmp_path / "sleeping", tmp_path / "hold"
    hold.touch()
    script = _write(tmp_path, "rel_interrupt.py", INTERRUPT_PIPELINE)
    extra = {"REL_MARK": str(mark), "REL_HOLD": str(hold)}
    proc = _spawn([str(script), "4"], home, tmp_path, **extra)
    try:
        deadline = time.monotonic() + CHILD_TIMEOUT
        while not mark.exists():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.01)
        # Mid-run, the driver holds no connection: another process gets a session at once,
        # and sees the run marked as running (committed at its first miss).
        with Index(home, deadline_s=0.5).session(read_only=True) as con:
            assert con.execute("SELECT status, pid FROM runs").fetchall() == [
                ("running", proc.pid)]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=CHILD_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert err.rstrip().splitlines()[-1] == "KeyboardInterrupt", err

    with Store.at(home).session() as con:
        run_rows = rows(con, "SELECT run_id, status, error FROM runs")
        nodes = dict(con.execute("SELECT node_id, status FROM node_executions").fetchall())
        entries = rows(con, "SELECT cache_key, task, outputs FROM cache_entries")
    assert [r["status"] for r in run_rows] == ["interrupted"]
    assert nodes == {"first": "succeeded", "slow": "interrupted"}
    assert [e["task"] for e in entries] == ["rel_interrupt.first"]  # committed before Ctrl-C
    _assert_blobs_sound(home, entries)

    hold.unlink()
    again = _finish(_spawn([str(script), "4"], home, tmp_path, **extra))
    assert again == {"outputs": {"o0": 10}, "cache": {"first": "hit", "slow": "miss"}}


SIGINT_TRIALS = 12


def test_sigint_while_a_run_commits_is_always_a_keyboard_interrupt(tmp_path: Path) -> None:
    """Ctrl-C at random moments of a run that commits an entry after every task.

    Wherever the signal lands (a task, a DuckDB query, a commit), the process
    ends with KeyboardInterrupt, the engine records the run as interrupted by
    it (with its node records), and the store holds only whole entries.
    """
    script = _write(tmp_path, "rel_commits.py", COMMITS_PIPELINE)
    rng = random.Random(7)
    outcomes = []
    for wave in range(0, SIGINT_TRIALS, 2):  # two at a time: one per core
        homes = [tmp_path / f"sigint{trial}" for trial in (wave, wave + 1)]
        procs = [_spawn([str(script), "0"], home, tmp_path) for home in homes]
        for proc in procs:
            _expect_line(proc, "ready")
        time.sleep(0.3 + 0.6 * rng.random())
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for home, proc in zip(homes, procs):
            _, err = proc.communicate(timeout=CHILD_TIMEOUT)
            outcomes.append((home, proc.returncode, err.rstrip().splitlines()[-1:]))
    for home, returncode, last_line in outcomes:
        assert last_line == ["KeyboardInterrupt"], (home.name, returncode, last_line)
        with Store.at(home).session() as con:
            run_rows = rows(con, "SELECT run_id, status, error FROM runs")
            entries = rows(con, "SELECT cache_key, task, outputs FROM cache_entries")
            assert _duplicate_keys(con) == []
            recorded = con.execute("SELECT count(*) FROM node_executions").fetchone()[0]
        assert [(r["status"], r["error"]) for r in run_rows] == [
            ("interrupted", "interrupted (KeyboardInterrupt)")], home.name
        assert recorded == 40
        _assert_blobs_sound(home, entries)


# -- 7. disk full -----------------------------------------------------------------------------


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[tuple[Path, Callable[[str], None]]]:
    """A real 12 MiB tmpfs and a function that resizes it; skipped where mount is denied."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12M", "tmpfs", str(mount_point)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")

    def resize(size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(mount_point)], check=True)

    try:
        yield mount_point, resize
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@sterna.task(cache=True)
def rel_seed(x: int) -> int:
    return x + 1


@sterna.task(cache=True)
def rel_big(x: int) -> pa.Table:
    return pa.table({"v": pa.array(range(x, x + 2_500_000), pa.int64())})  # 20 MB


@sterna.task(cache=True)
def rel_rows(t: pa.Table) -> int:
    return t.num_rows + t["v"][0].as_py()


@sterna.workflow
def rel_too_big(x: int) -> int:
    return rel_rows(t=rel_big(x=rel_seed(x=x)))


@sterna.task(cache=True)
def rel_inc(x: int) -> int:
    return x + 1


@sterna.task(cache=True)
def rel_plus_one(x: int) -> int:
    return 1 + x


@sterna.workflow
def rel_inc_wf(x: int) -> int:
    return rel_inc(x=x)


@sterna.workflow
def rel_plus_one_wf(x: int) -> int:
    return rel_plus_one(x=x)


def _fill(folder: Path) -> Path:
    """Fill a filesystem to the last page with one file."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as handle, pytest.raises(OSError) as info:
        while True:
            handle.write(b"\0" * 4096)
    assert "No space left" in str(info.value)
    return filler


def _run_warned(target: Any, **inputs: Any) -> tuple[sterna.Run, list[str]]:
    """Run in this process; return the run and the texts of the SternaWarnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = sterna.run(target, **inputs)
    return run, [str(w.message) for w in caught if issubclass(w.category, SternaWarning)]


def test_blob_that_does_not_fit_leaves_the_run_and_store_sound(
        small_fs: tuple[Path, Callable[[str], None]]) -> None:
    mount, resize = small_fs
    home = mount / "home"
    sterna.configure(home=home)
    run, warned = _run_warned(rel_too_big, x=5)
    assert run.status == "succeeded"
    assert run.outputs == 2_500_006
    assert any(re.search(r"rel_big.*not stored.*ENOSPC", text) for text in warned), warned
    assert list((home / "tmp").iterdir()) == []  # the failed write's temp file is gone
    with Store.at(home).session() as con:
        entries = rows(con, "SELECT cache_key, task, outputs FROM cache_entries")
        assert _duplicate_keys(con) == []
    assert sorted(e["task"] for e in entries) == sorted([rel_rows.name, rel_seed.name])
    _assert_blobs_sound(home, entries)

    resize("64M")  # space again: the store works and the next run caches
    second, warned_second = _run_warned(rel_too_big, x=5)
    third, warned_third = _run_warned(rel_too_big, x=5)
    assert warned_second == warned_third == []
    assert second.outputs == third.outputs == 2_500_006
    assert _statuses(second) == {"rel_seed": "hit", "rel_big": "miss", "rel_rows": "hit"}
    assert set(_statuses(third).values()) == {"hit"}
    entries = _store_rows(home, "SELECT cache_key, task, outputs FROM cache_entries")
    assert len(entries) == 3
    _assert_blobs_sound(home, entries)


def test_index_commit_without_space_leaves_the_run_and_database_sound(
        small_fs: tuple[Path, Callable[[str], None]]) -> None:
    mount, _ = small_fs
    home = mount / "home"
    sterna.configure(home=home)
    first = sterna.run(rel_inc_wf, x=1)  # stores the blob of the value 2
    with Store.at(home).session():
        pass  # its run is recorded; nothing is pending
    filler = _fill(mount)
    try:
        # rel_plus_one(1) == 2: its blob already exists, so only the index needs space.
        full, warned = _run_warned(rel_plus_one_wf, x=1)
        assert full.status == "succeeded"
        assert full.outputs == 2
        assert any(re.search(r"entry of .*rel_plus_one.* not recorded.*No space left", text)
                   for text in warned), warned
        _assert_blobs_sound(home, [])
    finally:
        filler.unlink()

    with Store.at(home).session() as con:
        entries = rows(con, "SELECT cache_key, task, outputs FROM cache_entries")
        assert _duplicate_keys(con) == []
        runs = dict(con.execute("SELECT run_id, status FROM runs").fetchall())
    assert [e["task"] for e in entries] == [rel_inc.name]
    assert runs == {first.run_id: "succeeded", full.run_id: "succeeded"}
    _assert_blobs_sound(home, entries)

    again, warned_again = _run_warned(rel_plus_one_wf, x=1)
    last, warned_last = _run_warned(rel_plus_one_wf, x=1)
    assert warned_again == warned_last == []
    assert _statuses(again) == {"rel_plus_one": "miss"}
    assert _statuses(last) == {"rel_plus_one": "hit"}
    assert last.outputs == 2


def test_store_session_on_a_full_disk_fails_cleanly_and_leaves_no_journal_debris(
        small_fs: tuple[Path, Callable[[str], None]]) -> None:
    """Opening the store for reading while the disk is full, with a finished run pending.

    The session either works or raises StoreError (a SternaError the CLI reports),
    never a bare OSError; failed journal writes leave no temp files behind, and
    once space is back the pending run is recorded.
    """
    mount, _ = small_fs
    home = mount / "home"
    sterna.configure(home=home)
    first = sterna.run(rel_inc_wf, x=1)
    with Store.at(home).session():
        pass
    filler = _fill(mount)
    try:
        pending, _ = _run_warned(rel_inc_wf, x=1)  # a hit: its record waits in the journal
        assert _statuses(pending) == {"rel_inc": "hit"}
        for _ in range(2):
            try:
                with Store.at(home).session() as con:
                    assert con.execute("SELECT count(*) FROM cache_entries").fetchone() == (1,)
            except StoreError:
                pass  # a clean, reported failure is fine
    finally:
        filler.unlink()
    with Store.at(home).session() as con:
        runs = dict(con.execute("SELECT run_id, status FROM runs").fetchall())
    assert runs == {first.run_id: "succeeded", pending.run_id: "succeeded"}
    assert sorted(p.name for p in (home / "journal").iterdir()) == []


# -- 8. wrong input types ---------------------------------------------------------------------


@sterna.task(cache=True)
def rel_typed(x: int, xs: list[int], t: pa.Table) -> int:
    return x + sum(xs) + t.num_rows


@sterna.workflow
def rel_typed_wf(x: int, xs: list[int], t: pa.Table) -> int:
    return rel_typed(x=rel_typed(x=x, xs=xs, t=t), xs=xs, t=t)


def _store_contents(home: Path) -> tuple[list[str], int]:
    blobs = sorted(BlobStore(home).iter_digests())
    if not (home / "sterna.duckdb").exists():
        return blobs, 0
    with Index(home).session(read_only=True) as con:
        return blobs, con.execute("SELECT count(*) FROM cache_entries").fetchone()[0]


@pytest.mark.parametrize(("inputs", "name", "expected", "got"), [
    ({"x": "3", "xs": [1], "t": pa.table({"a": [1]})}, "x", "int", "str"),
    ({"x": 3, "xs": [1, "a"], "t": pa.table({"a": [1]})}, "xs", r"list\[int\]", "'a'"),
    ({"x": 3, "xs": [1], "t": {"a": [1]}}, "t", "pa.Table", "dict"),
], ids=["int", "list-item", "table"])
def test_wrong_input_types_fail_before_anything_is_cached(
        tmp_path: Path, inputs: dict[str, Any], name: str, expected: str, got: str) -> None:
    home = tmp_path / ".sterna"
    targets = ((rel_typed_wf, "workflow"), (rel_typed, "task"))
    for target, owner in targets:  # an empty store stays empty
        with pytest.raises(TypeCheckError, match=rf"{owner} .*rel_typed.* input '{name}'"):
            sterna.run(target, **inputs)
        assert _store_contents(home) == ([], 0)

    sterna.run(rel_typed_wf, x=1, xs=[2], t=pa.table({"a": [1, 2]}))  # something stored before
    before = _store_contents(home)
    assert before[1] == 2
    for target, owner in targets:
        with pytest.raises(TypeCheckError,
                           match=rf"{owner} .*rel_typed.* input '{name}': expected {expected}, "
                                 rf"got .*{got}"):
            sterna.run(target, **inputs)
        assert _store_contents(home) == before  # zero new blobs, zero new entries


@sterna.task(cache=True)
def rel_lies(x: int) -> int:
    return str(x)  # type: ignore[return-value]


@sterna.workflow
def rel_lies_wf(x: int) -> int:
    return rel_lies(x=rel_inc(x=x))


def test_wrong_output_type_is_never_cached(tmp_path: Path) -> None:
    home = tmp_path / ".sterna"
    with pytest.raises(TypeCheckError, match=r"rel_lies.*expected int, got str"):
        sterna.run(rel_lies_wf, x=1)
    with Store.at(home).session() as con:
        entries = rows(con, "SELECT cache_key, task, outputs FROM cache_entries")
    assert [e["task"] for e in entries] == [rel_inc.name]  # only the task that returned an int
    assert sorted(BlobStore(home).iter_digests()) == _entry_blobs(entries[0])
    _assert_blobs_sound(home, entries)
