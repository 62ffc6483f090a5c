"""Profiles of recorded runs (cache/profile.py): the pure functions on hand-made records, and
load_profile / chrome_trace / compare on real runs."""

import datetime
import importlib
import itertools
import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from cli_support import forgetting_loaded_pipelines

import sterna
from sterna import task, workflow
from sterna.cache import admin, profile
from sterna.cache.history import NotFoundError
from sterna.cache.profile import Profile, chrome_trace, costly_loads, critical_path
from sterna.cache.store import Store
from sterna.cli.loader import load_module
from sterna.core import config

_seq = itertools.count()
ROWS = 2_000_000
# A large table made once: returning it costs nothing, loading it back from the store costs
# reading and hashing 16 MB.
BIG = pa.table({"v": pa.Array.from_buffers(pa.int64(), ROWS,
                                           [None, pa.py_buffer(bytes(8 * ROWS))])})


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


@pytest.fixture(autouse=True)
def _forget_modules(tmp_path: Path) -> Iterator[None]:
    with forgetting_loaded_pipelines(tmp_path):
        yield


@pytest.fixture
def store() -> Store:
    return Store.at(config.current().home)


T0 = datetime.datetime(2026, 3, 1, 12, 0, 0)


def node(node_id: str, duration: float | None, **fields: Any) -> dict[str, Any]:
    """A node execution row as the index holds it."""
    row = {"node_id": node_id, "task": f"m.{node_id}", "status": "succeeded",
           "cache_status": "miss", "duration_s": duration, "started_at": T0, "hash_s": 0.0,
           "load_s": 0.0, "compute_s": duration, "store_s": 0.0, "saved_s": 0.0,
           "bytes_in": 0, "bytes_out": 0, "attempts": 1}
    row.update(fields)
    return row


# -- critical_path on hand-made records ------------------------------------------------------
DIAMOND = {"a": set(), "b": {"a"}, "c": {"a"}, "d": {"b", "c"}}


def test_critical_path_follows_the_heavier_branch_of_a_diamond() -> None:
    nodes = [node("a", 1.0), node("b", 5.0), node("c", 2.0), node("d", 1.0)]
    assert critical_path(nodes, DIAMOND) == ["a", "b", "d"]
    nodes = [node("a", 1.0), node("b", 2.0), node("c", 5.0), node("d", 1.0)]
    assert critical_path(nodes, DIAMOND) == ["a", "c", "d"]


def test_critical_path_picks_the_longest_of_independent_chains() -> None:
    nodes = [node("x", 1.0), node("y", 1.0), node("z", 3.0)]
    assert critical_path(nodes, {"y": {"x"}}) == ["z"]
    nodes = [node("x", 2.0), node("y", 2.0), node("z", 3.0)]
    assert critical_path(nodes, {"y": {"x"}}) == ["x", "y"]


def test_critical_path_edge_cases() -> None:
    assert critical_path([], {}) == []
    assert critical_path([node("a", None), node("b", 2.0)], {"b": {"a"}}) == ["a", "b"]
    # a dependency that has no execution row (never ran) is left out
    assert critical_path([node("b", 2.0)], {"b": {"ghost"}}) == ["b"]


def test_critical_path_does_not_depend_on_the_order_of_the_rows() -> None:
    rows = [node("d", 1.0), node("c", 2.0), node("b", 5.0), node("a", 1.0)]
    assert critical_path(rows, DIAMOND) == ["a", "b", "d"]


@pytest.mark.parametrize("order", ["dependency order", "reverse order"])
def test_critical_path_of_a_long_chain(order: str) -> None:
    count = 3000
    nodes = [node(f"n{i}", 0.001) for i in range(count)]
    if order == "reverse order":
        nodes.reverse()
    edges = {f"n{i}": {f"n{i - 1}"} for i in range(1, count)}
    path = critical_path(nodes, edges)
    assert path == [f"n{i}" for i in range(count)]


# -- costly_loads on hand-made records --------------------------------------------------------
def test_costly_loads_names_a_consumer_that_loads_longer_than_recomputing() -> None:
    nodes = [node("producer", 0.0, cache_status="hit", saved_s=0.1),
             node("consumer", 0.2, load_s=0.5)]
    (line,) = costly_loads(nodes, {"consumer": {"producer"}})
    assert line.startswith("consumer:")
    assert "(producer)" in line
    assert "500.0 ms" in line
    assert "100.0 ms" in line


def test_costly_loads_is_quiet_when_loading_is_cheap_or_inputs_were_computed() -> None:
    cheap = [node("producer", 0.0, cache_status="hit", saved_s=0.1),
             node("consumer", 0.2, load_s=0.05)]
    assert costly_loads(cheap, {"consumer": {"producer"}}) == []
    computed = [node("producer", 0.1, cache_status="miss"), node("consumer", 0.2, load_s=0.5)]
    assert costly_loads(computed, {"consumer": {"producer"}}) == []
    alone = [node("consumer", 0.2, load_s=0.5)]
    assert costly_loads(alone, {}) == []


def test_costly_loads_adds_up_every_upstream_hit() -> None:
    nodes = [node("p", 0.0, cache_status="hit", saved_s=0.3),
             node("q", 0.0, cache_status="hit", saved_s=0.3),
             node("c", 0.1, load_s=0.5)]
    assert costly_loads(nodes, {"c": {"p", "q"}}) == []  # 0.5 s to load < 0.6 s to recompute


# -- chrome_trace and totals on a hand-made profile ---------------------------------------------
def test_chrome_trace_of_a_hand_made_profile() -> None:
    nodes = [node("a", 0.5), node("b", 0.25, started_at=T0 + datetime.timedelta(seconds=0.5),
                                  cache_status="hit", saved_s=2.0)]
    run = {"run_id": "r-1", "workflow": "m.flow", "started_at": T0}
    trace = chrome_trace(Profile(run, nodes))
    json.dumps(trace)  # plain JSON, nothing to convert
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert [e["name"] for e in spans] == ["a", "b"]
    assert spans[0]["ts"] == pytest.approx(0.0)
    assert spans[1]["ts"] == pytest.approx(500_000.0)
    assert spans[0]["dur"] == pytest.approx(500_000.0)
    assert spans[1]["dur"] == pytest.approx(250_000.0)
    assert spans[1]["cat"] == "hit"
    assert spans[1]["args"]["saved_s"] == 2.0
    assert spans[0]["tid"] != spans[1]["tid"]
    assert trace["otherData"] == {"run_id": "r-1", "workflow": "m.flow"}


def test_profile_totals() -> None:
    result = Profile({}, [node("a", 1.0, hash_s=0.25), node("b", 2.0, hash_s=None)])
    assert result.total("compute_s") == 3.0
    assert result.total("hash_s") == 0.25


# -- real runs ----------------------------------------------------------------------------------
def test_the_slow_branch_of_a_real_diamond_is_on_the_critical_path(store: Store) -> None:
    result = sterna.run(diamond, x=1)
    assert result.outputs == 10
    loaded = profile.load_profile(store)
    assert loaded.run["run_id"] == result.run_id
    assert loaded.critical_path == ["top", "slow", "join"]
    assert {n["node_id"] for n in loaded.nodes} == {"top", "slow", "fast", "join"}
    assert loaded.total("compute_s") >= 0.2
    assert loaded.costly_loads == []


def test_load_profile_takes_a_prefix_and_defaults_to_the_latest(store: Store) -> None:
    first = sterna.run(pair, x=1, y=1)
    second = sterna.run(pair, x=1, y=1)
    assert profile.load_profile(store).run["run_id"] == second.run_id
    assert profile.load_profile(store, first.run_id[:-1]).run["run_id"] == first.run_id
    hits = profile.load_profile(store, second.run_id)
    assert {n["cache_status"] for n in hits.nodes} == {"hit"}
    with pytest.raises(NotFoundError, match="no run matches"):
        profile.load_profile(store, "no-such-run")


def test_a_cached_large_table_that_costs_more_to_load_than_to_make(store: Store) -> None:
    sterna.run(loading, tag=1)
    result = sterna.run(loading, tag=2)
    assert result.outputs == ROWS + 2
    assert {n: r.cache_status for n, r in result.nodes.items()} == {
        "produce": "hit", "consume": "miss"}
    loaded = profile.load_profile(store, result.run_id)
    by = {n["node_id"]: n for n in loaded.nodes}
    assert by["consume"]["bytes_in"] >= 8 * ROWS
    assert by["consume"]["load_s"] > by["produce"]["saved_s"]
    (line,) = loaded.costly_loads
    assert line.startswith("consume:") and "(produce)" in line


def test_chrome_trace_of_a_real_run(store: Store) -> None:
    sterna.run(diamond, x=2)
    trace = chrome_trace(profile.load_profile(store))
    text = json.dumps(trace, default=str)
    spans = [e for e in json.loads(text)["traceEvents"] if e["ph"] == "X"]
    assert sorted(e["name"] for e in spans) == ["fast", "join", "slow", "top"]
    for span in spans:
        assert isinstance(span["ts"], (int, float)) and span["ts"] >= 0
        assert isinstance(span["dur"], (int, float)) and span["dur"] > 0
    by = {e["name"]: e for e in spans}
    assert by["slow"]["dur"] >= 200_000
    assert by["join"]["ts"] >= by["slow"]["ts"] + by["slow"]["dur"] - 1


def test_compare_names_the_changed_input(store: Store) -> None:
    a = sterna.run(pair, x=1, y=1)
    b = sterna.run(pair, x=1, y=2)
    first, second, changes = profile.compare(store, a.run_id, b.run_id)
    assert (first.run["run_id"], second.run["run_id"]) == (a.run_id, b.run_id)
    by = {c.node_id: c for c in changes}
    assert set(by) == {"left", "right", "merge"}
    assert by["left"].after["cache_status"] == "hit"
    assert by["left"].reasons == []
    assert by["right"].before["cache_status"] == "miss"
    assert by["right"].after["cache_status"] == "miss"
    assert by["right"].reasons == ["input 'y' changed"]
    assert by["merge"].reasons == ["input 'b' changed"]


def test_compare_explains_overwrites_and_cleared_entries(store: Store) -> None:
    a = sterna.run(pair, x=3, y=3)
    b = sterna.run(pair, x=3, y=3, overwrite_cache=True)
    by = {c.node_id: c for c in profile.compare(store, a.run_id, b.run_id)[2]}
    assert all(c.reasons == ["the cache was overwritten on purpose"] for c in by.values())
    admin.cache_clear(store, left.name)
    c = sterna.run(pair, x=3, y=3)
    by = {c.node_id: c for c in profile.compare(store, b.run_id, c.run_id)[2]}
    assert by["left"].after["cache_status"] == "miss"
    assert by["left"].reasons == ["no entry was found (new, cleared or collected)"]
    assert by["right"].reasons == [] and by["merge"].reasons == []


def test_compare_runs_of_different_workflows(store: Store) -> None:
    a = sterna.run(pair, x=1, y=1)
    b = sterna.run(diamond, x=1)
    by = {c.node_id: c for c in profile.compare(store, a.run_id, b.run_id)[2]}
    assert by["left"].reasons == ["only in one run"]
    assert by["left"].after is None
    assert by["top"].before is None


EDITED = '''
from sterna import task, workflow


@task(cache=True)
def base(x: int) -> int:
    return x + 1


@task(cache=True)
def step(y: int) -> int:
    return y * 2


@workflow
def flow(x: int) -> int:
    return step(y=base(x=x))
'''


def test_compare_names_a_changed_task_version(tmp_path: Path, store: Store) -> None:
    path = tmp_path / f"profpipe_{next(_seq)}.py"
    path.write_text(textwrap.dedent(EDITED))
    module = load_module(str(path))
    a = sterna.run(module.flow, x=1)
    path.write_text(path.read_text().replace("return y * 2", "return y * 2 + 100"))
    module = importlib.reload(module)
    b = sterna.run(module.flow, x=1)
    assert b.outputs == 104
    by = {c.node_id: c for c in profile.compare(store, a.run_id, b.run_id)[2]}
    assert by["base"].reasons == []
    (reason,) = by["step"].reasons
    assert reason.startswith("task version changed (")
    assert by["step"].before["task_version"] in reason
    assert by["step"].after["task_version"] in reason
