"""The record of runs (cache/history.py): runs, node executions, task versions, lineage, and
read-only SQL over the metadata."""

import datetime
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

import sterna
from sterna import task, workflow
from sterna.cache import history
from sterna.cache.history import NotFoundError
from sterna.cache.index import rows
from sterna.cache.registry import TaskVersion, register_task, task_version, workflow_version
from sterna.cache.store import Store
from sterna.core import config
from sterna.core.errors import SternaError, TaskFailedError

ATTEMPTS: list[str] = []


@task(cache=True)
def plus_one(x: int) -> int:
    return x + 1


@task(cache=True)
def times_two(y: int) -> int:
    return y * 2


@task(cache=True)
def minus_three(z: int) -> int:
    return z - 3


@workflow
def chain(x: int) -> int:
    return minus_three(z=times_two(y=plus_one(x=x)))


@task(cache=True)
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@workflow
def napping(seconds: float) -> float:
    return nap(seconds=seconds)


@task(cache=True, retries=1)
def flaky(key: str) -> str:
    ATTEMPTS.append(key)
    if ATTEMPTS.count(key) == 1:
        raise RuntimeError("first try fails")
    return key.upper()


@task
def shout(text: str) -> str:
    return text + "!"


@workflow
def flaky_flow(key: str) -> str:
    return shout(text=flaky(key=key))


@task(cache=True)
def explode(x: int) -> int:
    raise ValueError(f"boom {x}")


@workflow
def exploding(x: int) -> int:
    return times_two(y=explode(x=plus_one(x=x)))


@task
def interrupt(x: int) -> int:
    raise KeyboardInterrupt


@workflow
def interrupted(x: int) -> int:
    return interrupt(x=plus_one(x=x))


@task(cache=True)
def many(x: int) -> tuple[int, int, int, int, int, int, int, int, int, int, int, int, int, int,
                          int, int, int]:
    return tuple(x * 100 + i for i in range(17))  # type: ignore[return-value]


@pytest.fixture
def store() -> Store:
    return Store.at(config.current().home)


def ingest(store: Store) -> None:
    with store.session():
        pass


def by_node(nodes: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(n["node_id"]): n for n in nodes}


def entries(store: Store) -> dict[str, dict[str, object]]:
    with store.session() as con:
        return {str(r["task"]): r for r in rows(con, "SELECT * FROM cache_entries")}


# -- runs -----------------------------------------------------------------------------------------
def test_a_run_records_id_version_inputs_executor_status_times_host_pid(store: Store) -> None:
    before = time.time()
    result = sterna.run(chain, x=5)
    assert result.outputs == 9
    run, nodes = history.run_show(store, result.run_id)
    assert run["run_id"] == result.run_id
    assert run["workflow"] == chain.name
    assert run["workflow_version"] == workflow_version(chain.graph)[0]
    assert run["kind"] == "workflow"
    assert run["executor"] == "serial"
    assert run["status"] == "succeeded"
    assert run["error"] is None
    assert run["host"] == socket.gethostname()
    assert run["pid"] == os.getpid()
    assert before - 1 <= run["started_at"].timestamp() <= run["ended_at"].timestamp()
    assert run["ended_at"].timestamp() <= time.time() + 1
    inputs = json.loads(run["inputs"])
    assert list(inputs) == ["x"]
    assert inputs["x"] == json.loads(by_node(nodes)["plus_one"]["inputs"])["x"]
    assert (run["project"], run["domain"]) == ("default", "development")


def test_runs_list_is_newest_first_with_limit_and_workflow_filter(store: Store) -> None:
    first = sterna.run(chain, x=1)
    second = sterna.run(napping, seconds=0.0)
    third = sterna.run(chain, x=2)
    listed = history.runs_list(store)
    assert [r["run_id"] for r in listed] == [third.run_id, second.run_id, first.run_id]
    assert all(r["status"] == "succeeded" and r["executor"] == "serial" for r in listed)
    assert all(r["duration_s"] is not None and r["duration_s"] >= 0 for r in listed)
    assert [r["run_id"] for r in history.runs_list(store, limit=1)] == [third.run_id]
    only = history.runs_list(store, workflow=chain.name)
    assert [r["run_id"] for r in only] == [third.run_id, first.run_id]
    assert history.runs_list(store, workflow="no.such.workflow") == []


def test_run_show_accepts_a_unique_prefix(store: Store) -> None:
    result = sterna.run(chain, x=3)
    run, _ = history.run_show(store, result.run_id[:-2])
    assert run["run_id"] == result.run_id
    latest, _ = history.run_show(store)
    assert latest["run_id"] == result.run_id


def test_unknown_and_ambiguous_run_ids_are_not_found_errors(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no runs recorded yet"):
        history.run_show(store)
    first = sterna.run(chain, x=1).run_id
    second = sterna.run(chain, x=2).run_id
    with pytest.raises(NotFoundError, match="no run matches 'nope'"):
        history.run_show(store, "nope")
    shared = first[:next(i for i, (a, b) in enumerate(zip(first, second)) if a != b)]
    assert shared  # both ids start with the date
    with pytest.raises(NotFoundError, match="ambiguous") as info:
        history.run_show(store, shared)
    assert repr(shared) in str(info.value)
    assert isinstance(info.value, SternaError)


# -- node executions --------------------------------------------------------------------------
def test_node_executions_of_a_miss_then_a_hit(store: Store) -> None:
    cold = sterna.run(chain, x=5)
    warm = sterna.run(chain, x=5)
    _, cold_nodes = history.run_show(store, cold.run_id)
    _, warm_nodes = history.run_show(store, warm.run_id)
    cold_by, warm_by = by_node(cold_nodes), by_node(warm_nodes)
    assert list(cold_by) == ["plus_one", "times_two", "minus_three"]
    stored = entries(store)
    for node_id, fn in (("plus_one", plus_one), ("times_two", times_two),
                        ("minus_three", minus_three)):
        miss, hit = cold_by[node_id], warm_by[node_id]
        assert miss["task"] == fn.name
        assert miss["task_version"] == task_version(fn).version
        assert (miss["status"], miss["cache_status"], miss["attempts"]) == (
            "succeeded", "miss", 1)
        assert (hit["status"], hit["cache_status"], hit["attempts"]) == ("succeeded", "hit", 0)
        assert miss["cache_key"] == hit["cache_key"] == stored[fn.name]["cache_key"]
        assert miss["started_at"] <= miss["ended_at"]
        assert miss["duration_s"] >= 0
        assert miss["hash_s"] > 0 and miss["compute_s"] > 0 and miss["store_s"] > 0
        assert hit["store_s"] == 0 and hit["compute_s"] == 0
        assert miss["error"] is None
        outputs = json.loads(miss["outputs"])
        entry_outputs = json.loads(stored[fn.name]["outputs"])
        assert outputs == {"o0": entry_outputs["o0"]["digest"]}
        assert miss["bytes_out"] == stored[fn.name]["size"] > 0
        assert json.loads(hit["outputs"]) == outputs
        assert hit["saved_s"] == pytest.approx(stored[fn.name]["compute_s"])
    # digests chain from node to node
    assert json.loads(cold_by["times_two"]["inputs"])["y"] == json.loads(
        cold_by["plus_one"]["outputs"])["o0"]
    assert json.loads(cold_by["minus_three"]["inputs"])["z"] == json.loads(
        cold_by["times_two"]["outputs"])["o0"]


def test_compute_time_and_saved_time_follow_the_task(store: Store) -> None:
    cold = sterna.run(napping, seconds=0.05)
    warm = sterna.run(napping, seconds=0.05)
    (miss,) = history.run_show(store, cold.run_id)[1]
    (hit,) = history.run_show(store, warm.run_id)[1]
    assert miss["compute_s"] >= 0.05
    assert miss["duration_s"] >= 0.05
    assert hit["cache_status"] == "hit"
    assert hit["saved_s"] >= 0.05


def test_attempts_count_retries(store: Store) -> None:
    key = uuid.uuid4().hex
    result = sterna.run(flaky_flow, key=key)
    assert result.outputs == key.upper() + "!"
    nodes = by_node(history.run_show(store, result.run_id)[1])
    assert nodes["flaky"]["attempts"] == 2
    assert nodes["flaky"]["status"] == "succeeded"
    assert nodes["shout"]["attempts"] == 1


def test_uncached_tasks_are_disabled_and_overwrite_is_recorded(store: Store) -> None:
    key = uuid.uuid4().hex
    sterna.run(flaky_flow, key=key)
    again = sterna.run(flaky_flow, key=key, overwrite_cache=True)
    nodes = by_node(history.run_show(store, again.run_id)[1])
    assert nodes["shout"]["cache_status"] == "disabled"
    assert nodes["flaky"]["cache_status"] == "overwritten"
    off = sterna.run(flaky_flow, key=key, cache=False)
    nodes = by_node(history.run_show(store, off.run_id)[1])
    assert {n["cache_status"] for n in nodes.values()} == {"disabled"}


def test_a_failed_run_is_recorded_with_its_error(store: Store) -> None:
    with pytest.raises(TaskFailedError) as info:
        sterna.run(exploding, x=1)
    failed = info.value.run
    run, nodes = history.run_show(store, failed.run_id)
    assert run["status"] == "failed"
    assert explode.name in run["error"]
    assert "ValueError: boom 2" in run["error"]
    assert "\n" not in run["error"]
    by = by_node(nodes)
    assert by["plus_one"]["status"] == "succeeded"
    assert by["explode"]["status"] == "failed"
    assert by["explode"]["error"] == "ValueError: boom 2"
    assert by["explode"]["attempts"] == 1
    assert by["times_two"]["status"] == "skipped"
    assert history.runs_list(store)[0]["status"] == "failed"


def test_a_failed_cached_node_is_a_miss_not_disabled(store: Store) -> None:
    with pytest.raises(TaskFailedError) as info:
        sterna.run(exploding, x=1)
    nodes = by_node(history.run_show(store, info.value.run.run_id)[1])
    # explode has cache=True and found no entry: it missed, it was not uncached
    assert nodes["explode"]["cache_status"] == "miss"


def test_a_keyboard_interrupt_records_an_interrupted_run(store: Store) -> None:
    with pytest.raises(KeyboardInterrupt):
        sterna.run(interrupted, x=1)
    run = history.runs_list(store)[0]
    assert run["status"] == "interrupted"
    full, nodes = history.run_show(store, run["run_id"])
    assert "KeyboardInterrupt" in full["error"]
    assert by_node(nodes)["interrupt"]["status"] == "interrupted"


KILLED = '''
import os
import signal

import sterna
from sterna import task, workflow


@task(cache=True, cache_serialize=True)  # its entry is committed before second starts
def first(x: int) -> int:
    return x + 1


@task(cache=True)
def second(y: int) -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    return y


@workflow
def killed(x: int) -> int:
    return second(y=first(x=x))


if __name__ == "__main__":
    sterna.run(killed, x=1)
'''


def test_a_killed_run_is_marked_interrupted_and_keeps_finished_work(
        tmp_path: Path, store: Store) -> None:
    script = tmp_path / "histkill_pipe.py"
    script.write_text(textwrap.dedent(KILLED))
    env = {**os.environ, "STERNA_HOME": str(config.current().home)}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == -9, done.stderr
    runs = history.runs_list(store)
    assert len(runs) == 1
    assert runs[0]["status"] == "interrupted"
    assert runs[0]["workflow"] == "histkill_pipe.killed"
    run, _ = history.run_show(store, runs[0]["run_id"])
    assert "process ended" in run["error"]
    assert run["pid"] != os.getpid()
    assert set(entries(store)) == {"histkill_pipe.first"}


WAITING = '''
import os
import sys
import time

import sterna
from sterna import task, workflow


@task(cache=True)
def begin(x: int) -> int:
    return x + 1


@task(cache=True)
def hold(y: int) -> int:
    flag = sys.argv[1]
    deadline = time.time() + 30
    while not os.path.exists(flag) and time.time() < deadline:
        time.sleep(0.02)
    return y * 2


@workflow
def waiting(x: int) -> int:
    return hold(y=begin(x=x))


if __name__ == "__main__":
    print(sterna.run(waiting, x=1).outputs)
'''


def test_a_run_in_another_process_is_seen_running_then_succeeded(
        tmp_path: Path, store: Store) -> None:
    script = tmp_path / "histwait_pipe.py"
    script.write_text(textwrap.dedent(WAITING))
    flag = tmp_path / "go"
    env = {**os.environ, "STERNA_HOME": str(config.current().home)}
    child = subprocess.Popen([sys.executable, str(script), str(flag)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        seen: list[dict[str, object]] = []
        while time.monotonic() < deadline and not seen:
            seen = [r for r in history.runs_list(store) if r["status"] == "running"]
            time.sleep(0.05)
        assert len(seen) == 1, "the run never showed up as running"
        run, _ = history.run_show(store, str(seen[0]["run_id"]))
        assert run["pid"] == child.pid
        assert run["ended_at"] is None
        assert run["workflow"] == "histwait_pipe.waiting"
    finally:
        flag.write_text("go")
        out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert out.strip() == "4"
    (done,) = history.runs_list(store)
    assert done["run_id"] == seen[0]["run_id"]
    assert done["status"] == "succeeded"
    finished, nodes = history.run_show(store, str(done["run_id"]))
    assert finished["pid"] == child.pid
    assert finished["ended_at"] >= finished["started_at"]
    assert [n["node_id"] for n in nodes] == ["begin", "hold"]


# -- tasks ------------------------------------------------------------------------------------
def test_tasks_list_versions_and_show(store: Store) -> None:
    sterna.run(chain, x=1)
    listed = {r["name"]: r for r in history.tasks_list(store)}
    assert set(listed) == {plus_one.name, times_two.name, minus_three.name}
    assert listed[plus_one.name]["latest"] == task_version(plus_one).version
    assert listed[plus_one.name]["versions"] == 1
    (only,) = history.task_versions(store, plus_one.name)
    assert only["version"] == task_version(plus_one).version
    assert only["code_fingerprint"] == task_version(plus_one).code_fingerprint
    shown = history.task_show(store, plus_one.name)
    assert json.loads(shown["interface"]) == {"inputs": {"x": "int"}, "outputs": {"o0": "int"}}
    assert json.loads(shown["config"])["cache"] is True
    assert "return x + 1" in shown["source"]
    by_prefix = history.task_show(store, plus_one.name, task_version(plus_one).version[:6])
    assert by_prefix["version"] == task_version(plus_one).version


def test_unknown_tasks_are_not_found_errors(store: Store) -> None:
    sterna.run(chain, x=1)
    with pytest.raises(NotFoundError, match=r"no task named 'nope\.task'"):
        history.task_versions(store, "nope.task")
    with pytest.raises(NotFoundError, match=r"nope\.task"):
        history.task_show(store, "nope.task")
    with pytest.raises(NotFoundError) as info:
        history.task_show(store, plus_one.name, "zzzz")
    assert plus_one.name in str(info.value)
    assert "zzzz" in str(info.value)


def test_an_ambiguous_version_prefix_is_a_not_found_error(store: Store) -> None:
    now = datetime.datetime.now()
    with store.session() as con:
        for version in ("abc1", "abc2"):
            register_task(con, TaskVersion(
                name="hand.made", version=version, interface='{"inputs":{},"outputs":{}}',
                config="{}", code_fingerprint=version * 8, code_components={},
                source=f"# {version}", cache_version=version),
                project="p", domain="d", registered_at=now)
    assert history.task_show(store, "hand.made", "abc2")["source"] == "# abc2"
    with pytest.raises(NotFoundError, match="ambiguous"):
        history.task_show(store, "hand.made", "abc")


# -- lineage ----------------------------------------------------------------------------------
def test_lineage_walks_a_chain_back_to_the_workflow_input(store: Store) -> None:
    result = sterna.run(chain, x=5)
    _, nodes = history.run_show(store, result.run_id)
    final = json.loads(by_node(nodes)["minus_three"]["outputs"])["o0"]
    root = history.lineage(store, final[:12])
    assert root.digest == final
    assert (root.task, root.output, root.run_id, root.node_id) == (
        minus_three.name, "o0", result.run_id, "minus_three")
    middle = root.inputs["z"]
    assert (middle.task, middle.node_id) == (times_two.name, "times_two")
    first = middle.inputs["y"]
    assert (first.task, first.node_id) == (plus_one.name, "plus_one")
    source = first.inputs["x"]
    assert source.digest == result.input_digests["x"]
    assert source.task is None and source.inputs == {}


def test_lineage_names_the_run_that_made_a_value_not_a_later_hit(store: Store) -> None:
    made = sterna.run(chain, x=5)
    hit = sterna.run(chain, x=5)
    assert all(n.cache_status == "hit" for n in hit.nodes.values())
    _, nodes = history.run_show(store, hit.run_id)
    final = json.loads(by_node(nodes)["minus_three"]["outputs"])["o0"]
    assert history.lineage(store, final).run_id == made.run_id


def test_lineage_of_unknown_and_ambiguous_digests(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no recorded value has digest"):
        history.lineage(store, "0123abcd")
    sterna.run(many, x=1)  # 17 distinct output digests: two share a first hex digit
    with store.session() as con:
        digests = [r[0] for r in con.execute("SELECT DISTINCT digest FROM lineage").fetchall()]
    assert len(digests) == 17
    shared = next(c for c in "0123456789abcdef" if sum(d.startswith(c) for d in digests) > 1)
    with pytest.raises(NotFoundError, match="ambiguous"):
        history.lineage(store, shared)


# -- sql --------------------------------------------------------------------------------------
def test_sql_sees_runs_that_just_finished(store: Store) -> None:
    result = sterna.run(chain, x=5)
    columns, found = history.sql(store, "SELECT run_id, status FROM runs")
    assert columns == ["run_id", "status"]
    assert found == [(result.run_id, "succeeded")]
    columns, found = history.sql(
        store, "SELECT node_id, cache_status FROM node_executions ORDER BY node_id")
    assert found == [("minus_three", "miss"), ("plus_one", "miss"), ("times_two", "miss")]


@pytest.mark.parametrize("statement", [
    "DELETE FROM runs",
    "UPDATE runs SET status = 'failed'",
    "INSERT INTO runs (run_id) VALUES ('forged')",
    "DROP TABLE runs",
    "CREATE TABLE extra (a INTEGER)",
    "SELECT 1; DELETE FROM runs",
])
def test_sql_refuses_writes_and_changes_nothing(store: Store, statement: str) -> None:
    result = sterna.run(chain, x=5)
    with pytest.raises(SternaError, match="query failed") as info:
        history.sql(store, statement)
    assert "read-only" in str(info.value)
    _, found = history.sql(store, "SELECT run_id, status FROM runs")
    assert found == [(result.run_id, "succeeded")]
    _, tables = history.sql(store, "SELECT table_name FROM information_schema.tables "
                                   "WHERE table_name = 'extra'")
    assert tables == []


def test_sql_cannot_write_files_into_the_store(store: Store) -> None:
    sterna.run(chain, x=5)
    blob = next(iter(store.blobs.iter_digests()))
    path = store.blobs.path(blob)
    before = path.read_bytes()
    with pytest.raises(SternaError):
        history.sql(store, f"COPY (SELECT 42 AS a) TO '{path}' (FORMAT csv)")
    assert path.read_bytes() == before
    assert store.blobs.verify(blob)
