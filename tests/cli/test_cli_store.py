"""The store commands: register, tasks, runs, lineage, sql, cache, profile, and ``run
--overwrite-cache`` / ``--no-cache``, through the real CLI on real pipeline files."""

import datetime
import itertools
import json
import os
import socket
import textwrap
from pathlib import Path

import pytest
from cli_support import assert_user_error, forgetting_loaded_pipelines, invoke

from sterna.cache.index import rows
from sterna.cache.registry import TaskVersion, register_task, task_version, workflow_version
from sterna.cache.store import Store
from sterna.cli.loader import load_module
from sterna.core import config

_seq = itertools.count()

PIPE = '''
import time

import pyarrow as pa

from sterna import Resources, task, workflow

CALLS = __file__ + ".calls"
ROWS = 2_000_000
BIG = pa.table({"v": pa.Array.from_buffers(pa.int64(), ROWS,
                                           [None, pa.py_buffer(bytes(8 * ROWS))])})


def _log(name: str) -> None:
    with open(CALLS, "a") as handle:
        handle.write(name + "\\n")


@task(cache=True, retries=2, requests=Resources(cpu="2", mem="1Gi"))
def plus_one(x: int) -> int:
    """Add one."""
    _log("plus_one")
    return x + 1


@task(cache=True)
def times_two(y: int) -> int:
    _log("times_two")
    return y * 2


@task(cache=True)
def minus_three(z: int) -> int:
    _log("minus_three")
    return z - 3


@workflow
def chain(x: int) -> int:
    return minus_three(z=times_two(y=plus_one(x=x)))


@task(cache=True)
def explode(x: int) -> int:
    raise ValueError(f"boom {x}")


@workflow
def exploding(x: int) -> int:
    return explode(x=plus_one(x=x))


@task
def top(x: int) -> int:
    return x + 1


@task
def slow(x: int) -> int:
    time.sleep(0.2)
    return x * 2


@task
def fast(x: int) -> int:
    return x * 3


@task
def join(a: int, b: int) -> int:
    return a + b


@workflow
def diamond(x: int) -> int:
    start = top(x=x)
    return join(a=slow(x=start), b=fast(x=start))


@task(cache=True)
def rest(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@workflow
def resting(seconds: float) -> float:
    return rest(seconds=seconds)


@task(cache=True)
def produce(n: int) -> pa.Table:
    return BIG


@task(cache=True)
def consume(table: pa.Table, tag: int) -> int:
    return table.num_rows + tag


@workflow
def loading(tag: int) -> int:
    return consume(table=produce(n=ROWS), tag=tag)


@task(cache=True)
def left(x: int) -> int:
    return x + 10


@task(cache=True)
def right(y: int) -> int:
    return y + 20


@task(cache=True)
def merge(a: int, b: int) -> int:
    return a * b


@workflow
def pair(x: int, y: int) -> int:
    return merge(a=left(x=x), b=right(y=y))
'''

TASKS = ("plus_one", "times_two", "minus_three", "explode", "top", "slow", "fast", "join",
         "rest", "produce", "consume", "left", "right", "merge")
WORKFLOWS = ("chain", "exploding", "diamond", "resting", "loading", "pair")


@pytest.fixture
def pipe(tmp_path: Path) -> Path:
    path = tmp_path / f"clistore_pipe_{next(_seq)}.py"
    path.write_text(textwrap.dedent(PIPE))
    return path


def store() -> Store:
    return Store.at(config.current().home)


def ok(*args: object) -> str:
    """Invoke a command that must succeed; its stdout."""
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def run(pipe: Path, name: str, *inputs: str) -> str:
    """``sterna run FILE NAME --input value ...``; returns the run id it prints on stderr."""
    result = invoke("run", pipe, name, *inputs)
    assert result.exit_code == 0, result.output
    return result.stderr.split()[1]


def calls(pipe: Path) -> list[str]:
    log = Path(f"{pipe}.calls")
    return log.read_text().split() if log.exists() else []


def name_of(pipe: Path, entity: str) -> str:
    return f"{pipe.stem}.{entity}"


def parse_table(text: str, headers: list[str]) -> list[dict[str, str]]:
    """Rows of a table printed by the CLI, cut at the header's column positions."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines)
              if line.startswith(headers[0]) and all(h in line for h in headers))
    head = lines[at]
    spans, position = [], 0
    for header in headers:
        start = head.index(header, position)
        position = start + len(header)
        while position < len(head) and head[position] == " ":
            position += 1  # the next column starts at the next header
        spans.append((start, position if position < len(head) else None))
    found = []
    for line in lines[at + 1:]:
        if not line.strip() or line.startswith(("totals:", "critical path:", "loading costs",
                                                 "trace written")):
            break
        found.append({h: line[s:e].strip() for h, (s, e) in zip(headers, spans)})
    return found


def query(sql: str, params: list[object] | None = None) -> list[dict[str, object]]:
    with store().session() as con:
        return rows(con, sql, params)


# -- register and tasks -------------------------------------------------------------------------
def test_register_registers_every_task_and_workflow_then_says_unchanged(pipe: Path) -> None:
    out = ok("register", pipe)
    module = load_module(str(pipe))
    lines = [line.split() for line in out.splitlines()]
    expected = {("task", name_of(pipe, t), task_version(getattr(module, t)).version,
                 "registered") for t in TASKS}
    expected |= {("workflow", name_of(pipe, w), workflow_version(getattr(module, w).graph)[0],
                  "registered") for w in WORKFLOWS}
    assert {tuple(line) for line in lines} == expected
    assert len(lines) == len(expected)
    again = ok("register", pipe)
    assert {tuple(line) for line in (x.split() for x in again.splitlines())} == {
        (kind, name, version, "unchanged") for kind, name, version, _ in expected}


def test_register_an_edited_file_adds_a_version_and_keeps_the_old(
        tmp_path: Path, pipe: Path) -> None:
    with forgetting_loaded_pipelines(tmp_path):  # each command is a new process in real use
        ok("register", pipe)
    old = {r["task"]: r["latest"] for r in parse_table(ok("tasks", "ls"), ["task", "latest"])}
    pipe.write_text(pipe.read_text().replace("return x + 1\n", "return x + 1000\n", 1))
    with forgetting_loaded_pipelines(tmp_path):
        out = ok("register", pipe)
    status = {line.split()[1]: line.split()[3] for line in out.splitlines()}
    assert status[name_of(pipe, "plus_one")] == "registered"
    assert status[name_of(pipe, "times_two")] == "unchanged"
    assert status[name_of(pipe, "chain")] == "registered"
    assert status[name_of(pipe, "exploding")] == "registered"
    assert status[name_of(pipe, "diamond")] == "unchanged"
    listed = parse_table(ok("tasks", "ls"), ["task", "latest", "versions", "registered"])
    by = {r["task"]: r for r in listed}
    assert by[name_of(pipe, "plus_one")]["versions"] == "2"
    assert by[name_of(pipe, "plus_one")]["latest"] != old[name_of(pipe, "plus_one")]
    assert by[name_of(pipe, "times_two")]["versions"] == "1"
    versions = parse_table(ok("tasks", "versions", name_of(pipe, "plus_one")),
                           ["version", "code", "registered", "project/domain"])
    assert len(versions) == 2
    assert versions[1]["version"] == old[name_of(pipe, "plus_one")]
    assert versions[0]["version"] == by[name_of(pipe, "plus_one")]["latest"]
    assert {v["project/domain"] for v in versions} == {"default/development"}
    old_source = ok("tasks", "show", f"{name_of(pipe, 'plus_one')}@{versions[1]['version']}")
    assert "return x + 1\n" in old_source
    assert "return x + 1000" in ok("tasks", "show", name_of(pipe, "plus_one"))


def test_tasks_ls_lists_registered_tasks(pipe: Path) -> None:
    ok("register", pipe)
    module = load_module(str(pipe))
    listed = parse_table(ok("tasks", "ls"), ["task", "latest", "versions", "registered"])
    assert [r["task"] for r in listed] == sorted(name_of(pipe, t) for t in TASKS)
    by = {r["task"]: r for r in listed}
    assert by[name_of(pipe, "left")]["latest"] == task_version(module.left).version
    assert all(r["versions"] == "1" for r in listed)
    assert all(r["registered"].startswith(str(datetime.date.today().year)) for r in listed)


def test_tasks_versions_and_show(pipe: Path) -> None:
    ok("register", pipe)
    module = load_module(str(pipe))
    record = task_version(module.plus_one)
    name = name_of(pipe, "plus_one")
    versions = parse_table(ok("tasks", "versions", name),
                           ["version", "code", "registered", "project/domain"])
    assert versions == [{"version": record.version, "code": record.code_fingerprint[:16],
                         "registered": versions[0]["registered"],
                         "project/domain": "default/development"}]
    shown = ok("tasks", "show", name)
    lines = shown.splitlines()
    assert lines[0].startswith(f"task {name} @ {record.version}  (default/development, "
                               "registered ")
    assert lines[1] == "inputs:  x: int"
    assert lines[2] == "outputs: o0: int"
    settings = json.loads(lines[3].removeprefix("config:  "))
    assert settings["retries"] == 2
    assert settings["cache"] is True
    assert settings["requests"]["cpu"] == "2"
    assert settings["requests"]["mem"] == "1Gi"
    assert lines[4] == f"code:    {record.code_fingerprint}"
    assert "def plus_one(x: int) -> int:" in shown
    assert '"""Add one."""' in shown
    by_version = ok("tasks", "show", f"{name}@{record.version[:8]}")
    assert by_version == shown
    plain = ok("tasks", "show", name_of(pipe, "top")).splitlines()
    assert plain[3] == "config:  defaults"


def test_register_of_a_missing_file_is_a_user_error(tmp_path: Path) -> None:
    assert_user_error(invoke("register", tmp_path / "nowhere.py"), "nowhere.py")


# -- runs -----------------------------------------------------------------------------------------
def test_runs_ls_and_show(pipe: Path) -> None:
    first = run(pipe, "chain", "--x", "5")
    second = run(pipe, "chain", "--x", "5")
    listed = parse_table(ok("runs", "ls"),
                         ["run", "workflow", "status", "executor", "started", "seconds"])
    assert [r["run"] for r in listed] == [second, first]
    assert all(r["workflow"] == name_of(pipe, "chain") and r["status"] == "succeeded"
               and r["executor"] == "serial" for r in listed)
    assert [r["run"] for r in parse_table(ok("runs", "ls", "--limit", "1"), ["run"])] == [second]
    shown = ok("runs", "show", first[:-2])
    head = shown.splitlines()[0]
    assert head.startswith(f"run {first} of {name_of(pipe, 'chain')} (workflow): succeeded, "
                           "serial, started ")
    assert head.endswith(f"on {socket.gethostname()} (pid {os.getpid()})")
    nodes = parse_table(shown, ["node", "task", "status", "cache", "attempts", "seconds",
                                "error"])
    assert [(n["node"], n["status"], n["cache"], n["attempts"]) for n in nodes] == [
        ("plus_one", "succeeded", "miss", "1"), ("times_two", "succeeded", "miss", "1"),
        ("minus_three", "succeeded", "miss", "1")]
    hits = parse_table(ok("runs", "show", second), ["node", "task", "status", "cache"])
    assert {n["cache"] for n in hits} == {"hit"}


def test_a_failed_run_is_listed_with_its_error(pipe: Path) -> None:
    result = invoke("run", pipe, "exploding", "--x", "1")
    assert result.exit_code == 1
    assert "ValueError: boom 2" in result.stderr
    listed = parse_table(ok("runs", "ls"), ["run", "workflow", "status"])
    assert [(r["workflow"], r["status"]) for r in listed] == [
        (name_of(pipe, "exploding"), "failed")]
    shown = ok("runs", "show", listed[0]["run"])
    error_line = shown.splitlines()[1]
    assert error_line.startswith("error: ")
    assert name_of(pipe, "explode") in error_line
    assert "ValueError: boom 2" in error_line
    nodes = {n["node"]: n for n in parse_table(
        shown, ["node", "task", "status", "cache", "attempts", "seconds", "error"])}
    assert nodes["explode"]["status"] == "failed"
    assert nodes["explode"]["error"] == "ValueError: boom 2"
    assert nodes["plus_one"]["status"] == "succeeded"


# -- lineage and sql ----------------------------------------------------------------------------
def test_lineage_walks_a_three_task_chain_to_the_workflow_input(pipe: Path) -> None:
    run_id = run(pipe, "chain", "--x", "5")
    (final,) = query("SELECT digest FROM lineage WHERE node_id = 'minus_three'")
    (made,) = query("SELECT inputs FROM runs")
    source = json.loads(str(made["inputs"]))["x"]
    lines = ok("lineage", str(final["digest"])[:10]).splitlines()
    assert len(lines) == 4
    assert lines[0] == (f"{str(final['digest'])[:16]}  {name_of(pipe, 'minus_three')} output "
                        f"'o0' (run {run_id}, node minus_three)")
    assert lines[1].startswith("    z = ")
    assert f"{name_of(pipe, 'times_two')} output 'o0' (run {run_id}, node times_two)" in lines[1]
    assert lines[2].startswith("        y = ")
    assert f"{name_of(pipe, 'plus_one')} output 'o0'" in lines[2]
    assert lines[3] == f"            x = {source[:16]}  a workflow input or constant"


def test_sql_prints_a_query_result(pipe: Path) -> None:
    run_id = run(pipe, "chain", "--x", "5")
    out = ok("sql", "SELECT run_id, status FROM runs")
    assert parse_table(out, ["run_id", "status"]) == [{"run_id": run_id, "status": "succeeded"}]
    counted = ok("sql", "SELECT count(*) AS n FROM node_executions")
    assert counted.split() == ["n", "3"]


@pytest.mark.parametrize("statement", ["DELETE FROM runs", "DROP TABLE cache_entries",
                                       "UPDATE runs SET status = 'failed'"])
def test_sql_write_statements_fail_in_one_line_and_change_nothing(
        pipe: Path, statement: str) -> None:
    run_id = run(pipe, "chain", "--x", "5")
    assert_user_error(invoke("sql", statement), "query failed", "read-only")
    assert parse_table(ok("sql", "SELECT run_id, status FROM runs"), ["run_id", "status"]) == [
        {"run_id": run_id, "status": "succeeded"}]
    assert ok("sql", "SELECT count(*) AS n FROM cache_entries").split() == ["n", "3"]


# -- cache ls / clear / gc / verify -----------------------------------------------------------
def test_cache_ls_counts_hits_after_hit_runs(pipe: Path) -> None:
    run(pipe, "chain", "--x", "5")
    before = parse_table(ok("cache", "ls"), ["task", "entries", "size", "last used", "hits"])
    assert {r["task"] for r in before} == {name_of(pipe, t) for t in
                                           ("plus_one", "times_two", "minus_three")}
    assert all(r["entries"] == "1" and r["hits"] == "0" for r in before)
    assert all(r["size"].endswith(" B") for r in before)
    run(pipe, "chain", "--x", "5")
    run(pipe, "chain", "--x", "5")
    after = parse_table(ok("cache", "ls"), ["task", "entries", "size", "last used", "hits"])
    assert all(r["entries"] == "1" and r["hits"] == "2" for r in after)
    assert all(r["last used"] >= b["last used"] for r, b in zip(after, before))


def test_cache_clear_one_task_keeps_the_others(pipe: Path) -> None:
    run(pipe, "chain", "--x", "5")
    run(pipe, "pair", "--x", "1", "--y", "2")
    out = ok("cache", "clear", name_of(pipe, "times_two"))
    assert out.startswith("removed 1 entries, 1 blobs (")
    listed = {r["task"] for r in parse_table(ok("cache", "ls"), ["task", "entries"])}
    assert listed == {name_of(pipe, t) for t in ("plus_one", "minus_three", "left", "right",
                                                 "merge")}
    assert len(list(store().blobs.iter_digests())) == 5
    before = calls(pipe)
    rerun = invoke("run", pipe, "chain", "--x", "5")
    assert "(3 nodes, 2 cached)" in rerun.stderr
    assert calls(pipe)[len(before):] == ["times_two"]
    everything = ok("cache", "clear")
    assert everything.startswith("removed 6 entries, 6 blobs (")
    assert parse_table(ok("cache", "ls"), ["task", "entries"]) == []


def test_cache_gc_by_age_and_size(pipe: Path) -> None:
    run(pipe, "chain", "--x", "5")
    assert ok("cache", "gc", "--max-size", "10GB", "--older-than", "30d") == (
        "removed 0 entries, 0 blobs (0 B)\n")
    old = datetime.datetime.now() - datetime.timedelta(days=40)
    with store().session() as con:
        con.execute("UPDATE cache_entries SET last_used = ?, created_at = ? WHERE task = ?",
                    [old, old, name_of(pipe, "plus_one")])
    out = ok("cache", "gc", "--max-size", "10GB", "--older-than", "30d")
    assert out.startswith("removed 1 entries, 0 blobs")  # the blob is young: kept a while
    listed = {r["task"] for r in parse_table(ok("cache", "ls"), ["task"])}
    assert listed == {name_of(pipe, "times_two"), name_of(pipe, "minus_three")}
    shrunk = ok("cache", "gc", "--max-size", "0")
    assert shrunk.startswith("removed 2 entries")
    assert parse_table(ok("cache", "ls"), ["task"]) == []


@pytest.mark.parametrize("args, fragment", [
    (["--max-size", "10XB"], "10XB"),
    (["--older-than", "a month"], "a month"),
])
def test_cache_gc_rejects_bad_sizes_and_ages(args: list[str], fragment: str) -> None:
    assert_user_error(invoke("cache", "gc", *args), fragment)


def test_cache_verify_reports_quarantines_and_the_next_run_recomputes(pipe: Path) -> None:
    run(pipe, "chain", "--x", "5")
    clean = invoke("cache", "verify")
    assert clean.exit_code == 0, clean.output
    assert clean.stdout == "checked 3 blobs: 0 bad, 0 entries dropped\n"
    (entry,) = query("SELECT outputs FROM cache_entries WHERE task = ?",
                     [name_of(pipe, "times_two")])
    bad = json.loads(str(entry["outputs"]))["o0"]["blob"]
    path = store().blobs.path(bad)
    path.write_bytes(bytes([path.read_bytes()[0] ^ 0x01]) + path.read_bytes()[1:])

    result = invoke("cache", "verify")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [f"bad blob {bad} (quarantined)",
                                          "checked 3 blobs: 1 bad, 1 entries dropped"]
    assert not path.exists()
    assert list((store().home / "quarantine").glob(f"{bad}.*"))
    before = calls(pipe)
    rerun = invoke("run", pipe, "chain", "--x", "5")
    assert rerun.stdout == "9\n"
    assert "(3 nodes, 2 cached)" in rerun.stderr
    assert calls(pipe)[len(before):] == ["times_two"]
    assert invoke("cache", "verify").exit_code == 0


# -- run --overwrite-cache / --no-cache ---------------------------------------------------------
def test_run_overwrite_cache_recomputes_and_replaces_entries(pipe: Path) -> None:
    run(pipe, "chain", "--x", "5")
    before = calls(pipe)
    result = invoke("run", "--overwrite-cache", pipe, "chain", "--x", "5")
    assert result.exit_code == 0, result.output
    assert result.stdout == "9\n"
    assert "(3 nodes)" in result.stderr
    assert calls(pipe)[len(before):] == ["plus_one", "times_two", "minus_three"]
    run_id = result.stderr.split()[1]
    nodes = parse_table(ok("runs", "show", run_id), ["node", "task", "status", "cache"])
    assert {n["cache"] for n in nodes} == {"overwritten"}
    made = query("SELECT DISTINCT run_id FROM cache_entries")
    assert made == [{"run_id": run_id}]
    assert len(query("SELECT * FROM cache_entries")) == 3


def test_run_no_cache_reads_and_writes_nothing(pipe: Path) -> None:
    run(pipe, "chain", "--x", "5")
    entries = query("SELECT cache_key, hits, last_used FROM cache_entries ORDER BY cache_key")
    before = calls(pipe)
    result = invoke("run", "--no-cache", pipe, "chain", "--x", "5")
    assert result.exit_code == 0, result.output
    assert result.stdout == "9\n"
    assert "cached" not in result.stderr
    assert calls(pipe)[len(before):] == ["plus_one", "times_two", "minus_three"]
    nodes = parse_table(ok("runs", "show", result.stderr.split()[1]),
                        ["node", "task", "status", "cache"])
    assert {n["cache"] for n in nodes} == {"disabled"}
    assert query("SELECT cache_key, hits, last_used FROM cache_entries "
                 "ORDER BY cache_key") == entries
    fresh = invoke("run", "--no-cache", pipe, "chain", "--x", "6")
    assert fresh.exit_code == 0, fresh.output
    assert len(query("SELECT * FROM cache_entries")) == 3


# -- profile ------------------------------------------------------------------------------------
PROFILE_HEADERS = ["node", "cache", "hash ms", "load ms", "compute ms", "store ms", "in", "out",
                   "saved ms"]


def test_profile_of_the_latest_run_shows_times_totals_and_critical_path(pipe: Path) -> None:
    run(pipe, "chain", "--x", "1")
    run_id = run(pipe, "diamond", "--x", "1")
    out = ok("profile")
    lines = out.splitlines()
    assert lines[0].startswith(f"run {run_id} of {name_of(pipe, 'diamond')}: succeeded, ")
    assert lines[0].endswith(" ms wall, serial")
    nodes = {n["node"]: n for n in parse_table(out, PROFILE_HEADERS)}
    assert set(nodes) == {"top", "slow", "fast", "join"}
    assert {n["cache"] for n in nodes.values()} == {"disabled"}
    assert float(nodes["slow"]["compute ms"]) >= 200
    totals = next(line for line in lines if line.startswith("totals: "))
    assert "compute " in totals and "the cache saved " in totals
    critical = next(line for line in lines if line.startswith("critical path: "))
    assert critical.startswith("critical path: top -> slow -> join (")
    assert ok("profile", run_id[:-1]) == out


def test_profile_shows_the_time_a_hit_saved(pipe: Path) -> None:
    run(pipe, "resting", "--seconds", "0.1")
    run_id = run(pipe, "resting", "--seconds", "0.1")
    out = ok("profile", run_id)
    (row,) = parse_table(out, PROFILE_HEADERS)
    assert row["cache"] == "hit"
    assert float(row["saved ms"]) >= 100
    assert float(row["compute ms"]) == 0
    totals = next(line for line in out.splitlines() if line.startswith("totals: "))
    saved = float(totals.split("the cache saved ")[1].split()[0])
    assert saved >= 100


def test_profile_shows_bytes_and_names_a_load_that_costs_more_than_recomputing(
        pipe: Path) -> None:
    run(pipe, "loading", "--tag", "1")
    run(pipe, "loading", "--tag", "2")
    out = ok("profile")
    nodes = {n["node"]: n for n in parse_table(out, PROFILE_HEADERS)}
    assert (nodes["produce"]["cache"], nodes["consume"]["cache"]) == ("hit", "miss")
    assert nodes["consume"]["in"] == "16.0 MB"
    assert nodes["consume"]["out"].endswith(" B")
    costly = [line for line in out.splitlines()
              if line.startswith("loading costs more than recomputing: ")]
    assert len(costly) == 1
    assert "consume: loading its cached inputs (produce) took " in costly[0]


def test_profile_trace_writes_chrome_trace_json(tmp_path: Path, pipe: Path) -> None:
    run(pipe, "diamond", "--x", "3")
    trace_file = tmp_path / "trace.json"
    out = ok("profile", "--trace", trace_file)
    assert f"trace written to {trace_file}" in out
    trace = json.loads(trace_file.read_text())
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert sorted(e["name"] for e in spans) == ["fast", "join", "slow", "top"]
    for span in spans:
        assert isinstance(span["ts"], (int, float))
        assert isinstance(span["dur"], (int, float)) and span["dur"] > 0
    assert max(spans, key=lambda e: e["dur"])["name"] == "slow"


def test_profile_compare_shows_hits_recomputes_and_why(pipe: Path) -> None:
    first = run(pipe, "pair", "--x", "1", "--y", "1")
    second = run(pipe, "pair", "--x", "1", "--y", "2")
    out = ok("profile", "--compare", first, second[:-1])
    assert out.splitlines()[0] == (f"A: run {first} (succeeded)   "
                                   f"B: run {second} (succeeded)")
    nodes = {n["node"]: n for n in parse_table(
        out, ["node", "cache A", "cache B", "A ms", "B ms", "why B recomputed"])}
    assert (nodes["left"]["cache A"], nodes["left"]["cache B"]) == ("miss", "hit")
    assert nodes["left"]["why B recomputed"] == ""
    assert (nodes["right"]["cache A"], nodes["right"]["cache B"]) == ("miss", "miss")
    assert nodes["right"]["why B recomputed"] == "input 'y' changed"
    assert nodes["merge"]["why B recomputed"] == "input 'b' changed"
    assert all(float(n["A ms"]) >= 0 and float(n["B ms"]) >= 0 for n in nodes.values())


# -- user mistakes: one line, no traceback --------------------------------------------------
def test_unknown_run_ids_are_one_line_errors(pipe: Path) -> None:
    assert_user_error(invoke("profile"), "no runs recorded yet")
    first = run(pipe, "chain", "--x", "1")
    second = run(pipe, "chain", "--x", "2")
    assert_user_error(invoke("runs", "show", "no-such-run"), "no run matches 'no-such-run'")
    assert_user_error(invoke("profile", "no-such-run"), "no-such-run")
    assert_user_error(invoke("profile", "--compare", first, "no-such-run"), "no-such-run")
    shared = first[:next(i for i, (a, b) in enumerate(zip(first, second)) if a != b)]
    assert_user_error(invoke("runs", "show", shared), "ambiguous", shared)
    assert_user_error(invoke("profile", shared), "ambiguous")


def test_unknown_tasks_and_digests_are_one_line_errors(pipe: Path) -> None:
    run(pipe, "chain", "--x", "1")
    assert_user_error(invoke("tasks", "show", "no.such.task"), "no.such.task")
    assert_user_error(invoke("tasks", "versions", "no.such.task"), "no task named",
                      "no.such.task")
    assert_user_error(invoke("tasks", "show", f"{name_of(pipe, 'plus_one')}@zzzz"), "zzzz")
    assert_user_error(invoke("lineage", "0123456789abcdef"), "no recorded value has digest")


def test_an_ambiguous_digest_prefix_is_a_one_line_error(pipe: Path) -> None:
    for x in range(6):  # 18 distinct values: two share a first hex digit
        run(pipe, "chain", "--x", str(100 + x))
    digests = [str(r["digest"]) for r in query("SELECT DISTINCT digest FROM lineage")]
    assert len(digests) == 18
    shared = next(c for c in "0123456789abcdef" if sum(d.startswith(c) for d in digests) > 1)
    assert_user_error(invoke("lineage", shared), "ambiguous")


def test_an_ambiguous_task_version_prefix_is_a_one_line_error() -> None:
    now = datetime.datetime.now()
    with store().session() as con:
        for version in ("abc1", "abc2"):
            register_task(con, TaskVersion(
                name="hand.made", version=version, interface='{"inputs":{},"outputs":{}}',
                config="{}", code_fingerprint=version * 8, code_components={},
                source=f"# {version}", cache_version=version),
                project="p", domain="d", registered_at=now)
    assert "# abc1" in ok("tasks", "show", "hand.made@abc1")
    assert_user_error(invoke("tasks", "show", "hand.made@abc"), "ambiguous", "abc")


def test_home_option_chooses_the_store(tmp_path: Path, pipe: Path) -> None:
    other = tmp_path / "elsewhere"
    result = invoke("--home", other, "run", pipe, "chain", "--x", "5")
    assert result.exit_code == 0, result.output
    run_id = result.stderr.split()[1]
    listed = parse_table(ok("--home", other, "runs", "ls"), ["run", "workflow"])
    assert [r["run"] for r in listed] == [run_id]
    assert (other / "sterna.duckdb").exists()
    config.reset()  # back to STERNA_HOME: that store has no runs
    assert parse_table(ok("runs", "ls"), ["run"]) == []
