"""Wiring mistakes in a ``@workflow`` body fail at definition time, with clear messages."""

from collections.abc import Callable
from typing import Any, Optional

import pytest

from sterna import (
    DefinitionError,
    EdgeTypeError,
    SternaError,
    WorkflowDefinitionError,
    task,
    workflow,
)
from sterna.core.promise import Promise

CALLS: list[str] = []
MOD = __name__


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    CALLS.clear()


@task
def make_text(x: int) -> str:
    CALLS.append("make_text")
    return str(x)


@task
def take_int(n: int) -> int:
    CALLS.append("take_int")
    return n


@task
def maybe(x: int) -> Optional[int]:  # noqa: UP045 (the spelling under test)
    CALLS.append("maybe")
    return x or None


@task
def ratio(x: int) -> float:
    CALLS.append("ratio")
    return x / 2


@task
def take_float(v: float) -> str:
    CALLS.append("take_float")
    return type(v).__name__


@task
def texts(x: int) -> list[str]:
    return [str(x)]


@task
def ints(xs: list[int]) -> int:
    return sum(xs)


@task
def pair(x: int) -> tuple[int, int]:
    return x, x


@task
def silent() -> None:
    CALLS.append("silent")


@task
def first() -> None:
    CALLS.append("first")


@task
def second() -> None:
    CALLS.append("second")


# -- edge types ----------------------------------------------------------------------------


def test_output_type_not_assignable_to_input_fails_at_definition() -> None:
    body_runs: list[int] = []
    with pytest.raises(EdgeTypeError) as info:
        @workflow
        def wiring(x: int) -> int:
            body_runs.append(1)
            return take_int(n=make_text(x=x))  # type: ignore[arg-type]

    message = str(info.value)
    assert f"workflow '{MOD}.wiring'" in message
    assert f"task '{MOD}.make_text' output 'o0'" in message
    assert f"task '{MOD}.take_int' input 'n'" in message
    assert "of type str" in message
    assert "of type int" in message
    assert body_runs == [1]
    assert CALLS == []
    assert isinstance(info.value, WorkflowDefinitionError)
    assert isinstance(info.value, DefinitionError)


@pytest.mark.parametrize(
    ("producer", "consumer", "src", "dst"),
    [
        (texts, ints, "list[str]", "list[int]"),
        (ratio, take_int, "float", "int"),
        (maybe, take_int, "int | None", "int"),
    ],
    ids=["list-of-str-to-list-of-int", "float-to-int", "optional-int-to-int"],
)
def test_incompatible_edges_are_rejected(producer: Any, consumer: Any, src: str,
                                         dst: str) -> None:
    input_name = next(iter(consumer.interface.inputs))
    with pytest.raises(EdgeTypeError) as info:
        @workflow
        def edge(x: int) -> int:
            return consumer(producer(x=x))  # type: ignore[no-any-return]

    message = str(info.value)
    assert f"workflow '{MOD}.edge'" in message
    assert f"{producer.label} output 'o0' of type {src}" in message
    assert f"{consumer.label} input '{input_name}' of type {dst}" in message
    assert CALLS == []


def test_pipe_optional_spelling_is_rejected_too() -> None:
    @task
    def maybe_pipe(x: int) -> int | None:
        return x or None

    with pytest.raises(EdgeTypeError, match=r"of type int \| None cannot feed"):
        @workflow
        def wf(x: int) -> int:
            return take_int(n=maybe_pipe(x=x))  # type: ignore[arg-type]


def test_int_to_float_edge_is_accepted_and_coerced_at_run_time() -> None:
    @workflow
    def wf(x: int) -> str:
        return take_float(v=take_int(n=x))

    assert wf(x=3) == "float"
    assert CALLS == ["take_int", "take_float"]


def test_workflow_input_of_wrong_type_for_task_input() -> None:
    with pytest.raises(EdgeTypeError) as info:
        @workflow
        def from_input(s: str) -> int:
            return take_int(n=s)  # type: ignore[arg-type]

    message = str(info.value)
    assert f"workflow '{MOD}.from_input'" in message
    assert "workflow input 's' of type str" in message
    assert f"task '{MOD}.take_int' input 'n' of type int" in message


def test_task_output_of_wrong_type_for_workflow_output() -> None:
    with pytest.raises(EdgeTypeError) as info:
        @workflow
        def out(x: int) -> int:
            return make_text(x=x)  # type: ignore[return-value]

    message = str(info.value)
    assert f"task '{MOD}.make_text' output 'o0' of type str" in message
    assert f"workflow '{MOD}.out' output 'o0' of type int" in message


def test_wrong_literal_is_edge_type_error_naming_workflow_task_and_input() -> None:
    with pytest.raises(EdgeTypeError) as info:
        @workflow
        def literal() -> int:
            return take_int(n="three")  # type: ignore[arg-type]

    message = str(info.value)
    assert f"workflow '{MOD}.literal'" in message
    assert f"task '{MOD}.take_int'" in message
    assert "input 'n'" in message
    assert "expected int" in message
    assert "got str" in message
    assert CALLS == []


def test_wrong_literal_inside_a_list_of_promises_names_the_input() -> None:
    with pytest.raises(EdgeTypeError) as info:
        @workflow
        def mixed(x: int) -> int:
            return ints(xs=[take_int(n=x), "two"])  # type: ignore[list-item]

    message = str(info.value)
    assert f"workflow '{MOD}.mixed'" in message
    assert f"task '{MOD}.ints'" in message
    assert "input 'xs'" in message
    assert "expected int" in message
    assert "got str" in message


def test_wrong_literal_for_a_subworkflow_input() -> None:
    @workflow
    def sub(n: int) -> int:
        return take_int(n=n)

    with pytest.raises(EdgeTypeError) as info:
        @workflow
        def outer() -> int:
            return sub(n=1.5)  # type: ignore[arg-type]

    message = str(info.value)
    assert f"workflow '{MOD}.outer'" in message
    assert f"workflow '{MOD}.sub'" in message
    assert "input 'n'" in message
    assert "expected int" in message
    assert "got float" in message


# -- Python control flow on promises -------------------------------------------------------


def _if(p: Any) -> None:
    if p:
        pass


def _for(p: Any) -> None:
    for _ in p:
        pass


def _unpack(p: Any) -> None:
    _a, _b = p


CONTROL_FLOW: list[tuple[str, Callable[[Any], Any], str, str]] = [
    ("if", _if, "'if' or a boolean test", "decide inside a task"),
    ("not", lambda p: not p, "'if' or a boolean test", "decide inside a task"),
    ("for", _for, "iteration", "map_task"),
    ("unpack", _unpack, "iteration", "map_task"),
    ("add", lambda p: p + 1, "arithmetic", "inside a task"),
    ("radd", lambda p: 1 + p, "arithmetic", "inside a task"),
    ("mul", lambda p: p * 2, "arithmetic", "inside a task"),
    ("sub", lambda p: p - 1, "arithmetic", "inside a task"),
    ("rsub", lambda p: 10 - p, "arithmetic", "inside a task"),
    ("eq", lambda p: p == 1, "comparison", "compare inside a task"),
    ("lt", lambda p: p < 1, "comparison", "compare inside a task"),
    ("reflected-lt", lambda p: 1 < p, "comparison", "compare inside a task"),  # noqa: SIM300
    ("len", lambda p: len(p), "len()", "inside a task"),
    ("index", lambda p: p[0], "indexing", "inside a task"),
    ("fstring", lambda p: f"value={p}", "formatting", "build the string inside a task"),
    ("in", lambda p: 1 in p, "'in'", "inside a task"),
]


@pytest.mark.parametrize(("op", "what", "instead"), [c[1:] for c in CONTROL_FLOW],
                         ids=[c[0] for c in CONTROL_FLOW])
def test_control_flow_on_task_output_is_refused(op: Callable[[Any], Any], what: str,
                                                instead: str) -> None:
    with pytest.raises(WorkflowDefinitionError) as info:
        @workflow
        def branching(x: int) -> int:
            y = take_int(n=x)
            op(y)
            return y

    message = str(info.value)
    assert f"workflow '{MOD}.branching'" in message
    assert what in message
    assert f"task '{MOD}.take_int' output 'o0'" in message
    assert "not possible in a workflow body" in message
    assert instead in message
    assert CALLS == []


@pytest.mark.parametrize(("op", "what", "instead"), [c[1:] for c in CONTROL_FLOW],
                         ids=[c[0] for c in CONTROL_FLOW])
def test_control_flow_on_workflow_input_is_refused(op: Callable[[Any], Any], what: str,
                                                   instead: str) -> None:
    with pytest.raises(WorkflowDefinitionError) as info:
        @workflow
        def on_input(x: int) -> int:
            op(x)
            return x

    message = str(info.value)
    assert f"workflow '{MOD}.on_input'" in message
    assert what in message
    assert "workflow input 'x'" in message
    assert instead in message


def test_boolean_test_on_several_outputs_is_refused_naming_the_workflow() -> None:
    with pytest.raises(WorkflowDefinitionError) as info:
        @workflow
        def branch_many(x: int) -> int:
            result = pair(x=x)
            if result:
                return result.o0
            return result.o1

    message = str(info.value)
    assert f"workflow '{MOD}.branch_many'" in message
    assert "decide inside a task" in message


def test_tracing_state_is_restored_after_a_failed_definition() -> None:
    with pytest.raises(WorkflowDefinitionError):
        @workflow
        def broken(x: int) -> int:
            y = take_int(n=x)
            if y:
                pass
            return y

    # outside any workflow a task runs directly again, and promises are not handed out
    result = take_int(n=4)
    assert result == 4
    assert not isinstance(result, Promise)
    assert CALLS == ["take_int"]


# -- ordering cycles -----------------------------------------------------------------------


def test_cycle_made_with_rshift_fails_at_definition() -> None:
    with pytest.raises(WorkflowDefinitionError) as info:
        @workflow
        def looped(x: int) -> int:
            a = take_int(n=x)
            b = take_int(n=a)
            b >> a
            return b

    message = str(info.value)
    assert f"workflow '{MOD}.looped'" in message
    assert "cycle" in message
    assert "take_int" in message
    assert "'>>'" in message
    assert CALLS == []


def test_cycle_of_rshift_edges_only() -> None:
    with pytest.raises(WorkflowDefinitionError, match="cycle"):
        @workflow
        def looped() -> None:
            a = first()
            b = second()
            a >> b
            b >> a


def test_rshift_with_a_non_call_is_refused() -> None:
    with pytest.raises(WorkflowDefinitionError, match="'>>' needs task or workflow calls"):
        @workflow
        def wf() -> None:
            first() >> 3  # type: ignore[operator]


def test_rshift_on_a_workflow_input_is_refused() -> None:
    with pytest.raises(WorkflowDefinitionError) as info:
        @workflow
        def wf(x: int) -> None:
            x >> first()  # type: ignore[operator]

    assert "workflow input 'x'" in str(info.value)


# -- other wiring mistakes -----------------------------------------------------------------


def test_several_outputs_passed_as_one_input() -> None:
    with pytest.raises(WorkflowDefinitionError) as info:
        @workflow
        def wf(x: int) -> int:
            return take_int(n=pair(x=x))  # type: ignore[arg-type]

    message = str(info.value)
    assert f"workflow '{MOD}.wf'" in message
    assert "input 'n'" in message
    assert "several outputs" in message
    assert "o0" in message


def test_call_with_no_outputs_passed_as_input() -> None:
    with pytest.raises(WorkflowDefinitionError) as info:
        @workflow
        def wf() -> int:
            return take_int(n=silent())  # type: ignore[func-returns-value]

    message = str(info.value)
    assert "input 'n'" in message
    assert "a call with no outputs" in message


def test_returning_wrong_number_of_values() -> None:
    with pytest.raises(WorkflowDefinitionError) as info:
        @workflow
        def wf(x: int) -> tuple[int, int, int]:
            return pair(x=x)  # type: ignore[return-value]

    message = str(info.value)
    assert f"workflow '{MOD}.wf'" in message
    assert "must return 3 values" in message


def test_returning_a_value_while_declaring_no_outputs() -> None:
    with pytest.raises(WorkflowDefinitionError) as info:
        @workflow
        def wf(x: int):  # type: ignore[no-untyped-def]
            return take_int(n=x)

    message = str(info.value)
    assert f"workflow '{MOD}.wf'" in message
    assert "declares no outputs" in message


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({}, "missing required input 'n'"), ({"n": 1, "m": 2}, "no input 'm'")],
    ids=["missing", "unknown"],
)
def test_bad_task_arguments_in_body_are_a_definition_error(kwargs: dict[str, Any],
                                                           fragment: str) -> None:
    with pytest.raises(DefinitionError) as info:
        @workflow
        def args_wf() -> int:
            return take_int(**kwargs)  # type: ignore[no-any-return]

    message = str(info.value)
    assert f"workflow '{MOD}.args_wf'" in message
    assert f"task '{MOD}.take_int'" in message
    assert fragment in message


def test_promise_from_another_workflow_is_refused() -> None:
    leaked: list[Any] = []

    @workflow
    def donor(x: int) -> int:
        y = take_int(n=x)
        leaked.append(y)
        return y

    with pytest.raises(WorkflowDefinitionError) as info:
        @workflow
        def thief() -> int:
            return take_int(n=leaked[0])  # type: ignore[no-any-return]

    message = str(info.value)
    assert f"workflow '{MOD}.thief'" in message
    assert "another workflow" in message


def test_unannotated_workflow_input_is_refused() -> None:
    with pytest.raises(WorkflowDefinitionError, match="'x' has no type annotation"):
        @workflow
        def wf(x) -> int:  # type: ignore[no-untyped-def]
            return take_int(n=x)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"retries": 2}, "unknown parameter 'retries'"),
        ({"nmae": "x"}, "did you mean 'name'"),
        ({"failure_policy": None}, "'failure_policy' is a flytekit parameter sterna does not"),
    ],
    ids=["unknown", "typo", "unsupported"],
)
def test_unknown_workflow_parameter_is_an_error(params: dict[str, Any], fragment: str) -> None:
    body_runs: list[int] = []
    with pytest.raises(WorkflowDefinitionError) as info:
        @workflow(**params)
        def wf(x: int) -> int:
            body_runs.append(1)
            return take_int(n=x)

    assert "@workflow" in str(info.value)
    assert fragment in str(info.value)
    assert body_runs == []


def test_definition_errors_share_the_sterna_root() -> None:
    with pytest.raises(SternaError):
        @workflow
        def wf(x: int) -> int:
            return take_int(n=make_text(x=x))  # type: ignore[arg-type]
