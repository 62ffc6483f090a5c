"""map_task on every executor: mapping, fixed inputs, outputs, failures, retries, concurrency,
per-item caching, errors and records.

As in flytekit's ``map_task``, ``map_task(t)(x=[...])`` runs ``t`` once per item and returns
one list per output; ``functools.partial`` fixes inputs, ``concurrency`` bounds how many items
run at once and ``min_success_ratio`` lets some items fail (their outputs are None).
"""

import functools
import itertools
import os
import time
from pathlib import Path
from typing import NamedTuple, Optional

import pyarrow as pa
import pytest
from click.testing import CliRunner
from executor_support import Calls

import sterna
from sterna import (
    EdgeTypeError,
    InputError,
    MapTask,
    TaskDefinitionError,
    TaskFailedError,
    TypeCheckError,
    map_task,
)
from sterna.cli.main import cli

pytestmark = pytest.mark.usefixtures("executor")

# Tests marked with this never reach an executor (a direct call is a plain loop in this
# process; definition errors happen before any run), so one executor is enough for them.
no_executor = pytest.mark.executors("serial")


# -- module-level tasks and workflows ---------------------------------------------------------


@sterna.task
def double(x: int) -> int:
    return 2 * x


@sterna.task
def add(a: int, b: int = 10) -> int:
    return a + b


@sterna.task
def total(xs: list[int]) -> int:
    return sum(xs)


@sterna.task
def count_to(n: int) -> list[int]:
    return list(range(1, n + 1))


@sterna.task
def times_ten(n: int) -> int:
    return 10 * n


@sterna.task
def divide(a: int, b: int) -> tuple[int, int]:
    return a // b, a % b


class Halves(NamedTuple):
    even: bool
    half: int


@sterna.task
def halves(x: int) -> Halves:
    return Halves(x % 2 == 0, x // 2)


@sterna.task
def fail_odd(x: int) -> int:
    if x % 2:
        raise ValueError(f"odd item {x}")
    return x


@sterna.task
def count_present(xs: list[Optional[int]]) -> int:  # noqa: UP045
    return sum(x is not None for x in xs)


@sterna.task
def member(x: int, pool: list[int]) -> bool:
    return x in pool


@sterna.task
def num_rows(t: pa.Table) -> int:
    return t.num_rows


@sterna.task
def value_at(t: pa.Table, i: int) -> int:
    return int(t.column("v")[i].as_py())


@sterna.task
def scaled(t: pa.Table, k: int) -> pa.Table:
    return pa.table({"v": [k * v for v in t.column("v").to_pylist()]})


@sterna.workflow
def doubled_total(xs: list[int]) -> int:
    return total(xs=map_task(double)(x=xs))


@sterna.workflow
def doubled(xs: list[int]) -> list[int]:
    return map_task(double)(x=xs)


def table(*values: int) -> pa.Table:
    return pa.table({"v": list(values)})


def items_of(run: sterna.Run, node: str) -> list[str]:
    """The ids of a map node's item records, in the order the run lists them."""
    return [node_id for node_id in run.nodes if node_id.startswith(f"{node}[")]


# -- basic mapping ----------------------------------------------------------------------------


def test_run_of_a_map_task_maps_each_item_in_order() -> None:
    mapped = map_task(double)
    assert isinstance(mapped, MapTask)
    run = sterna.run(mapped, x=[3, 1, 2, 7])
    assert run.status == "succeeded"
    assert run.outputs == [6, 2, 4, 14]
    assert run.outputs_by_name == {"o0": [6, 2, 4, 14]}


def test_map_in_a_workflow_feeds_a_downstream_task() -> None:
    run = sterna.run(doubled_total, xs=[1, 2, 3, 4])
    assert run.outputs == 20
    assert doubled_total(xs=[5, 6]) == 22
    assert sterna.run(doubled, xs=[9, 8, 7]).outputs == [18, 16, 14]


@no_executor
def test_direct_call_is_a_plain_loop() -> None:
    assert map_task(double)(x=[4, 5, 6]) == [8, 10, 12]
    assert map_task(double)(x=[]) == []


def test_empty_list_gives_empty_outputs() -> None:
    run = sterna.run(map_task(double), x=[])
    assert run.outputs == []
    assert list(run.nodes) == ["map_double"]
    assert run.nodes["map_double"].status == "succeeded"
    assert sterna.run(doubled_total, xs=[]).outputs == 0


# -- inputs: partial, several lists, scalars, defaults, promises -----------------------------


def test_partial_fixes_an_input_for_every_item() -> None:
    @sterna.workflow
    def shifted(xs: list[int]) -> list[int]:
        return map_task(functools.partial(add, b=100))(a=xs)

    assert sterna.run(shifted, xs=[1, 2, 3]).outputs == [101, 102, 103]
    assert map_task(functools.partial(add, b=100))(a=[1, 2]) == [101, 102]


def test_run_of_a_partial_map_task_uses_the_fixed_value() -> None:
    mapped = map_task(functools.partial(add, b=100))
    assert sterna.run(mapped, a=[1, 2, 3]).outputs == [101, 102, 103]


def test_two_mapped_lists_are_zipped() -> None:
    @sterna.workflow
    def sums(xs: list[int], ys: list[int]) -> list[int]:
        return map_task(add)(a=xs, b=ys)

    assert sterna.run(sums, xs=[1, 2, 3], ys=[10, 20, 30]).outputs == [11, 22, 33]
    assert sterna.run(map_task(add), a=[1, 2], b=[5, 7]).outputs == [6, 9]
    assert map_task(add)(a=[1, 2], b=[3, 4]) == [4, 6]


def test_a_single_value_is_passed_to_every_item() -> None:
    @sterna.workflow
    def plus(xs: list[int], k: int) -> list[int]:
        return map_task(add)(a=xs, b=k)

    @sterna.workflow
    def plus_constant(xs: list[int]) -> list[int]:
        return map_task(add)(a=xs, b=1000)

    assert sterna.run(plus, xs=[1, 2, 3], k=5).outputs == [6, 7, 8]
    assert sterna.run(plus_constant, xs=[1, 2]).outputs == [1001, 1002]
    assert map_task(add)(a=[1, 2], b=5) == [6, 7]


def test_run_of_a_map_task_passes_a_single_value_to_every_item() -> None:
    assert sterna.run(map_task(add), a=[1, 2, 3], b=5).outputs == [6, 7, 8]


def test_an_input_not_given_takes_its_default() -> None:
    @sterna.workflow
    def defaulted(xs: list[int]) -> list[int]:
        return map_task(add)(a=xs)

    assert sterna.run(defaulted, xs=[1, 2]).outputs == [11, 12]
    assert map_task(add)(a=[5]) == [15]


def test_run_of_a_map_task_fills_defaults() -> None:
    assert sterna.run(map_task(add), a=[1, 2]).outputs == [11, 12]


def test_upstream_outputs_as_mapped_list_and_as_fixed_value() -> None:
    @sterna.workflow
    def chained(n: int) -> list[int]:
        return map_task(add)(a=count_to(n=n), b=times_ten(n=n))

    run = sterna.run(chained, n=3)
    assert run.outputs == [31, 32, 33]
    assert list(run.nodes) == ["count_to", "times_ten", "map_add", "map_add[0]", "map_add[1]",
                               "map_add[2]"]


def test_a_list_typed_input_given_one_list_is_fixed() -> None:
    """A list of ints for a ``list[int]`` input is that input's value, not items to map."""
    @sterna.workflow
    def membership(xs: list[int], pool: list[int]) -> list[bool]:
        return map_task(member)(x=xs, pool=pool)

    assert sterna.run(membership, xs=[1, 5, 3], pool=[1, 2, 3]).outputs == [True, False, True]
    assert map_task(member)(x=[2, 9], pool=[2]) == [True, False]
    assert map_task(member)(x=[2, 9], pool=[[2], [9]]) == [True, True]


def test_a_list_of_promises_is_mapped() -> None:
    @sterna.workflow
    def totals(n: int) -> list[int]:
        return map_task(total)(xs=[count_to(n=n), count_to(n=n)])

    assert sterna.run(totals, n=3).outputs == [6, 6]


# -- outputs ----------------------------------------------------------------------------------


def test_tuple_outputs_become_one_list_per_output() -> None:
    run = sterna.run(map_task(divide), a=[7, 9, 10], b=[2, 4, 5])
    assert run.outputs == ([3, 2, 2], [1, 1, 0])
    assert run.outputs_by_name == {"o0": [3, 2, 2], "o1": [1, 1, 0]}

    @sterna.workflow
    def quotient_sum(xs: list[int]) -> int:
        q, _ = map_task(divide)(a=xs, b=3)
        return total(xs=q)

    assert sterna.run(quotient_sum, xs=[3, 7, 9]).outputs == 1 + 2 + 3


def test_namedtuple_outputs_become_a_namedtuple_of_lists() -> None:
    run = sterna.run(map_task(halves), x=[1, 2, 5])
    assert isinstance(run.outputs, Halves)
    assert run.outputs == Halves([False, True, False], [0, 1, 2])
    assert map_task(halves)(x=[4]) == Halves([True], [2])

    @sterna.workflow
    def half_sum(xs: list[int]) -> int:
        return total(xs=map_task(halves)(x=xs).half)

    assert sterna.run(half_sum, xs=[2, 4, 7]).outputs == 1 + 2 + 3


# -- tables -----------------------------------------------------------------------------------


def test_tables_as_items() -> None:
    run = sterna.run(map_task(num_rows), t=[table(1), table(1, 2, 3), table()])
    assert run.outputs == [1, 3, 0]

    mapped = sterna.run(map_task(scaled), t=[table(1, 2), table(3)], k=[10, 100])
    assert [t.column("v").to_pylist() for t in mapped.outputs] == [[10, 20], [300]]
    assert all(isinstance(t, pa.Table) for t in mapped.outputs)


def test_a_table_as_the_fixed_input() -> None:
    @sterna.workflow
    def lookups(t: pa.Table, idx: list[int]) -> list[int]:
        return map_task(value_at)(t=t, i=idx)

    @sterna.workflow
    def scale_each(t: pa.Table, ks: list[int]) -> list[pa.Table]:
        return map_task(scaled)(t=t, k=ks)

    assert sterna.run(lookups, t=table(5, 6, 7), idx=[2, 0, 1]).outputs == [7, 5, 6]
    out = sterna.run(scale_each, t=table(5, 6, 7), ks=[1, 2]).outputs
    assert [t.column("v").to_pylist() for t in out] == [[5, 6, 7], [10, 12, 14]]
    assert map_task(functools.partial(value_at, t=table(5, 6, 7)))(i=[1, 2]) == [6, 7]


def test_the_same_table_fixed_in_two_runs() -> None:
    """A table object handed to items of one run can be handed to the items of the next."""
    @sterna.workflow
    def lookups(t: pa.Table, idx: list[int]) -> list[int]:
        return map_task(value_at)(t=t, i=idx)

    source = table(5, 6, 7)
    assert sterna.run(lookups, t=source, idx=[2, 0]).outputs == [7, 5]
    assert sterna.run(lookups, t=source, idx=[1, 2]).outputs == [6, 7]


# -- min_success_ratio ------------------------------------------------------------------------


def test_some_items_may_fail_above_the_ratio() -> None:
    mapped = map_task(fail_odd, min_success_ratio=0.5)
    run = sterna.run(mapped, x=[0, 1, 2, 3])
    assert run.status == "succeeded"
    assert run.outputs == [0, None, 2, None]
    assert run.nodes["map_fail_odd"].status == "succeeded"
    statuses = [run.nodes[i].status for i in items_of(run, "map_fail_odd")]
    assert statuses == ["succeeded", "failed", "succeeded", "failed"]
    assert "ValueError: odd item 1" in (run.nodes["map_fail_odd[1]"].error or "")
    assert "ValueError: odd item 3" in (run.nodes["map_fail_odd[3]"].error or "")
    assert run.nodes["map_fail_odd[0]"].error is None


def test_optional_outputs_feed_a_downstream_task() -> None:
    @sterna.workflow
    def survivors(xs: list[int]) -> int:
        return count_present(xs=map_task(fail_odd, min_success_ratio=0.25)(x=xs))

    assert sterna.run(survivors, xs=[1, 2, 3, 4, 6]).outputs == 3
    assert map_task(fail_odd, min_success_ratio=0.5)(x=[1, 2]) == [None, 2]


@no_executor
def test_optional_outputs_cannot_feed_a_list_of_plain_values() -> None:
    with pytest.raises(EdgeTypeError, match="total"):
        @sterna.workflow
        def strict(xs: list[int]) -> int:
            return total(xs=map_task(fail_odd, min_success_ratio=0.5)(x=xs))


def test_too_few_successes_fail_the_map() -> None:
    mapped = map_task(fail_odd, min_success_ratio=0.5)
    with pytest.raises(TaskFailedError) as caught:
        sterna.run(mapped, x=[1, 2, 3, 5])
    error = caught.value
    message = str(error)
    assert f"map task {mapped.name!r}" in message
    assert "3 of 4 items failed, 2 must succeed" in message
    assert "ValueError: odd item" in message
    assert error.task == mapped.name
    assert error.run.status == "failed"
    assert error.run.nodes["map_fail_odd"].status == "failed"
    assert "3 of 4 items failed" in (error.run.nodes["map_fail_odd"].error or "")


def test_too_few_successes_fail_a_direct_call() -> None:
    mapped = map_task(fail_odd, min_success_ratio=0.5)
    with pytest.raises(TaskFailedError) as caught:
        mapped(x=[1, 2, 3, 5])
    message = str(caught.value)
    assert f"map task {mapped.name!r}" in message
    assert "1 of 4 items succeeded, 2 needed" in message
    assert "odd item 1" in message
    assert caught.value.task == mapped.name


def test_one_failure_fails_the_run_at_ratio_one() -> None:
    with pytest.raises(TaskFailedError) as caught:
        sterna.run(map_task(fail_odd), x=[0, 2, 3, 4])
    error = caught.value
    assert f"task {fail_odd.name!r}" in str(error)
    assert "ValueError: odd item 3" in str(error)
    assert error.task == fail_odd.name
    assert error.node == "map_fail_odd[2]"
    assert isinstance(error.__cause__, ValueError)
    run = error.run
    assert run.status == "failed"
    assert run.nodes["map_fail_odd"].status == "failed"
    assert run.nodes["map_fail_odd[2]"].status == "failed"
    assert "ValueError: odd item 3" in (run.nodes["map_fail_odd[2]"].error or "")


def test_one_failure_fails_a_workflow_at_ratio_one() -> None:
    @sterna.workflow
    def strict(xs: list[int]) -> int:
        return total(xs=map_task(fail_odd)(x=xs))

    with pytest.raises(TaskFailedError, match="odd item 5") as caught:
        sterna.run(strict, xs=[2, 5])
    assert caught.value.task == fail_odd.name
    assert caught.value.run.nodes["total"].status == "skipped"


@no_executor
def test_direct_call_at_ratio_one_raises_the_task_exception() -> None:
    with pytest.raises(ValueError, match="odd item 7"):
        map_task(fail_odd)(x=[2, 7])


# -- retries ----------------------------------------------------------------------------------


def test_each_item_is_retried_on_its_own(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls")
    folder = str(tmp_path)

    @sterna.task(retries=1)
    def first_try_fails(x: int) -> int:
        calls.append(x)
        marker = Path(folder, f"tried-{x}")
        if x == 2 and not marker.exists():
            marker.touch()
            raise RuntimeError(f"first attempt of {x}")
        return x * 3

    run = sterna.run(map_task(first_try_fails), x=[1, 2, 3])
    assert run.outputs == [3, 6, 9]
    attempts = [len(run.nodes[i].attempts) for i in items_of(run, "map_first_try_fails")]
    assert attempts == [1, 2, 1]
    retried = run.nodes["map_first_try_fails[1]"].attempts
    assert "RuntimeError: first attempt of 2" in (retried[0].error or "")
    assert retried[1].error is None
    assert sorted(calls.items()) == [1, 2, 2, 3]


def test_an_item_failing_every_attempt_reports_them() -> None:
    @sterna.task(retries=2)
    def always_fails(x: int) -> int:
        raise RuntimeError(f"never {x}")

    with pytest.raises(TaskFailedError, match="never 4") as caught:
        sterna.run(map_task(always_fails), x=[4])
    assert caught.value.attempts == 3
    assert len(caught.value.run.nodes["map_always_fails[0]"].attempts) == 3


# -- concurrency ------------------------------------------------------------------------------


def most_at_once(intervals: list[list[float]]) -> int:
    """The largest number of [start, end] intervals open at one moment (ends before starts)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                    key=lambda e: (e[0], e[1]))
    open_now = peak = 0
    for _, step in events:
        open_now += step
        peak = max(peak, open_now)
    return peak


def napping_task(calls: Calls) -> sterna.Task:
    @sterna.task
    def nap(x: int) -> int:
        start = time.time()
        time.sleep(0.05)
        calls.append([start, time.time()])
        return x

    return nap


def test_concurrency_one_runs_items_one_at_a_time(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls")
    run = sterna.run(map_task(napping_task(calls), concurrency=1), x=[1, 2, 3, 4])
    assert run.outputs == [1, 2, 3, 4]
    intervals = sorted(calls.items())
    assert len(intervals) == 4
    for (_, end), (start, _) in itertools.pairwise(intervals):
        assert end <= start
    assert most_at_once(intervals) == 1


def test_concurrency_two_never_runs_more_than_two(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls")
    run = sterna.run(map_task(napping_task(calls), concurrency=2), x=list(range(6)))
    assert run.outputs == list(range(6))
    intervals = calls.items()
    assert len(intervals) == 6
    assert most_at_once(intervals) <= 2


# -- caching ----------------------------------------------------------------------------------


def test_each_item_is_cached_on_its_own_key(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls")

    @sterna.task(cache=True)
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    first = sterna.run(map_task(square), x=[1, 2, 3])
    assert first.outputs == [1, 4, 9]
    assert [first.nodes[i].cache_status for i in items_of(first, "map_square")] == [
        "miss", "miss", "miss"]

    second = sterna.run(map_task(square), x=[1, 2, 4])
    assert second.outputs == [1, 4, 16]
    assert [second.nodes[i].cache_status for i in items_of(second, "map_square")] == [
        "hit", "hit", "miss"]
    assert sorted(calls.items()) == [1, 2, 3, 4]

    plain = sterna.run(square, x=4)  # the same call outside a map: the item's entry
    assert plain.outputs == 16
    assert plain.nodes["square"].cache_status == "hit"
    assert len(calls) == 4

    sterna.run(square, x=5)  # and an item finds a plain call's entry
    third = sterna.run(map_task(square), x=[5, 3])
    assert third.outputs == [25, 9]
    assert [third.nodes[i].cache_status for i in items_of(third, "map_square")] == [
        "hit", "hit"]
    assert sorted(calls.items()) == [1, 2, 3, 4, 5]


def test_items_with_a_fixed_input_are_cached_per_item(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls")

    @sterna.task(cache=True)
    def shift(a: int, b: int) -> int:
        calls.append([a, b])
        return a + b

    @sterna.workflow
    def shifted(xs: list[int], k: int) -> list[int]:
        return map_task(shift)(a=xs, b=k)

    assert sterna.run(shifted, xs=[1, 2], k=10).outputs == [11, 12]
    again = sterna.run(shifted, xs=[1, 2, 3], k=10)
    assert again.outputs == [11, 12, 13]
    assert [again.nodes[i].cache_status for i in items_of(again, "map_shift")] == [
        "hit", "hit", "miss"]
    other = sterna.run(shifted, xs=[1], k=20)  # a changed fixed value changes every key
    assert other.nodes["map_shift[0]"].cache_status == "miss"
    assert sorted(calls.items()) == [[1, 10], [1, 20], [2, 10], [3, 10]]


# -- errors -----------------------------------------------------------------------------------


def test_lists_of_different_lengths_are_an_input_error() -> None:
    mapped = map_task(add)
    with pytest.raises(InputError) as caught:
        sterna.run(mapped, a=[1, 2], b=[1, 2, 3])
    message = str(caught.value)
    assert f"map task {mapped.name!r}" in message
    assert "a has 2" in message and "b has 3" in message
    assert caught.value.run.status == "failed"

    with pytest.raises(InputError, match=r"a has 3, b has 1"):
        mapped(a=[1, 2, 3], b=[4])


def test_lists_of_different_lengths_in_a_workflow() -> None:
    @sterna.workflow
    def sums(xs: list[int], ys: list[int]) -> list[int]:
        return map_task(add)(a=xs, b=ys)

    with pytest.raises(InputError, match=r"map_add' \(node 'map_add'\).*a has 1, b has 2"):
        sterna.run(sums, xs=[1], ys=[1, 2])


@no_executor
def test_positional_arguments_are_an_input_error() -> None:
    mapped = map_task(double)
    with pytest.raises(InputError, match=f"map task {mapped.name!r}.*keyword"):
        mapped([1, 2])
    with pytest.raises(InputError, match="keyword"):
        @sterna.workflow
        def positional(xs: list[int]) -> list[int]:
            return map_task(double)(xs)


@no_executor
@pytest.mark.parametrize("target", [
    pytest.param(double.fn, id="plain-function"),
    pytest.param(lambda x: x, id="lambda"),
    pytest.param(map_task(double), id="map-task"),
    pytest.param(doubled, id="workflow"),
    pytest.param(functools.partial(double.fn, x=1), id="partial-of-function"),
])
def test_map_task_of_a_non_task_is_a_definition_error(target: object) -> None:
    with pytest.raises(TaskDefinitionError, match="map_task needs a @task"):
        map_task(target)  # type: ignore[arg-type]


@no_executor
def test_partials_must_fix_known_inputs_by_keyword() -> None:
    with pytest.raises(TaskDefinitionError, match="by keyword"):
        map_task(functools.partial(add, 1))
    with pytest.raises(TaskDefinitionError, match=r"no input 'c'"):
        map_task(functools.partial(add, c=1))


@no_executor
@pytest.mark.parametrize("concurrency", [0, -1, 1.5, True, "2"])
def test_bad_concurrency_is_a_definition_error(concurrency: object) -> None:
    with pytest.raises(TaskDefinitionError) as caught:
        map_task(double, concurrency=concurrency)  # type: ignore[arg-type]
    message = str(caught.value)
    assert double.name in message
    assert "concurrency" in message
    assert repr(concurrency) in message


@no_executor
@pytest.mark.parametrize("ratio", [-0.1, 1.5, "0.5", None])
def test_bad_min_success_ratio_is_a_definition_error(ratio: object) -> None:
    with pytest.raises(TaskDefinitionError) as caught:
        map_task(double, min_success_ratio=ratio)  # type: ignore[arg-type]
    message = str(caught.value)
    assert double.name in message
    assert "min_success_ratio" in message
    assert repr(ratio) in message


def test_an_item_of_the_wrong_type_is_a_type_error() -> None:
    mapped = map_task(double)
    with pytest.raises(TypeCheckError) as caught:
        sterna.run(mapped, x=[1, "two", 3])
    error = caught.value
    assert mapped.name in str(error)
    assert "'x'" in str(error)
    assert "'two'" in str(error)
    assert error.argument == "x"
    assert error.task == mapped.name
    assert error.expected == "list[int]"


@no_executor
def test_an_item_of_the_wrong_type_in_a_direct_call() -> None:
    mapped = map_task(add)
    with pytest.raises(TypeCheckError) as caught:
        mapped(a=[1, "two"], b=5)
    error = caught.value
    assert mapped.name in str(error)
    assert "'a'" in str(error)
    assert error.argument == "a"
    assert error.task == mapped.name


@no_executor
def test_an_item_of_the_wrong_type_in_a_workflow_body() -> None:
    with pytest.raises(EdgeTypeError, match="'x'"):
        @sterna.workflow
        def wrong(k: int) -> list[int]:
            return map_task(double)(x=[1, "two"])


# -- records ----------------------------------------------------------------------------------


def test_records_hold_the_map_node_and_each_item_in_order() -> None:
    mapped = map_task(double)
    run = sterna.run(doubled_total, xs=[5, 6, 7])
    assert list(run.nodes) == ["map_double", "map_double[0]", "map_double[1]", "map_double[2]",
                               "total"]
    assert run.nodes["map_double"].task == mapped.name
    assert all(run.nodes[f"map_double[{i}]"].task == double.name for i in range(3))
    assert all(record.status == "succeeded" for record in run.nodes.values())
    assert all(len(run.nodes[f"map_double[{i}]"].attempts) == 1 for i in range(3))
    assert run.nodes["map_double"].attempts == []


def test_runs_show_lists_the_items() -> None:
    run = sterna.run(map_task(fail_odd, min_success_ratio=0.5), x=[2, 3, 4])
    result = CliRunner().invoke(cli, ["--home", os.environ["STERNA_HOME"], "runs", "show",
                                      run.run_id], prog_name="sterna")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"run {run.run_id} of ")
    rows = {line.split()[0]: line.split() for line in lines
            if line.startswith("map_fail_odd")}
    assert list(rows) == ["map_fail_odd", "map_fail_odd[0]", "map_fail_odd[1]",
                          "map_fail_odd[2]"]
    assert rows["map_fail_odd"][1:3] == [map_task(fail_odd).name, "succeeded"]
    assert [rows[f"map_fail_odd[{i}]"][1:3] for i in range(3)] == [
        [fail_odd.name, "succeeded"], [fail_odd.name, "failed"], [fail_odd.name, "succeeded"]]
    assert "ValueError: odd item 3" in " ".join(rows["map_fail_odd[1]"])
