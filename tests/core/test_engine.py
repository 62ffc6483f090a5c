"""The engine on runs that succeed, on every executor: Run records, inputs, executors,
data hand-off."""

import os
import time
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
import pytest
from executor_support import Calls

import sterna
from sterna import (
    Attempt,
    ConfigError,
    InputError,
    NodeRecord,
    Run,
    SternaError,
    TypeCheckError,
)

pytestmark = pytest.mark.usefixtures("executor")

# -- module-level tasks and workflows ---------------------------------------------------------


@sterna.task
def double(x: int) -> int:
    return 2 * x


@sterna.task
def add(a: int, b: int = 10) -> int:
    return a + b


@sterna.task
def divmod_task(a: int, b: int) -> tuple[int, int]:
    return a // b, a % b


class Stats(NamedTuple):
    total: int
    label: str


@sterna.task
def stats(xs: list[int]) -> Stats:
    return Stats(sum(xs), f"{len(xs)} items")


@sterna.task
def to_float(x: int) -> float:
    return x / 2


@sterna.workflow
def single_wf(x: int = 3) -> int:
    return double(x=double(x=x))


@sterna.workflow
def tuple_wf(a: int, b: int) -> tuple[int, int]:
    q, r = divmod_task(a=a, b=b)
    return double(x=q), r


@sterna.workflow
def namedtuple_wf(xs: list[int]) -> Stats:
    result = stats(xs=xs)
    return result.total, result.label


@sterna.workflow
def float_wf(x: int, y: float) -> float:
    return to_float(x=x)


# -- outputs ----------------------------------------------------------------------------------


def test_single_output_run_record(executor: str) -> None:
    run = sterna.run(single_wf, x=5)
    assert isinstance(run, Run)
    assert run.outputs == 20
    assert run.outputs_by_name == {"o0": 20}
    assert run.status == "succeeded"
    assert run.executor == executor
    assert run.name == single_wf.name
    assert run.inputs == {"x": 5}
    assert run.end >= run.start
    assert run.duration == pytest.approx(run.end - run.start)


def test_run_outputs_match_calling_the_workflow() -> None:
    assert sterna.run(single_wf, x=7).outputs == single_wf(x=7) == 28
    assert sterna.run(tuple_wf, a=17, b=5).outputs == tuple_wf(a=17, b=5) == (6, 2)


def test_default_workflow_input_is_filled_and_recorded() -> None:
    run = sterna.run(single_wf)
    assert run.outputs == 12
    assert run.inputs == {"x": 3}


def test_tuple_outputs() -> None:
    run = sterna.run(tuple_wf, a=17, b=5)
    assert run.outputs == (6, 2)
    assert type(run.outputs) is tuple
    assert run.outputs_by_name == {"o0": 6, "o1": 2}


def test_namedtuple_outputs() -> None:
    run = sterna.run(namedtuple_wf, xs=[1, 2, 3])
    assert isinstance(run.outputs, Stats)
    assert run.outputs == Stats(6, "3 items")
    assert run.outputs.total == 6
    assert run.outputs.label == "3 items"
    assert run.outputs_by_name == {"total": 6, "label": "3 items"}


def test_no_outputs_gives_none(tmp_path: Path) -> None:
    seen = Calls(tmp_path / "seen.jsonl")

    @sterna.task
    def sink(x: int) -> None:
        seen.append(x)

    @sterna.workflow
    def sink_wf(x: int) -> None:
        sink(x=x)

    run = sterna.run(sink_wf, x=4)
    assert run.outputs is None
    assert run.outputs_by_name == {}
    assert run.status == "succeeded"
    assert seen == [4]


def test_workflow_output_bound_to_input_and_constant() -> None:
    @sterna.workflow
    def passthrough(x: int) -> tuple[int, int, int]:
        return x, 5, double(x=x)

    run = sterna.run(passthrough, x=2)
    assert run.outputs == (2, 5, 4)


def test_workflow_input_is_coerced_and_recorded() -> None:
    run = sterna.run(float_wf, x=3, y=2)
    assert run.outputs == 1.5
    assert run.inputs == {"x": 3, "y": 2.0}
    assert type(run.inputs["y"]) is float


# -- node records -----------------------------------------------------------------------------


def test_node_records() -> None:
    run = sterna.run(single_wf, x=1)
    assert set(run.nodes) == {"double", "double-2"}
    for node_id, record in run.nodes.items():
        assert isinstance(record, NodeRecord)
        assert record.node_id == node_id
        assert record.task == double.name
        assert record.status == "succeeded"
        assert record.error is None
        assert len(record.attempts) == 1
        attempt = record.attempts[0]
        assert isinstance(attempt, Attempt)
        assert attempt.number == 1
        assert attempt.error is None
        assert attempt.start <= attempt.end
        assert attempt.duration == pytest.approx(attempt.end - attempt.start)
        assert record.start <= record.end
        assert record.duration == pytest.approx(record.end - record.start)
        assert run.start <= record.start <= record.end <= run.end
    assert run.nodes["double"].end <= run.nodes["double-2"].start


def test_records_name_each_task() -> None:
    run = sterna.run(tuple_wf, a=9, b=4)
    assert {node_id: r.task for node_id, r in run.nodes.items()} == {
        "divmod_task": divmod_task.name, "double": double.name}
    assert all(r.status == "succeeded" for r in run.nodes.values())


def test_run_ids_are_unique() -> None:
    ids = {sterna.run(single_wf, x=i).run_id for i in range(20)}
    assert len(ids) == 20
    assert all(isinstance(run_id, str) and run_id for run_id in ids)


def test_workflow_run_method_returns_run() -> None:
    run = single_wf.run(x=2)
    assert isinstance(run, Run)
    assert run.outputs == 8
    assert run.status == "succeeded"


# -- bare tasks -------------------------------------------------------------------------------


def test_run_bare_task() -> None:
    run = sterna.run(add, a=1, b=2)
    assert run.outputs == 3
    assert run.outputs_by_name == {"o0": 3}
    assert run.status == "succeeded"
    assert run.name == add.name
    assert run.inputs == {"a": 1, "b": 2}
    assert list(run.nodes) == ["add"]
    record = run.nodes["add"]
    assert record.task == add.name
    assert record.status == "succeeded"
    assert [a.number for a in record.attempts] == [1]


def test_run_bare_task_fills_defaults() -> None:
    run = sterna.run(add, a=1)
    assert run.outputs == 11
    assert run.inputs == {"a": 1, "b": 10}


def test_run_bare_task_with_tuple_and_namedtuple_outputs() -> None:
    assert sterna.run(divmod_task, a=7, b=2).outputs == (3, 1)
    out = sterna.run(stats, xs=[4, 5]).outputs
    assert isinstance(out, Stats)
    assert out == Stats(9, "2 items")


def test_run_bare_task_missing_input() -> None:
    with pytest.raises(InputError) as info:
        sterna.run(add, b=2)
    assert add.name in str(info.value)
    assert "'a'" in str(info.value)


def test_run_rejects_non_task() -> None:
    with pytest.raises(SternaError, match="needs a @workflow or @task"):
        sterna.run(len, x=1)  # type: ignore[arg-type]


# -- inputs -----------------------------------------------------------------------------------


def test_inputs_dict_form() -> None:
    assert sterna.run(single_wf, inputs={"x": 4}).outputs == 16
    run = sterna.run(tuple_wf, inputs={"a": 10}, b=3)
    assert run.outputs == (6, 1)
    assert run.inputs == {"a": 10, "b": 3}


def test_inputs_dict_allows_input_named_executor(executor: str) -> None:
    @sterna.task
    def shout(executor: str) -> str:
        return executor.upper()

    @sterna.workflow
    def clash(executor: str) -> str:
        return shout(executor=executor)

    run = sterna.run(clash, inputs={"executor": "abc"})
    assert run.outputs == "ABC"
    assert run.inputs == {"executor": "abc"}
    assert run.executor == executor


def test_missing_workflow_input(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task
    def count(x: int) -> int:
        calls.append(x)
        return x

    @sterna.workflow
    def needs_x(x: int, y: int = 1) -> int:
        return count(x=x)

    with pytest.raises(InputError) as info:
        sterna.run(needs_x, y=2)
    message = str(info.value)
    assert needs_x.name in message
    assert "'x'" in message
    assert "missing" in message
    assert calls == []


def test_unknown_workflow_input() -> None:
    with pytest.raises(InputError) as info:
        sterna.run(single_wf, x=1, z=2)
    message = str(info.value)
    assert single_wf.name in message
    assert "'z'" in message


def test_wrong_typed_workflow_input_fails_before_any_task(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task
    def first(x: int) -> int:
        calls.append(x)
        return x

    @sterna.workflow
    def typed_wf(x: int) -> int:
        return first(x=first(x=x))

    with pytest.raises(TypeCheckError) as info:
        sterna.run(typed_wf, x="seven")
    error = info.value
    message = str(error)
    assert typed_wf.name in message
    assert "'x'" in message
    assert "int" in message
    assert "str" in message
    assert error.argument == "x"
    assert error.expected == "int"
    assert error.got == "str"
    assert error.run is None  # refused before a run started
    assert calls == []


def test_wrong_typed_list_input_names_the_item() -> None:
    with pytest.raises(TypeCheckError) as info:
        sterna.run(namedtuple_wf, xs=[1, "two", 3])
    message = str(info.value)
    assert namedtuple_wf.name in message
    assert "'xs'" in message
    assert "list[int]" in message


# -- executor selection -----------------------------------------------------------------------


def test_explicit_serial_executor() -> None:
    run = sterna.run(single_wf, x=1, executor="serial")
    assert run.executor == "serial"
    assert run.outputs == 4


def test_unknown_executor_name() -> None:
    with pytest.raises(ConfigError) as info:
        sterna.run(single_wf, x=1, executor="threads")
    assert "'threads'" in str(info.value)
    assert "serial" in str(info.value)


def test_executor_from_environment(monkeypatch: pytest.MonkeyPatch, executor: str) -> None:
    monkeypatch.setenv("STERNA_EXECUTOR", executor)
    run = sterna.run(single_wf, x=2)
    assert run.executor == executor
    assert run.outputs == 8


def test_invalid_executor_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STERNA_EXECUTOR", "bogus")
    with pytest.raises(ConfigError) as info:
        sterna.run(single_wf, x=2)
    assert "STERNA_EXECUTOR" in str(info.value)
    assert "'bogus'" in str(info.value)
    with pytest.raises(ConfigError):
        single_wf(x=2)


def test_process_executor_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STERNA_EXECUTOR", "process")
    run = sterna.run(single_wf, x=2)
    assert (run.executor, run.outputs) == ("process", 8)
    # an explicit executor argument wins over the environment
    run = sterna.run(single_wf, x=2, executor="serial")
    assert (run.executor, run.outputs) == ("serial", 8)


def test_configure_executor(monkeypatch: pytest.MonkeyPatch, executor: str) -> None:
    monkeypatch.setenv("STERNA_EXECUTOR", "bogus")
    config = sterna.configure(executor=executor)
    assert config.executor == executor
    run = sterna.run(single_wf, x=1)
    assert run.executor == executor
    assert run.outputs == 4


def test_configure_rejects_unknown_executor(executor: str) -> None:
    with pytest.raises(ConfigError) as info:
        sterna.configure(executor="bogus")
    assert "'bogus'" in str(info.value)
    with pytest.raises(ConfigError):
        sterna.configure(executor="")
    # the rejected value was not kept
    assert sterna.run(single_wf, x=1).executor == executor


def test_configured_executor_is_used_by_runs_and_calls() -> None:
    sterna.configure(executor="process")
    assert sterna.run(single_wf, x=1).executor == "process"
    assert single_wf(x=1) == 4


# -- Arrow tables are handed over, not copied --------------------------------------------------


def _first_buffer_address(table: pa.Table) -> int:
    return table.column(0).chunk(0).buffers()[1].address


def _rich_table(n: int) -> pa.Table:
    """A table whose schema carries metadata, nulls, nested and timezone-aware types."""
    schema = pa.schema(
        [pa.field("a", pa.int64(), nullable=False, metadata={"unit": "count"}),
         pa.field("b", pa.float32()),
         pa.field("s", pa.string()),
         pa.field("ts", pa.timestamp("ms", tz="UTC")),
         pa.field("tags", pa.list_(pa.string()))],
        metadata={"origin": "contract-test"})
    whole = pa.table({"a": list(range(n)),
                      "b": [i / 4 for i in range(n)],
                      "s": [None if i % 3 == 0 else f"s{i}" for i in range(n)],
                      "ts": [i * 1000 for i in range(n)],
                      "tags": [[f"t{i}"] * (i % 3) for i in range(n)]}, schema=schema)
    return pa.concat_tables([whole.slice(0, n // 2), whole.slice(n // 2)])  # two chunks


def _describe(table: pa.Table) -> dict[str, object]:
    """What a task saw of a table, as JSON: its full schema and every value."""
    return {"schema": table.schema.to_string(show_field_metadata=True,
                                             show_schema_metadata=True),
            "rows": table.num_rows,
            "values": {name: [str(v) for v in column.to_pylist()]
                       for name, column in zip(table.column_names, table.columns, strict=True)}}


# Object identity of the tables only exists inside the driver process.
@pytest.mark.executors("serial")
def test_arrow_table_passed_between_tasks_without_copy() -> None:
    produced: list[pa.Table] = []
    received: list[pa.Table] = []

    @sterna.task
    def make(n: int) -> pa.Table:
        table = pa.table({"a": list(range(n)), "b": [float(i) for i in range(n)]})
        produced.append(table)
        return table

    @sterna.task
    def consume(t: pa.Table) -> int:
        received.append(t)
        return t.num_rows

    @sterna.task
    def passthrough(t: pa.Table) -> pa.Table:
        received.append(t)
        return t

    @sterna.workflow
    def tables(n: int) -> tuple[int, pa.Table]:
        t = make(n=n)
        return consume(t=t), passthrough(t=t)

    run = sterna.run(tables, n=1000)
    assert run.outputs_by_name["o0"] == 1000
    assert len(produced) == 1
    assert len(received) == 2
    original = produced[0]
    for table in received:
        assert table is original
        assert _first_buffer_address(table) == _first_buffer_address(original)
    assert run.outputs_by_name["o1"] is original
    assert run.outputs[1] is original


def test_arrow_table_handed_between_tasks_keeps_values_and_schema(tmp_path: Path) -> None:
    seen = Calls(tmp_path / "seen.jsonl")

    @sterna.task
    def make(n: int) -> pa.Table:
        return _rich_table(n)

    @sterna.task
    def consume(t: pa.Table) -> int:
        seen.append(["consume", _describe(t)])
        return t.num_rows

    @sterna.task
    def passthrough(t: pa.Table) -> pa.Table:
        seen.append(["passthrough", _describe(t)])
        return t

    @sterna.workflow
    def tables(n: int) -> tuple[int, pa.Table]:
        t = make(n=n)
        return consume(t=t), passthrough(t=t)

    expected = _rich_table(1000)
    run = sterna.run(tables, n=1000)
    assert run.outputs_by_name["o0"] == 1000
    assert sorted(name for name, _ in seen) == ["consume", "passthrough"]
    for _, description in seen:
        assert description == _describe(expected)
    out = run.outputs[1]
    assert isinstance(out, pa.Table)
    assert out.equals(expected)
    assert out.schema.equals(expected.schema, check_metadata=True)
    assert out.schema.metadata == {b"origin": b"contract-test"}
    assert out.schema.field("a").metadata == {b"unit": b"count"}
    assert run.outputs_by_name["o1"] is out


# The table a task receives is the caller's very object only in the driver process.
@pytest.mark.executors("serial")
def test_arrow_table_workflow_input_is_not_copied() -> None:
    received: list[pa.Table] = []

    @sterna.task
    def keep(t: pa.Table) -> pa.Table:
        received.append(t)
        return t

    @sterna.workflow
    def table_in(t: pa.Table) -> pa.Table:
        return keep(t=t)

    table = pa.table({"x": [1, 2, 3]})
    run = sterna.run(table_in, t=table)
    assert received[0] is table
    assert run.inputs["t"] is table
    assert run.outputs is table
    assert _first_buffer_address(run.outputs) == _first_buffer_address(table)


def test_arrow_table_workflow_input_reaches_the_task_intact(tmp_path: Path) -> None:
    seen = Calls(tmp_path / "seen.jsonl")

    @sterna.task
    def keep(t: pa.Table) -> pa.Table:
        seen.append(_describe(t))
        return t

    @sterna.workflow
    def table_in(t: pa.Table) -> pa.Table:
        return keep(t=t)

    table = _rich_table(50)
    run = sterna.run(table_in, t=table)
    assert seen == [_describe(table)]
    assert run.inputs["t"] is table  # the run records the caller's input as given
    assert run.outputs.equals(table)
    assert run.outputs.schema.equals(table.schema, check_metadata=True)


# -- dependency order -------------------------------------------------------------------------


def test_data_dependencies_run_in_order(tmp_path: Path) -> None:
    order = Calls(tmp_path / "order.jsonl")

    @sterna.task
    def load(tag: str) -> int:
        order.append(f"load:{tag}")
        return len(tag)

    @sterna.task
    def combine(a: int, b: int) -> int:
        order.append("combine")
        return a + b

    @sterna.task
    def report(total: int) -> str:
        order.append("report")
        return f"total={total}"

    @sterna.workflow
    def diamond() -> str:
        # the consumer is called in the body after its producers, but the order of
        # calls in the body is not what guarantees the order of execution
        left = load(tag="left")
        right = load(tag="right!")
        return report(total=combine(a=left, b=right))

    run = sterna.run(diamond)
    assert run.outputs == "total=10"
    assert sorted(order) == sorted(["load:left", "load:right!", "combine", "report"])
    assert order.index("combine") > order.index("load:left")
    assert order.index("combine") > order.index("load:right!")
    assert order.index("report") > order.index("combine")
    records = run.nodes
    assert records["combine"].start >= max(records["load"].end, records["load-2"].end)


def test_explicit_ordering_is_respected(tmp_path: Path) -> None:
    order = Calls(tmp_path / "order.jsonl")

    @sterna.task
    def step(name: str) -> None:
        order.append(name)

    @sterna.workflow
    def ordered() -> None:
        c = step(name="c")
        b = step(name="b")
        a = step(name="a")
        # run a, then b, then c, although they were called in the opposite order
        a >> b
        b >> c

    run = sterna.run(ordered)
    assert order == ["a", "b", "c"]
    assert run.status == "succeeded"
    assert len(run.nodes) == 3


def test_explicit_ordering_mixed_with_data(tmp_path: Path) -> None:
    order = Calls(tmp_path / "order.jsonl")

    @sterna.task
    def setup() -> None:
        order.append("setup")

    @sterna.task
    def produce() -> int:
        order.append("produce")
        return 1

    @sterna.task
    def use(x: int) -> int:
        order.append("use")
        return x + 1

    @sterna.workflow
    def wf() -> int:
        value = produce()
        result = use(x=value)
        done = setup()
        done >> value
        return result

    assert sterna.run(wf).outputs == 2
    assert order == ["setup", "produce", "use"]


def test_subworkflow_nodes_run_in_dependency_order(tmp_path: Path) -> None:
    order = Calls(tmp_path / "order.jsonl")

    @sterna.task
    def inc(x: int) -> int:
        order.append(f"inc({x})")
        return x + 1

    @sterna.workflow
    def inner(x: int) -> int:
        return inc(x=inc(x=x))

    @sterna.workflow
    def outer(x: int) -> int:
        return inc(x=inner(x=inc(x=x)))

    run = sterna.run(outer, x=0)
    assert run.outputs == 4
    assert order == ["inc(0)", "inc(1)", "inc(2)", "inc(3)"]
    assert len(run.nodes) == 4
    assert all(r.status == "succeeded" and r.task == inc.name for r in run.nodes.values())


# -- environment ------------------------------------------------------------------------------


def test_environment_visible_inside_task_and_restored(tmp_path: Path) -> None:
    assert "STERNA_TEST_X" not in os.environ
    seen = Calls(tmp_path / "seen.jsonl")

    @sterna.task(environment={"STERNA_TEST_X": "1"})
    def read_env() -> str:
        seen.append(os.environ.get("STERNA_TEST_X"))
        return os.environ["STERNA_TEST_X"]

    @sterna.task
    def read_env_plain() -> str:
        return os.environ.get("STERNA_TEST_X", "unset")

    @sterna.workflow
    def env_wf() -> tuple[str, str]:
        value = read_env()
        after = read_env_plain()
        value >> after
        return value, after

    run = sterna.run(env_wf)
    assert run.outputs == ("1", "unset")
    assert seen == ["1"]
    assert "STERNA_TEST_X" not in os.environ


def test_environment_restores_previous_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STERNA_TEST_Y", "before")

    @sterna.task(environment={"STERNA_TEST_Y": "during"})
    def read_y() -> str:
        return os.environ["STERNA_TEST_Y"]

    assert sterna.run(read_y).outputs == "during"
    assert os.environ["STERNA_TEST_Y"] == "before"


def test_environment_with_timeout_and_restored() -> None:
    @sterna.task(environment={"STERNA_TEST_Z": "z"}, timeout=5)
    def read_z() -> str:
        return os.environ["STERNA_TEST_Z"]

    assert sterna.run(read_z).outputs == "z"
    assert "STERNA_TEST_Z" not in os.environ


def test_task_with_timeout_that_finishes_in_time() -> None:
    @sterna.task(timeout=5)
    def quick(x: int) -> int:
        time.sleep(0.01)
        return x * 3

    run = sterna.run(quick, x=2)
    assert run.outputs == 6
    assert run.nodes["quick"].status == "succeeded"
    assert len(run.nodes["quick"].attempts) == 1
