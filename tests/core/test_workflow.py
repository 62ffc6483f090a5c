"""``@workflow``: tracing a body once into a Graph, wiring, outputs, subworkflows, running."""

import inspect
from typing import NamedTuple

import pytest

import sterna
from sterna import Workflow, task, workflow
from sterna.core.graph import Const, DictOf, Graph, InputRef, ListOf, NodeRef

# -- tasks shared by the tests --------------------------------------------------------------

CALLS: list[str] = []


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    CALLS.clear()


@task
def add(x: int, y: int) -> int:
    CALLS.append("add")
    return x + y


@task
def double(x: int) -> int:
    CALLS.append("double")
    return 2 * x


@task
def total(xs: list[int]) -> int:
    CALLS.append("total")
    return sum(xs)


@task
def join_map(m: dict[str, int]) -> str:
    CALLS.append("join_map")
    return ",".join(f"{k}={v}" for k, v in sorted(m.items()))


@task
def split(x: int) -> tuple[int, str]:
    CALLS.append("split")
    return x + 1, f"n{x}"


class Stats(NamedTuple):
    low: int
    high: int


@task
def bounds(xs: list[int]) -> Stats:
    CALLS.append("bounds")
    return Stats(min(xs), max(xs))


@task
def describe(n: int, s: str) -> str:
    CALLS.append("describe")
    return f"{s}:{n}"


@task
def type_of(v: float) -> str:
    CALLS.append("type_of")
    return type(v).__name__


@task
def note(msg: str) -> None:
    CALLS.append(f"note:{msg}")


@task
def step_a() -> None:
    CALLS.append("a")


@task
def step_b() -> None:
    CALLS.append("b")


@task
def step_c() -> None:
    CALLS.append("c")


# -- tracing -------------------------------------------------------------------------------


def test_body_runs_once_at_decoration_and_no_task_executes() -> None:
    body_runs: list[int] = []

    @workflow
    def wf(x: int) -> int:
        body_runs.append(1)
        return double(x=add(x=x, y=1))

    assert body_runs == [1]
    assert CALLS == []
    assert isinstance(wf, Workflow)
    assert isinstance(wf.graph, Graph)
    assert set(wf.graph.nodes) == {"add", "double"}
    # running it does not trace the body again
    assert wf(x=2) == 6
    assert wf(x=3) == 8
    assert body_runs == [1]
    assert CALLS == ["add", "double", "add", "double"]


def test_task_output_feeds_input_as_node_ref() -> None:
    @workflow
    def wf(x: int) -> int:
        return double(x=double(x=x))

    graph = wf.graph
    assert graph.nodes["double"].bindings == {"x": InputRef("x")}
    assert graph.nodes["double-2"].bindings == {"x": NodeRef("double", "o0")}
    assert graph.outputs == {"o0": NodeRef("double-2", "o0")}
    assert graph.order == ("double", "double-2")
    assert graph.nodes["double"].task is double
    assert wf(x=5) == 20


def test_workflow_input_default_used_when_omitted_and_overridden_when_given() -> None:
    @workflow
    def wf(x: int, y: int = 10) -> int:
        return add(x=x, y=y)

    assert wf.graph.nodes["add"].bindings == {"x": InputRef("x"), "y": InputRef("y")}
    assert wf(x=1) == 11
    assert wf(x=1, y=2) == 3
    assert sterna.run(wf, x=4).outputs == 14


def test_literal_constant_becomes_const_binding() -> None:
    @workflow
    def wf(x: int) -> int:
        return add(x=x, y=7)

    assert wf.graph.nodes["add"].bindings == {"x": InputRef("x"), "y": Const(7)}
    assert wf(x=1) == 8


def test_int_literal_for_float_input_is_coerced_at_definition() -> None:
    @workflow
    def wf() -> str:
        return type_of(v=3)

    const = wf.graph.nodes["type_of"].bindings["v"]
    assert isinstance(const, Const)
    assert const.value == 3.0
    assert isinstance(const.value, float)
    assert wf() == "float"


def test_literal_list_constant_is_not_shared_between_runs() -> None:
    @task
    def grow(xs: list[int]) -> int:
        xs.append(0)
        return len(xs)

    @workflow
    def wf() -> int:
        return grow(xs=[1, 2])

    assert wf() == 3
    assert wf() == 3  # a task mutating its input must not change the next run's constant


def test_list_of_promises_becomes_list_of_binding() -> None:
    @workflow
    def wf(x: int) -> int:
        a = double(x=x)
        b = add(x=x, y=1)
        return total(xs=[a, b, x, 100])

    binding = wf.graph.nodes["total"].bindings["xs"]
    assert binding == ListOf((NodeRef("double", "o0"), NodeRef("add", "o0"), InputRef("x"),
                              Const(100)))
    assert wf.graph.dependencies("total") == {"double", "add"}
    assert wf(x=3) == 6 + 4 + 3 + 100


def test_dict_of_promises_becomes_dict_of_binding() -> None:
    @workflow
    def wf(x: int) -> str:
        return join_map(m={"a": double(x=x), "b": x, "c": 5})

    binding = wf.graph.nodes["join_map"].bindings["m"]
    assert binding == DictOf((("a", NodeRef("double", "o0")), ("b", InputRef("x")),
                              ("c", Const(5))))
    assert wf(x=2) == "a=4,b=2,c=5"


def test_int_promise_in_list_feeding_list_of_float_is_coerced() -> None:
    @task
    def one() -> int:
        return 1

    @task
    def item_types(xs: list[float]) -> list[str]:
        return [type(v).__name__ for v in xs]

    @workflow
    def wf() -> list[str]:
        return item_types(xs=[one(), 2])

    assert wf() == ["float", "float"]


# -- multiple and named outputs ------------------------------------------------------------


def test_tuple_outputs_by_attribute_and_unpacking() -> None:
    @workflow
    def by_attr(x: int) -> str:
        result = split(x=x)
        return describe(n=result.o0, s=result.o1)

    @workflow
    def by_unpacking(x: int) -> str:
        n, s = split(x=x)
        return describe(n=n, s=s)

    for wf in (by_attr, by_unpacking):
        assert wf.graph.nodes["describe"].bindings == {
            "n": NodeRef("split", "o0"), "s": NodeRef("split", "o1")}
        assert wf(x=4) == "n4:5"


def test_namedtuple_outputs_by_field_name() -> None:
    @workflow
    def wf(xs: list[int]) -> int:
        r = bounds(xs=xs)
        return add(x=r.low, y=r.high)

    assert wf.graph.nodes["add"].bindings == {
        "x": NodeRef("bounds", "low"), "y": NodeRef("bounds", "high")}
    assert wf(xs=[3, 9, 1]) == 10


def test_namedtuple_output_field_named_like_a_tuple_method() -> None:
    class Counted(NamedTuple):
        count: int
        index: int

    @task
    def counted(xs: list[int]) -> Counted:
        return Counted(len(xs), 0)

    @workflow
    def wf(xs: list[int]) -> int:
        r = counted(xs=xs)
        return add(x=r.count, y=r.index)

    assert wf.graph.nodes["add"].bindings == {
        "x": NodeRef("counted", "count"), "y": NodeRef("counted", "index")}
    assert wf(xs=[7, 8, 9]) == 3


def test_unknown_output_name_is_attribute_error() -> None:
    with pytest.raises(AttributeError, match=r"o0, o1.*'o7'"):
        @workflow
        def wf(x: int) -> int:
            return split(x=x).o7  # type: ignore[attr-defined, no-any-return]


def test_workflow_returning_a_tuple() -> None:
    @workflow
    def wf(x: int) -> tuple[int, str]:
        n, s = split(x=x)
        return double(x=n), s

    assert wf.interface.output_kind == "tuple"
    assert wf.graph.outputs == {"o0": NodeRef("double", "o0"), "o1": NodeRef("split", "o1")}
    assert wf(x=1) == (4, "n1")


def test_workflow_returning_a_task_call_with_several_outputs_directly() -> None:
    @workflow
    def wf(x: int) -> tuple[int, str]:
        return split(x=x)  # type: ignore[return-value]

    assert wf(x=7) == (8, "n7")


def test_workflow_returning_a_namedtuple() -> None:
    @workflow
    def wf(xs: list[int]) -> Stats:
        r = bounds(xs=xs)
        return Stats(double(x=r.low), r.high)  # type: ignore[arg-type]

    assert set(wf.graph.outputs) == {"low", "high"}
    result = wf(xs=[2, 5])
    assert isinstance(result, Stats)
    assert result == Stats(4, 5)
    assert result.high == 5


def test_workflow_returning_a_single_value_input_or_literal() -> None:
    @workflow
    def passthrough(x: int) -> int:
        return x

    @workflow
    def literal() -> int:
        return 42  # a constant output

    assert passthrough.graph.outputs == {"o0": InputRef("x")}
    assert passthrough.graph.nodes == {}
    assert passthrough(x=9) == 9
    assert literal.graph.outputs == {"o0": Const(42)}
    assert literal() == 42


def test_workflow_with_no_outputs_runs_its_tasks_and_returns_none() -> None:
    @workflow
    def wf(x: int) -> None:
        double(x=x)
        note(msg="done")

    assert wf.interface.outputs == {}
    assert wf.graph.outputs == {}
    assert wf(x=2) is None
    assert sorted(CALLS) == ["double", "note:done"]


def test_workflow_returning_a_call_of_a_task_with_no_outputs() -> None:
    @workflow
    def wf() -> None:
        return note(msg="hi")

    assert set(wf.graph.nodes) == {"note"}
    assert wf.graph.nodes["note"].bindings == {"msg": Const("hi")}
    assert wf() is None
    assert CALLS == ["note:hi"]


def test_same_task_called_several_times_gets_distinct_node_ids() -> None:
    @workflow
    def wf(x: int) -> int:
        a = double(x=x)
        b = double(x=a)
        c = double(x=x)
        return add(x=b, y=c)

    assert set(wf.graph.nodes) == {"double", "double-2", "double-3", "add"}
    assert wf.graph.nodes["double-3"].bindings == {"x": InputRef("x")}
    assert wf.graph.nodes["add"].bindings == {
        "x": NodeRef("double-2", "o0"), "y": NodeRef("double-3", "o0")}
    assert wf(x=1) == 4 + 2
    assert CALLS.count("double") == 3


def test_task_called_with_positional_arguments_in_body() -> None:
    @workflow
    def wf(x: int) -> int:
        return add(x, 5)

    assert wf.graph.nodes["add"].bindings == {"x": InputRef("x"), "y": Const(5)}
    assert wf(x=1) == 6


# -- subworkflows --------------------------------------------------------------------------


@workflow
def inner(x: int, bump: int = 100) -> int:
    return add(x=double(x=x), y=bump)


@workflow
def middle(x: int) -> tuple[int, int]:
    return inner(x=x), double(x=x)


def test_subworkflow_nodes_are_inlined_with_prefixed_ids() -> None:
    @workflow
    def outer(x: int) -> int:
        y = inner(x=x, bump=1)
        return double(x=y)

    graph = outer.graph
    assert set(graph.nodes) == {"inner.double", "inner.add", "double"}
    assert graph.nodes["inner.double"].bindings == {"x": InputRef("x")}
    assert graph.nodes["inner.add"].bindings == {
        "x": NodeRef("inner.double", "o0"), "y": Const(1)}
    assert graph.nodes["double"].bindings == {"x": NodeRef("inner.add", "o0")}
    assert outer(x=3) == 2 * (6 + 1)


def test_subworkflow_default_used_when_omitted() -> None:
    @workflow
    def outer(x: int) -> int:
        return inner(x=x)

    assert outer.graph.nodes["inner.add"].bindings["y"] == Const(100)
    assert outer(x=2) == 104


def test_subworkflow_input_from_task_output_and_called_twice() -> None:
    @workflow
    def outer(x: int) -> int:
        first = inner(x=double(x=x), bump=0)
        return inner(x=first, bump=x)

    graph = outer.graph
    assert {"inner.double", "inner.add", "inner-2.double", "inner-2.add", "double"} == set(
        graph.nodes)
    assert graph.nodes["inner.double"].bindings == {"x": NodeRef("double", "o0")}
    assert graph.nodes["inner-2.double"].bindings == {"x": NodeRef("inner.add", "o0")}
    assert graph.nodes["inner-2.add"].bindings["y"] == InputRef("x")
    # x=1: double -> 2; inner(2, 0) -> 4; inner(4, 1) -> 9
    assert outer(x=1) == 9


def test_subworkflows_nested_two_levels() -> None:
    @workflow
    def outer(x: int) -> int:
        a, b = middle(x=x)
        return add(x=a, y=b)

    graph = outer.graph
    assert set(graph.nodes) == {"middle.inner.double", "middle.inner.add", "middle.double", "add"}
    assert graph.nodes["add"].bindings == {
        "x": NodeRef("middle.inner.add", "o0"), "y": NodeRef("middle.double", "o0")}
    # x=5: inner -> 10 + 100; middle.double -> 10
    assert outer(x=5) == 120
    assert middle(x=5) == (110, 10)


def test_subworkflow_input_passed_straight_to_its_output() -> None:
    @workflow
    def echo(v: int) -> int:
        return v

    @workflow
    def outer(x: int) -> int:
        return double(x=echo(v=add(x=x, y=1)))

    assert outer.graph.nodes["double"].bindings == {"x": NodeRef("add", "o0")}
    assert outer(x=1) == 4


# -- explicit ordering ---------------------------------------------------------------------


def test_rshift_orders_tasks_without_data_edge_against_program_order() -> None:
    @workflow
    def wf() -> None:
        b = step_b()
        a = step_a()
        a >> b

    assert wf.graph.nodes["step_b"].after == frozenset({"step_a"})
    assert wf.graph.dependencies("step_b") == {"step_a"}
    assert wf.graph.order.index("step_a") < wf.graph.order.index("step_b")
    wf()
    assert CALLS == ["a", "b"]


def test_rshift_chain() -> None:
    @workflow
    def wf() -> None:
        c = step_c()
        b = step_b()
        a = step_a()
        a >> b >> c

    assert wf.graph.nodes["step_b"].after == frozenset({"step_a"})
    assert wf.graph.nodes["step_c"].after == frozenset({"step_b"})
    assert wf.graph.nodes["step_a"].after == frozenset()
    wf()
    assert CALLS == ["a", "b", "c"]


def test_rshift_on_calls_with_outputs() -> None:
    @workflow
    def wf(x: int) -> int:
        late = double(x=x)
        early = add(x=x, y=1)
        early >> late
        return late

    assert wf.graph.dependencies("double") == {"add"}
    assert wf(x=2) == 4
    assert CALLS == ["add", "double"]


def test_rshift_with_subworkflow_on_either_side() -> None:
    @workflow
    def sub() -> None:
        step_b()
        step_c()

    @workflow
    def sub_first() -> None:
        a = step_a()
        s = sub()
        s >> a

    @workflow
    def sub_second() -> None:
        s = sub()
        a = step_a()
        a >> s

    assert sub_first.graph.nodes["step_a"].after == frozenset({"sub.step_b", "sub.step_c"})
    sub_first()
    assert CALLS[-1] == "a"
    assert sorted(CALLS) == ["a", "b", "c"]

    CALLS.clear()
    for node in ("sub.step_b", "sub.step_c"):
        assert sub_second.graph.nodes[node].after == frozenset({"step_a"})
    sub_second()
    assert CALLS[0] == "a"
    assert sorted(CALLS) == ["a", "b", "c"]


def test_rshift_inside_subworkflow_is_kept_when_inlined() -> None:
    @workflow
    def sub() -> None:
        b = step_b()
        a = step_a()
        a >> b

    @workflow
    def outer() -> None:
        sub()

    assert outer.graph.nodes["sub.step_b"].after == frozenset({"sub.step_a"})
    outer()
    assert CALLS == ["a", "b"]


# -- running like a function ---------------------------------------------------------------


@workflow
def pipeline(x: int, y: int = 2) -> int:
    """Add, then double."""
    return double(x=add(x=x, y=y))


def test_workflow_call_runs_and_returns_outputs() -> None:
    assert pipeline(x=1, y=3) == 8
    assert CALLS == ["add", "double"]


def test_workflow_call_with_positional_arguments() -> None:
    assert pipeline(1, 3) == 8
    assert pipeline(4) == 12
    assert pipeline(1, y=0) == 2


def test_sterna_run_outputs_equal_calling_the_workflow() -> None:
    run = sterna.run(pipeline, x=5, y=1)
    assert run.outputs == pipeline(x=5, y=1) == 12
    assert run.outputs_by_name == {"o0": 12}
    assert run.status == "succeeded"
    assert set(run.nodes) == {"add", "double"}
    assert pipeline.run(5, 1).outputs == 12


def test_sterna_run_outputs_for_tuple_and_namedtuple_workflows() -> None:
    @workflow
    def tup(x: int) -> tuple[int, str]:
        return split(x=x)  # type: ignore[return-value]

    @workflow
    def named(xs: list[int]) -> Stats:
        return bounds(xs=xs)  # type: ignore[return-value]

    assert sterna.run(tup, x=1).outputs == tup(x=1) == (2, "n1")
    assert sterna.run(named, xs=[4, 2]).outputs == named(xs=[4, 2]) == Stats(2, 4)
    assert sterna.run(tup, x=1).outputs_by_name == {"o0": 2, "o1": "n1"}


def test_tasks_still_run_directly_outside_workflows() -> None:
    assert add(x=1, y=2) == 3
    assert split(x=1) == (2, "n1")
    assert bounds(xs=[1, 3]) == Stats(1, 3)


# -- identity ------------------------------------------------------------------------------


def test_workflow_keeps_name_doc_and_signature() -> None:
    assert pipeline.__name__ == "pipeline"
    assert pipeline.__doc__ == "Add, then double."
    sig = inspect.signature(pipeline)
    assert list(sig.parameters) == ["x", "y"]
    assert sig.parameters["y"].default == 2
    assert sig.parameters["x"].annotation is int
    assert sig.return_annotation is int


def test_workflow_name_defaults_to_module_and_function() -> None:
    assert pipeline.name == f"{__name__}.pipeline"
    assert pipeline.graph.name == pipeline.name
    assert pipeline.name in repr(pipeline)


def test_workflow_name_and_docs_can_be_given() -> None:
    @workflow(name="etl.daily", docs="Daily load")
    def wf(x: int) -> int:
        return double(x=x)

    assert wf.name == "etl.daily"
    assert wf.graph.name == "etl.daily"
    assert wf.docs == "Daily load"
    assert sterna.run(wf, x=1).name == "etl.daily"
