"""The engine with the cache: hits and misses, keys, early cutoff, lazy loads, repair, records.

Every test runs real workflows, on every executor, against the per-test store
(``STERNA_HOME`` from conftest) and counts task calls with ``Calls``: lists kept in a
file, so a task appends to them from whatever process it runs in.
"""

import contextlib
import copy
import dataclasses
import datetime
import enum
import os
import shutil
import time
import typing
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from executor_support import Calls
from mapping_support import assert_table_maps_file

import sterna
from sterna import Directory, File, SternaError, SternaWarning, TypeCheckError
from sterna.cache.store import Store
from sterna.core import config

pytestmark = pytest.mark.usefixtures("executor")

# -- helpers ----------------------------------------------------------------------------------


def _store() -> Store:
    return Store.at(config.current().home)


def _home() -> Path:
    return Path(config.current().home).resolve()


def _entries(task: str | None = None) -> list[dict[str, Any]]:
    """Cache entries in the store (all, or one task's), read through an index session."""
    where, params = ("WHERE task = ?", [task]) if task else ("", [])
    with _store().index.session() as con:
        cursor = con.execute(f"SELECT cache_key, task FROM cache_entries {where}", params)
        return [{"cache_key": k, "task": t} for k, t in cursor.fetchall()]


def _blob_of(run: sterna.Run, node_id: str, output: str = "o0") -> str:
    """The blob digest holding a node's stored output, from its cache entry."""
    key = run.nodes[node_id].cache.key
    store = _store()
    with store.index.session() as con:
        entry = store.lookup(con, [key])[key]
    return entry.outputs[output].blob


def _statuses(run: sterna.Run) -> dict[str, str]:
    return {node_id: record.cache_status for node_id, record in run.nodes.items()}


@contextmanager
def _no_sterna_warnings() -> Iterator[None]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    sterna_warnings = [str(w.message) for w in caught if issubclass(w.category, SternaWarning)]
    assert sterna_warnings == []


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    os.chmod(path, 0o644)
    path.write_bytes(data[: len(data) // 2])


def _delete(path: Path) -> None:
    path.unlink()


CORRUPTIONS = {"flip": _flip_byte, "truncate": _truncate, "delete": _delete}


def _table(n: int = 5, offset: int = 0) -> pa.Table:
    return pa.table({"k": list(range(offset, offset + n)),
                     "v": [float(i) * 1.5 for i in range(offset, offset + n)]})


# -- hits, misses, uncached tasks -------------------------------------------------------------


def test_second_run_hits_every_cached_task_and_runs_the_uncached_one(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(cache=True)
    def load(n: int) -> pa.Table:
        calls.append("load")
        return _table(n)

    @sterna.task
    def scale(t: pa.Table) -> pa.Table:
        calls.append("scale")
        return t.set_column(1, "v", pa.compute.multiply(t["v"], 2.0))

    @sterna.task(cache=True)
    def total(t: pa.Table) -> pa.Table:
        calls.append("total")
        return pa.table({"sum": [pa.compute.sum(t["v"]).as_py()]})

    @sterna.workflow
    def pipeline(n: int) -> pa.Table:
        return total(t=scale(t=load(n=n)))

    first = sterna.run(pipeline, n=6)
    assert calls == ["load", "scale", "total"]
    assert _statuses(first) == {"load": "miss", "scale": "disabled", "total": "miss"}

    second = sterna.run(pipeline, n=6)
    assert calls == ["load", "scale", "total", "scale"]  # only the uncached task ran again
    assert _statuses(second) == {"load": "hit", "scale": "disabled", "total": "hit"}
    assert second.outputs.equals(first.outputs)
    assert second.outputs.to_pylist() == [{"sum": 2 * 1.5 * sum(range(6))}]
    assert second.nodes["scale"].cache is None
    assert second.nodes["load"].cache.key == first.nodes["load"].cache.key


def test_running_a_single_cached_task_hits_the_second_time(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(cache=True)
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    assert sterna.run(square, x=7).outputs == 49
    again = sterna.run(square, x=7)
    assert again.outputs == 49
    assert calls == [7]
    assert _statuses(again) == {"square": "hit"}


def test_calling_a_workflow_like_a_function_uses_the_cache(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(cache=True)
    def inc(x: int) -> int:
        calls.append(x)
        return x + 1

    @sterna.workflow
    def wf(x: int) -> int:
        return inc(x=x)

    assert wf(x=1) == 2
    assert wf(x=1) == 2
    assert calls == [1]


# -- the key -----------------------------------------------------------------------------------


def test_ignored_input_still_hits_other_input_misses(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(cache=True, cache_ignore_input_vars=("verbose",))
    def work(x: int, verbose: bool) -> int:
        calls.append([x, verbose])
        return x * 10

    first = sterna.run(work, x=1, verbose=False)
    ignored_changed = sterna.run(work, x=1, verbose=True)
    assert _statuses(ignored_changed) == {"work": "hit"}
    assert ignored_changed.outputs == 10
    assert calls == [[1, False]]

    other_changed = sterna.run(work, x=2, verbose=False)
    assert _statuses(other_changed) == {"work": "miss"}
    assert other_changed.outputs == 20
    assert calls == [[1, False], [2, False]]
    assert first.nodes["work"].cache.key == ignored_changed.nodes["work"].cache.key
    assert other_changed.nodes["work"].cache.key != first.nodes["work"].cache.key


def test_dict_insertion_order_does_not_change_the_key(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(cache=True)
    def weigh(d: dict[str, int]) -> int:
        calls.append(d)
        return sum(k * v for k, v in zip(range(1, 10), d.values()))

    sterna.run(weigh, d={"a": 1, "b": 2, "c": 3})
    again = sterna.run(weigh, d={"c": 3, "a": 1, "b": 2})
    assert _statuses(again) == {"weigh": "hit"}
    assert len(calls) == 1
    changed = sterna.run(weigh, d={"a": 1, "b": 2, "c": 4})
    assert _statuses(changed) == {"weigh": "miss"}
    assert len(calls) == 2


def test_int_and_float_inputs_coerced_to_the_same_value_share_an_entry(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(cache=True)
    def halve(x: float) -> float:
        calls.append(x)
        return x / 2

    @sterna.workflow
    def wf(x: float) -> float:
        return halve(x=x)

    assert sterna.run(wf, x=3).outputs == 1.5
    assert calls == [3.0]
    assert isinstance(calls[0], float)
    as_float = sterna.run(wf, x=3.0)
    assert _statuses(as_float) == {"halve": "hit"}
    direct = sterna.run(halve, x=3)
    assert _statuses(direct) == {"halve": "hit"}
    other = sterna.run(wf, x=3.5)
    assert _statuses(other) == {"halve": "miss"}
    assert calls == [3.0, 3.5]


def test_the_key_includes_task_name_and_interface(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    def make(name: str, returns_float: bool) -> sterna.Task[..., Any]:
        if returns_float:
            def fn(x: int) -> float:
                calls.append(f"{name} float")
                return float(x)
        else:
            def fn(x: int) -> int:  # type: ignore[misc]
                calls.append(f"{name} int")
                return x
        return sterna.task(name=name, cache=True, cache_version="1")(fn)

    assert _statuses(sterna.run(make("keys.a", False), x=1)) == {"fn": "miss"}
    assert _statuses(sterna.run(make("keys.a", False), x=1)) == {"fn": "hit"}
    assert _statuses(sterna.run(make("keys.b", False), x=1)) == {"fn": "miss"}
    result = sterna.run(make("keys.a", True), x=1)
    assert _statuses(result) == {"fn": "miss"}
    assert result.outputs == 1.0 and isinstance(result.outputs, float)
    assert calls == ["keys.a int", "keys.b int", "keys.a float"]


# -- early cutoff -------------------------------------------------------------------------------


def test_upstream_recomputing_identical_output_leaves_downstream_hitting(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    def upstream(version: str) -> sterna.Task[..., Any]:
        @sterna.task(name="cutoff.load", cache=True, cache_version=version)
        def load(n: int) -> pa.Table:
            calls.append(f"load {version}")
            return _table(n)
        return load

    @sterna.task(cache=True)
    def summarize(t: pa.Table) -> int:
        calls.append("summarize")
        return t.num_rows

    def workflow(load: sterna.Task[..., Any]) -> sterna.Workflow[..., Any]:
        @sterna.workflow
        def wf(n: int) -> int:
            return summarize(t=load(n=n))
        return wf

    sterna.run(workflow(upstream("1")), n=4)
    bumped = sterna.run(workflow(upstream("2")), n=4)
    assert _statuses(bumped) == {"load": "miss", "summarize": "hit"}
    assert calls == ["load 1", "summarize", "load 2"]
    assert bumped.outputs == 4


def test_uncached_upstream_with_identical_output_leaves_downstream_hitting(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task
    def produce(n: int) -> pa.Table:
        calls.append("produce")
        # Built in two chunks the second time: the digest is of the data, not the layout.
        table = _table(n)
        if calls.count("produce") > 1:
            table = pa.concat_tables([table.slice(0, 2), table.slice(2)])
        return table

    @sterna.task(cache=True)
    def count(t: pa.Table) -> int:
        calls.append("count")
        return t.num_rows

    @sterna.workflow
    def wf(n: int) -> int:
        return count(t=produce(n=n))

    sterna.run(wf, n=5)
    second = sterna.run(wf, n=5)
    assert _statuses(second) == {"produce": "disabled", "count": "hit"}
    assert calls == ["produce", "count", "produce"]
    different = sterna.run(wf, n=6)
    assert _statuses(different) == {"produce": "disabled", "count": "miss"}
    assert different.outputs == 6


def test_upstream_recomputing_different_output_makes_downstream_miss(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    def upstream(version: str, value: int) -> sterna.Task[..., Any]:
        @sterna.task(name="cutoff2.base", cache=True, cache_version=version)
        def base(x: int) -> int:
            return x + value
        return base

    @sterna.task(cache=True)
    def twice(y: int) -> int:
        calls.append("twice")
        return 2 * y

    def workflow(base: sterna.Task[..., Any]) -> sterna.Workflow[..., Any]:
        @sterna.workflow
        def wf(x: int) -> int:
            return twice(y=base(x=x))
        return wf

    assert sterna.run(workflow(upstream("1", 1)), x=1).outputs == 4
    changed = sterna.run(workflow(upstream("2", 5)), x=1)
    assert _statuses(changed) == {"base": "miss", "twice": "miss"}
    assert changed.outputs == 12
    assert calls == ["twice", "twice"]


# -- cache_version ------------------------------------------------------------------------------


def test_explicit_cache_version_is_used_as_is() -> None:
    @sterna.task(name="ver.step", cache=True, cache_version="1")
    def step_v1(x: int) -> int:
        return x + 1

    @sterna.task(name="ver.step", cache=True, cache_version="1")
    def step_edited(x: int) -> int:
        return x + 100

    @sterna.task(name="ver.step", cache=True, cache_version="2")
    def step_bumped(x: int) -> int:
        return x + 100

    assert sterna.run(step_v1, x=1).outputs == 2
    same_version = sterna.run(step_edited, x=1)
    assert _statuses(same_version) == {"step_edited": "hit"}
    assert same_version.outputs == 2  # the body changed, the declared version did not
    bumped = sterna.run(step_bumped, x=1)
    assert _statuses(bumped) == {"step_bumped": "miss"}
    assert bumped.outputs == 101


# -- lazy loading -------------------------------------------------------------------------------


def _chain(calls: Calls, last_version: str) -> sterna.Workflow[..., Any]:
    @sterna.task(name="lazy.first", cache=True, cache_version="1")
    def first(n: int) -> pa.Table:
        calls.append("first")
        return _table(n)

    @sterna.task(name="lazy.middle", cache=True, cache_version="1")
    def middle(t: pa.Table) -> pa.Table:
        calls.append("middle")
        return t.filter(pa.compute.greater(t["k"], 1))

    @sterna.task(name="lazy.last", cache=True, cache_version=last_version)
    def last(t: pa.Table) -> pa.Table:
        calls.append("last")
        return t.append_column("w", pa.compute.add(t["k"], 100))

    @sterna.workflow
    def chain(n: int) -> pa.Table:
        return last(t=middle(t=first(n=n)))

    return chain


def test_all_hit_run_never_reads_intermediate_blobs(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")
    first_run = sterna.run(_chain(calls, "1"), n=6)
    expected = first_run.outputs
    store = _store()
    for node_id in ("first", "middle"):
        store.blobs.path(_blob_of(first_run, node_id)).unlink()

    with _no_sterna_warnings():
        again = sterna.run(_chain(calls, "1"), n=6)
    assert _statuses(again) == {"first": "hit", "middle": "hit", "last": "hit"}
    assert again.outputs.equals(expected)
    assert calls == ["first", "middle", "last"]
    assert not (_home() / "quarantine").exists() or not any((_home() / "quarantine").iterdir())


def test_a_downstream_miss_notices_a_missing_intermediate_blob_and_recomputes_it(
        tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")
    first_run = sterna.run(_chain(calls, "1"), n=6)
    middle_blob = _blob_of(first_run, "middle")
    _store().blobs.path(middle_blob).unlink()

    with pytest.warns(SternaWarning, match=middle_blob):
        changed = sterna.run(_chain(calls, "2"), n=6)
    assert calls == ["first", "middle", "last", "middle", "last"]  # first is never loaded
    assert changed.nodes["first"].cache_status == "hit"
    assert changed.nodes["middle"].cache_status == "miss"
    assert changed.nodes["last"].cache_status == "miss"
    assert changed.outputs.equals(first_run.outputs)
    assert _store().blobs.verify(middle_blob)  # stored again, intact

    with _no_sterna_warnings():
        again = sterna.run(_chain(calls, "2"), n=6)
    assert _statuses(again) == {"first": "hit", "middle": "hit", "last": "hit"}
    assert len(calls) == 5


# -- verification of loaded values ------------------------------------------------------------


@pytest.mark.parametrize("damage", sorted(CORRUPTIONS))
@pytest.mark.parametrize("kind", ["table", "int"])
def test_a_damaged_output_blob_is_quarantined_and_recomputed(damage: str, kind: str,
                                                             tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    if kind == "table":
        @sterna.task(cache=True)
        def make(n: int) -> pa.Table:
            calls.append(n)
            return _table(n)
    else:
        @sterna.task(cache=True)
        def make(n: int) -> int:  # type: ignore[misc]
            calls.append(n)
            return n * 1_000_003

    @sterna.workflow
    def wf(n: int) -> Any:
        return make(n=n)

    first = sterna.run(wf, n=8)
    # Built anew, not first.outputs: a table output may be a mapping of the very blob damaged
    # below (a worker hands its stored output back as the blob itself).
    expected = _table(8) if kind == "table" else 8 * 1_000_003
    assert first.outputs == expected
    blob = _blob_of(first, "make")
    path = _store().blobs.path(blob)
    CORRUPTIONS[damage](path)

    with pytest.warns(SternaWarning, match=blob):
        repaired = sterna.run(wf, n=8)
    assert calls == [8, 8]
    assert repaired.nodes["make"].cache_status == "miss"
    assert repaired.outputs == expected
    quarantined = [p.name for p in (_home() / "quarantine").glob(f"{blob}.*")
                   if not p.name.endswith(".reason")]
    if damage == "delete":
        assert quarantined == []
    else:
        assert len(quarantined) == 1
    assert _store().blobs.verify(blob)  # a fresh, good blob under the same address
    assert len(_entries()) == 1

    with _no_sterna_warnings():
        again = sterna.run(wf, n=8)
    assert _statuses(again) == {"make": "hit"}
    assert again.outputs == expected
    assert calls == [8, 8]


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc/self/maps")
def test_a_table_loaded_from_the_cache_is_memory_mapped() -> None:
    @sterna.task(cache=True)
    def make(n: int) -> pa.Table:
        return _table(n)

    first = sterna.run(make, n=20_000)
    hit = sterna.run(make, n=20_000)
    assert _statuses(hit) == {"make": "hit"}
    loaded = hit.outputs
    assert loaded.equals(first.outputs)
    assert_table_maps_file(loaded, _store().blobs.path(_blob_of(hit, "make")))


# -- run-level switches -----------------------------------------------------------------------


def test_overwrite_cache_recomputes_and_replaces_the_entry(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(cache=True)
    def stamp(x: int) -> int:
        calls.append(x)
        return x * 100 + len(calls)

    @sterna.workflow
    def wf(x: int) -> int:
        return stamp(x=x)

    assert sterna.run(wf, x=1).outputs == 101
    overwritten = sterna.run(wf, x=1, overwrite_cache=True)
    assert _statuses(overwritten) == {"stamp": "overwritten"}
    assert overwritten.outputs == 102
    assert calls == [1, 1]

    later = sterna.run(wf, x=1)
    assert _statuses(later) == {"stamp": "hit"}
    assert later.outputs == 102  # the replacement, not the first value
    assert calls == [1, 1]

    with _store().index.session() as con:
        per_key = con.execute(
            "SELECT cache_key, count(*) FROM cache_entries GROUP BY cache_key").fetchall()
    assert per_key == [(later.nodes["stamp"].cache.key, 1)]


def test_cache_false_runs_everything_and_writes_nothing(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(cache=True)
    def a(x: int) -> int:
        calls.append("a")
        return x + 1

    @sterna.task(cache=True)
    def b(y: int) -> int:
        calls.append("b")
        return y * 2

    @sterna.workflow
    def wf(x: int) -> int:
        return b(y=a(x=x))

    off = sterna.run(wf, x=1, cache=False)
    assert off.outputs == 4
    assert _statuses(off) == {"a": "disabled", "b": "disabled"}
    assert _entries() == []

    sterna.run(wf, x=1)
    assert len(_entries()) == 2
    again_off = sterna.run(wf, x=1, cache=False)
    assert _statuses(again_off) == {"a": "disabled", "b": "disabled"}
    assert calls == ["a", "b", "a", "b", "a", "b"]
    assert len(_entries()) == 2
    new_input_off = sterna.run(wf, x=5, cache=False)
    assert new_input_off.outputs == 12
    assert len(_entries()) == 2


# -- failures cache nothing ---------------------------------------------------------------------


def test_a_wrong_workflow_input_type_fails_before_anything_runs_or_is_cached(
        tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(cache=True)
    def inc(x: int) -> int:
        calls.append(x)
        return x + 1

    @sterna.workflow
    def wf(x: int) -> int:
        return inc(x=x)

    with pytest.raises(TypeCheckError) as info:
        sterna.run(wf, x="seven")
    assert info.value.argument == "x"
    assert "int" in info.value.expected
    assert "str" in info.value.got
    assert "input 'x'" in str(info.value) and "wf" in str(info.value)
    with pytest.raises(TypeCheckError, match="'x'"):
        sterna.run(inc, x=[1])
    assert calls == []
    assert _entries() == []


def test_a_wrong_value_between_tasks_fails_and_caches_nothing_for_it(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(cache=True)
    def broken(x: int) -> int:
        calls.append("broken")
        return str(x)  # type: ignore[return-value]

    @sterna.task(cache=True)
    def after(y: int) -> int:
        calls.append("after")
        return y

    @sterna.workflow
    def wf(x: int) -> int:
        return after(y=broken(x=x))

    with pytest.raises(TypeCheckError) as info:
        sterna.run(wf, x=3)
    assert ".broken" in info.value.task
    assert "output" in str(info.value) and "expected int, got str" in str(info.value)
    assert calls == ["broken"]
    assert _entries() == []
    assert info.value.run.nodes["broken"].status == "failed"


@pytest.mark.parametrize("what", ["lambda", "generator"])
def test_an_output_that_cannot_be_stored_fails_the_task_and_caches_nothing(
        what: str, tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(cache=True)
    def produce(x: int) -> typing.Any:
        calls.append("produce")
        if what == "lambda":
            return lambda: x
        return (i for i in range(x))

    @sterna.task(cache=True)
    def consume(v: typing.Any) -> int:
        calls.append("consume")
        return 1

    @sterna.workflow
    def wf(x: int) -> int:
        return consume(v=produce(x=x))

    with pytest.raises(SternaError) as info:
        sterna.run(wf, x=3)
    message = str(info.value)
    assert "produce" in message
    assert "cannot be stored" in message
    assert ("function" if what == "lambda" else "generator") in message
    assert calls == ["produce"]
    assert _entries() == []
    assert info.value.run.nodes["produce"].status == "failed"
    assert info.value.run.status == "failed"


# -- files and directories ----------------------------------------------------------------------


def test_a_file_output_survives_the_deletion_of_its_original(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(cache=True)
    def write(folder: str, text: str) -> File:
        calls.append(text)
        path = Path(folder) / "report.txt"
        path.write_text(text)
        return File(path)

    @sterna.workflow
    def wf(folder: str, text: str) -> File:
        return write(folder=folder, text=text)

    out = tmp_path / "out"
    out.mkdir()
    first = sterna.run(wf, folder=str(out), text="hello cache")
    assert first.outputs.read_text() == "hello cache"
    (out / "report.txt").unlink()

    hit = sterna.run(wf, folder=str(out), text="hello cache")
    assert _statuses(hit) == {"write": "hit"}
    assert calls == ["hello cache"]
    result = hit.outputs
    assert isinstance(result, File)
    assert result.read_text() == "hello cache"
    assert result.name == "report.txt"
    assert Path(result.path).resolve().is_relative_to(_home())
    assert not (out / "report.txt").exists()


def test_a_directory_output_survives_the_deletion_of_its_original(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(cache=True)
    def build(folder: str, n: int) -> Directory:
        calls.append(n)
        root = Path(folder) / "parts"
        (root / "sub").mkdir(parents=True)
        for i in range(n):
            (root / f"part{i}.txt").write_text(f"part {i}")
        (root / "sub" / "meta.json").write_text(f'{{"n": {n}}}')
        return Directory(root)

    out = tmp_path / "out"
    out.mkdir()
    first = sterna.run(build, folder=str(out), n=3)
    expected = {p.relative_to(first.outputs.path).as_posix(): p.read_text()
                for p in Path(first.outputs.path).rglob("*") if p.is_file()}
    shutil.rmtree(out / "parts")

    hit = sterna.run(build, folder=str(out), n=3)
    assert _statuses(hit) == {"build": "hit"}
    assert calls == [3]
    result = hit.outputs
    assert isinstance(result, Directory)
    assert Path(result.path).resolve().is_relative_to(_home())
    got = {p.relative_to(result.path).as_posix(): p.read_text()
           for p in Path(result.path).rglob("*") if p.is_file()}
    assert got == expected
    assert sorted(got) == ["part0.txt", "part1.txt", "part2.txt", "sub/meta.json"]


# -- records ----------------------------------------------------------------------------------


def test_cache_records_carry_timings_savings_and_sizes() -> None:
    @sterna.task(cache=True)
    def slow(n: int) -> pa.Table:
        time.sleep(0.05)
        return _table(n)

    @sterna.task(cache=True)
    def rows(t: pa.Table) -> int:
        return t.num_rows

    @sterna.workflow
    def wf(n: int) -> int:
        return rows(t=slow(n=n))

    miss = sterna.run(wf, n=50)
    for node_id in ("slow", "rows"):
        info = miss.nodes[node_id].cache
        assert info.status == "miss"
        assert info.hash_s >= 0 and info.load_s >= 0 and info.store_s > 0
        assert info.compute_s > 0
        assert info.bytes_out > 0
        assert set(info.outputs) == {"o0"}
    assert miss.nodes["slow"].cache.compute_s >= 0.05
    assert miss.nodes["rows"].cache.bytes_in > 0
    assert set(miss.nodes["rows"].cache.inputs) == {"t"}

    hit = sterna.run(wf, n=50)
    for node_id in ("slow", "rows"):
        info = hit.nodes[node_id].cache
        before = miss.nodes[node_id].cache
        assert info.status == "hit"
        assert info.key == before.key
        assert info.saved_s == pytest.approx(before.compute_s)
        assert info.outputs == before.outputs
        assert info.inputs == before.inputs
        assert info.compute_s == 0 and info.store_s == 0
    assert hit.nodes["slow"].cache.saved_s > 0


# -- more about keys and runs ---------------------------------------------------------------------


def test_a_table_input_is_keyed_by_its_data_not_its_chunking(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(cache=True)
    def rows(t: pa.Table) -> int:
        calls.append(t.num_rows)
        return t.num_rows

    whole = _table(10)
    chunked = pa.concat_tables([whole.slice(0, 3), whole.slice(3, 4), whole.slice(7)])
    assert chunked.column(0).num_chunks == 3
    sterna.run(rows, t=whole)
    assert _statuses(sterna.run(rows, t=chunked)) == {"rows": "hit"}
    assert _statuses(sterna.run(rows, t=_table(10, offset=1))) == {"rows": "miss"}
    assert calls == [10, 10]


def test_a_file_input_is_keyed_by_its_content_not_its_path(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(cache=True)
    def size(f: File) -> int:
        calls.append(f.path)
        return len(f.read_bytes())

    one, two = tmp_path / "one.bin", tmp_path / "two.bin"
    one.write_bytes(b"same bytes")
    two.write_bytes(b"same bytes")
    assert sterna.run(size, f=File(one)).outputs == 10
    assert _statuses(sterna.run(size, f=File(two))) == {"size": "hit"}
    two.write_bytes(b"other bytes")
    changed = sterna.run(size, f=File(two))
    assert _statuses(changed) == {"size": "miss"}
    assert changed.outputs == 11
    assert len(calls) == 2


def test_a_key_computed_earlier_in_the_same_run_is_not_computed_again(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(cache=True)
    def expensive(x: int) -> int:
        calls.append(x)
        return x * 3

    @sterna.task
    def add(a: int, b: int) -> int:
        return a + b

    @sterna.workflow
    def wf(x: int) -> int:
        return add(a=expensive(x=x), b=expensive(x=x))

    run = sterna.run(wf, x=2)
    assert run.outputs == 12
    assert calls == [2]
    assert sorted(r.cache_status for r in run.nodes.values() if r.cache) == ["hit", "miss"]


def test_a_failed_run_keeps_the_entries_of_the_tasks_that_finished(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")
    broken = tmp_path / "broken"  # a flag every process sees: the task fails while it exists
    broken.touch()

    @sterna.task(cache=True)
    def prepare(x: int) -> int:
        calls.append("prepare")
        return x + 1

    @sterna.task(cache=True)
    def fragile(y: int) -> int:
        calls.append("fragile")
        if broken.exists():
            raise RuntimeError("not yet")
        return y * 2

    @sterna.workflow
    def wf(x: int) -> int:
        return fragile(y=prepare(x=x))

    with pytest.raises(sterna.TaskFailedError, match="not yet"):
        sterna.run(wf, x=1)
    assert [e["task"].rsplit(".", 1)[-1] for e in _entries()] == ["prepare"]
    broken.unlink()
    fixed = sterna.run(wf, x=1)
    assert _statuses(fixed) == {"prepare": "hit", "fragile": "miss"}
    assert fixed.outputs == 4
    assert calls == ["prepare", "fragile", "fragile"]


def test_every_missing_intermediate_blob_is_recomputed_in_turn(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")
    first_run = sterna.run(_chain(calls, "1"), n=6)
    blobs = {node_id: _blob_of(first_run, node_id) for node_id in ("first", "middle")}
    for blob in blobs.values():
        _store().blobs.path(blob).unlink()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        changed = sterna.run(_chain(calls, "2"), n=6)
    messages = [str(w.message) for w in caught if issubclass(w.category, SternaWarning)]
    assert any(blobs["first"] in m for m in messages), messages
    assert any(blobs["middle"] in m for m in messages), messages
    assert sorted(calls[3:]) == ["first", "last", "middle"]
    assert changed.outputs.equals(first_run.outputs)
    assert all(_store().blobs.verify(blob) for blob in blobs.values())


def test_editing_a_file_returned_by_a_hit_does_not_poison_later_hits(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(cache=True)
    def write(folder: str) -> File:
        calls.append(folder)
        path = Path(folder) / "data.txt"
        path.write_text("the right content")
        return File(path)

    out = tmp_path / "out"
    out.mkdir()
    sterna.run(write, folder=str(out))
    hit = sterna.run(write, folder=str(out)).outputs
    assert hit.read_text() == "the right content"
    # A user edits the file the cache handed out (same size: nothing but a hash notices).
    # Handed out read-only would be even better: then the cache cannot be written through it.
    with contextlib.suppress(PermissionError):
        Path(hit.path).write_text("THE WRONG CONTENT")

    for _ in range(3):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SternaWarning)
            result = sterna.run(write, folder=str(out))
        assert result.outputs.read_text() == "the right content"


def test_a_file_added_to_a_directory_returned_by_a_hit_does_not_show_in_later_hits(
        tmp_path: Path) -> None:
    @sterna.task(cache=True)
    def build(folder: str) -> Directory:
        root = Path(folder) / "bundle"
        root.mkdir(exist_ok=True)
        (root / "a.txt").write_text("alpha")
        return Directory(root)

    out = tmp_path / "out"
    out.mkdir()
    sterna.run(build, folder=str(out))
    handed_out = sterna.run(build, folder=str(out)).outputs
    (Path(handed_out.path) / "stray.txt").write_text("not part of the result")

    again = sterna.run(build, folder=str(out))
    assert _statuses(again) == {"build": "hit"}
    names = sorted(p.name for p in Path(again.outputs.path).rglob("*") if p.is_file())
    assert names == ["a.txt"]


def test_a_run_nested_in_a_task_uses_the_store_of_the_driver(tmp_path: Path) -> None:
    """Configuration is read when used: a run started inside a task sees this test's store."""
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(cache=True)
    def inner(x: int) -> int:
        calls.append(x)
        return x * 2

    @sterna.task
    def outer(x: int) -> int:
        return sterna.run(inner, x=x, executor="serial").outputs

    assert sterna.run(outer, x=3).outputs == 6
    assert [e["task"] for e in _entries()] == [inner.name]
    again = sterna.run(inner, x=3)
    assert _statuses(again) == {"inner": "hit"}
    assert again.outputs == 6
    assert calls == [3]


# -- values of every kind come back equal ---------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Point:
    x: int
    label: str
    tags: list[str]


ROUND_TRIPS: list[tuple[str, Any, Any]] = [
    ("dataclass", Point, Point(1, "p", ["a", "b"])),
    ("nested", dict[str, list[int]], {"b": [1, 2], "a": []}),
    ("optional", int | None, None),
    ("datetime", datetime.datetime, datetime.datetime(2024, 5, 6, 7, 8, 9, 10)),
    ("enum", Color, Color.BLUE),
    ("float", float, 0.1 + 0.2),
    ("str", str, "héllo\n"),
    ("bytes", bytes, b"\x00\xffraw"),
    ("tuple", tuple[int, str], (1, "x")),
]


@pytest.mark.parametrize(("label", "annotation", "value"), ROUND_TRIPS,
                         ids=[r[0] for r in ROUND_TRIPS])
def test_a_hit_returns_a_value_equal_to_the_computed_one(label: str, annotation: Any,
                                                         value: Any, tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    def produce(seed: int):  # type: ignore[no-untyped-def]
        calls.append(label)
        return copy.deepcopy(value)

    produce.__annotations__ = {"seed": int, "return": annotation}
    cached = sterna.task(name=f"roundtrip.{label}", cache=True)(produce)

    computed = sterna.run(cached, seed=1).outputs
    hit = sterna.run(cached, seed=1)
    assert _statuses(hit) == {"produce": "hit"}
    assert calls == [label]
    assert hit.outputs == computed == value
    assert type(hit.outputs) is type(value)


# -- consistency when a hit has to be recomputed --------------------------------------------------


def test_a_hit_feeding_a_list_input_of_a_hit_is_not_read(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(cache=True)
    def part(n: int) -> pa.Table:
        calls.append(f"part {n}")
        return _table(n)

    @sterna.task(cache=True)
    def combine(parts: list[pa.Table]) -> int:
        calls.append("combine")
        return sum(p.num_rows for p in parts)

    @sterna.workflow
    def wf(n: int) -> int:
        return combine(parts=[part(n=n), part(n=3)])

    first = sterna.run(wf, n=2)
    for node_id in ("part", "part-2"):
        _store().blobs.path(_blob_of(first, node_id)).unlink()
    with _no_sterna_warnings():
        again = sterna.run(wf, n=2)
    assert _statuses(again) == {"part": "hit", "part-2": "hit", "combine": "hit"}
    assert again.outputs == 5
    assert calls == ["part 2", "part 3", "combine"]


def test_a_recomputed_upstream_value_is_what_the_downstream_key_is_made_of(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(name="drift.source", cache=True, cache_version="1")
    def source(x: int) -> int:
        calls.append("source")
        return x + 10 * calls.count("source")  # not reproducible: differs on every call

    def consumer(version: str) -> sterna.Workflow[..., Any]:
        @sterna.task(name="drift.use", cache=True, cache_version=version)
        def use(y: int) -> int:
            calls.append("use")
            return y * 2

        @sterna.workflow
        def wf(x: int) -> int:
            return use(y=source(x=x))
        return wf

    first = sterna.run(consumer("1"), x=1)
    assert first.outputs == 22
    _store().blobs.path(_blob_of(first, "source")).unlink()

    with pytest.warns(SternaWarning):
        second = sterna.run(consumer("2"), x=1)
    assert second.outputs == 42  # source ran again and gave 21
    source_digest = second.nodes["source"].cache.outputs["o0"]
    assert second.nodes["use"].cache.inputs["y"] == source_digest

    # Whatever entry 'use' wrote must be found again from the value it was computed from.
    third = sterna.run(consumer("2"), x=1)
    assert _statuses(third) == {"source": "hit", "use": "hit"}
    assert third.outputs == 42
    assert calls == ["source", "use", "source", "use"]
