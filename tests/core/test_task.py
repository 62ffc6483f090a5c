"""``@task``: naming, direct calls, outputs, decoration-time errors and metadata."""

import functools
import inspect
import io
import pydoc
import re
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

import pytest

import sterna
from sterna import (
    DefinitionError,
    InputError,
    Task,
    TaskDefinitionError,
    TypeCheckError,
    UnsupportedTypeError,
    task,
)

T = TypeVar("T")


class Stats(NamedTuple):
    total: int
    label: str


@dataclass
class Point:
    x: int = 0
    y: int = 0


@dataclass(frozen=True)
class FrozenPoint:
    x: int = 0


def _add(x: int, y: int = 2) -> int:
    """Add two numbers.

    Returns their sum.
    """
    return x + y


add = task(_add)


@task
def stats(values: list[int]) -> Stats:
    """Total and label of some values."""
    return Stats(sum(values), f"n={len(values)}")


@task
def pair(x: int) -> tuple[int, str]:
    return x, str(x)


@task
def nothing(x: int) -> None:
    return None


@task
def unannotated_return(x: int):  # type: ignore[no-untyped-def]
    return None


@task
def scale(x: float, factor: float = 2.0) -> float:
    return x * factor


def _plain(text: str) -> str:
    return text.upper()


# -- identity ---------------------------------------------------------------------


def test_default_name_is_module_dot_function() -> None:
    assert add.name == f"{__name__}._add"
    assert stats.name == f"{__name__}.stats"


def test_name_parameter_overrides_default_name() -> None:
    t = task(name="etl.clean")(_plain)
    assert t.name == "etl.clean"
    assert t.id == "default/development/etl.clean"
    # The Python-level name of the object is still the function's.
    assert t.__name__ == "_plain"


@pytest.mark.parametrize("bad", ["", "   ", 3])
def test_empty_or_non_string_name_is_rejected(bad: object) -> None:
    with pytest.raises(TaskDefinitionError, match="name must be a non-empty string"):
        task(name=bad)(_plain)


def test_default_project_and_domain() -> None:
    assert add.project == "default"
    assert add.domain == "development"
    assert add.id == f"default/development/{__name__}._add"


def test_configure_sets_project_and_domain_of_existing_tasks() -> None:
    before = add.id
    sterna.configure(project="flights", domain="production")
    assert add.project == "flights"
    assert add.domain == "production"
    assert add.id == f"flights/production/{add.name}"
    assert add.id != before


def test_project_and_domain_from_environment_read_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    t = task(_plain)  # decorated before the environment is set
    monkeypatch.setenv("STERNA_PROJECT", "envproj")
    monkeypatch.setenv("STERNA_DOMAIN", "staging")
    assert t.id == f"envproj/staging/{__name__}._plain"
    monkeypatch.setenv("STERNA_PROJECT", "other")
    assert t.project == "other"


def test_configure_takes_precedence_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STERNA_PROJECT", "envproj")
    monkeypatch.setenv("STERNA_DOMAIN", "envdomain")
    sterna.configure(project="cfgproj")
    assert add.project == "cfgproj"
    assert add.domain == "envdomain"
    assert add.id == f"cfgproj/envdomain/{add.name}"


def test_bare_and_called_decorator_give_equivalent_tasks() -> None:
    bare = task(_plain)
    called = task()(_plain)
    assert isinstance(bare, Task)
    assert isinstance(called, Task)
    assert bare.name == called.name
    assert bare.config == called.config
    assert bare("a") == called("a") == "A"


# -- direct calls -------------------------------------------------------------------


def test_direct_call_positional_keyword_and_default() -> None:
    assert add(1, 5) == 6
    assert add(x=1, y=5) == 6
    assert add(1, y=10) == 11
    assert add(4) == 6
    assert add(x=4) == 6


def test_direct_call_runs_the_function_each_time() -> None:
    calls: list[int] = []

    @task
    def record(x: int) -> int:
        calls.append(x)
        return x * 10

    assert record(1) == 10
    assert record(x=2) == 20
    assert calls == [1, 2]


def test_functools_partial_of_a_task() -> None:
    add_ten = functools.partial(add, y=10)
    assert add_ten(1) == 11
    assert add_ten(x=5) == 15
    first_fixed = functools.partial(add, 7)
    assert first_fixed() == 9
    assert first_fixed(y=1) == 8


def test_float_input_accepts_int_and_coerces() -> None:
    seen: list[object] = []

    @task
    def show(x: float) -> float:
        seen.append(x)
        return x

    result = show(3)
    assert result == 3.0
    assert type(seen[0]) is float
    assert type(result) is float


def test_input_type_mismatch_raises_type_check_error() -> None:
    with pytest.raises(TypeCheckError) as info:
        add("one")  # type: ignore[arg-type]
    err = info.value
    message = str(err)
    assert add.name in message
    assert "'x'" in message
    assert "int" in message
    assert "str" in message
    assert err.argument == "x"
    assert err.expected == "int"
    assert err.got == "str"
    assert add.name in err.task


def test_input_mismatch_inside_a_container_is_caught() -> None:
    with pytest.raises(TypeCheckError) as info:
        stats([1, 2, "three"])  # type: ignore[list-item]
    message = str(info.value)
    assert stats.name in message
    assert "'values'" in message
    assert "list[int]" in message
    assert info.value.argument == "values"


def test_default_value_is_type_checked_and_not_passed_as_missing() -> None:
    assert scale(3) == 6.0
    assert scale(3, 0.5) == 1.5


def test_output_type_mismatch_raises_type_check_error() -> None:
    @task
    def wrong(x: int) -> int:
        return str(x)  # type: ignore[return-value]

    with pytest.raises(TypeCheckError) as info:
        wrong(1)
    message = str(info.value)
    assert wrong.name in message
    assert "output" in message
    assert "int" in message
    assert "str" in message
    assert info.value.expected == "int"
    assert info.value.got == "str"


def test_function_exception_propagates_unchanged() -> None:
    original = ValueError("bad value 42")

    @task
    def boom(x: int) -> int:
        raise original

    with pytest.raises(ValueError) as info:
        boom(1)
    assert info.value is original
    assert type(info.value) is ValueError
    assert not isinstance(info.value, sterna.SternaError)


def test_custom_exception_propagates_with_its_attributes() -> None:
    class QuotaExceeded(Exception):
        def __init__(self, used: int) -> None:
            super().__init__(f"used {used}")
            self.used = used

    @task
    def spend(x: int) -> int:
        raise QuotaExceeded(x)

    with pytest.raises(QuotaExceeded) as info:
        spend(7)
    assert info.value.used == 7


def test_missing_required_input_raises_input_error() -> None:
    with pytest.raises(InputError) as info:
        add(y=3)  # type: ignore[call-arg]
    message = str(info.value)
    assert add.name in message
    assert "'x'" in message
    assert "missing" in message


def test_unknown_input_raises_input_error() -> None:
    with pytest.raises(InputError) as info:
        add(1, z=3)  # type: ignore[call-arg]
    message = str(info.value)
    assert add.name in message
    assert "'z'" in message


def test_duplicate_input_raises_input_error() -> None:
    with pytest.raises(InputError) as info:
        add(1, x=2)  # type: ignore[misc]
    message = str(info.value)
    assert add.name in message
    assert "'x'" in message


def test_too_many_positional_arguments_raise_input_error() -> None:
    with pytest.raises(InputError) as info:
        add(1, 2, 3)  # type: ignore[call-arg]
    message = str(info.value)
    assert add.name in message
    assert "3" in message


def test_function_is_not_called_when_inputs_are_wrong() -> None:
    calls: list[int] = []

    @task
    def record(x: int) -> int:
        calls.append(x)
        return x

    with pytest.raises(InputError):
        record()  # type: ignore[call-arg]
    with pytest.raises(TypeCheckError):
        record("1")  # type: ignore[arg-type]
    assert calls == []


# -- outputs -------------------------------------------------------------------------


def test_single_output_returns_the_value() -> None:
    assert add(2, 3) == 5


def test_none_output_returns_none() -> None:
    assert nothing(1) is None
    assert unannotated_return(1) is None


def test_returning_a_value_when_declared_none_is_an_error() -> None:
    @task
    def leaky(x: int) -> None:
        return x  # type: ignore[return-value]

    with pytest.raises(TypeCheckError) as info:
        leaky(5)
    message = str(info.value)
    assert leaky.name in message
    assert "int" in message


def test_returning_a_value_without_return_annotation_is_an_error() -> None:
    @task
    def leaky(x: int):  # type: ignore[no-untyped-def]
        return x

    assert leaky.interface.outputs == {}
    with pytest.raises(TypeCheckError) as info:
        leaky(5)
    assert leaky.name in str(info.value)


def test_namedtuple_output_returns_the_namedtuple() -> None:
    result = stats([1, 2, 3])
    assert isinstance(result, Stats)
    assert result == Stats(6, "n=3")
    assert result.total == 6
    assert result.label == "n=3"
    assert list(stats.interface.outputs) == ["total", "label"]


def test_namedtuple_field_type_is_checked() -> None:
    @task
    def bad_stats(x: int) -> Stats:
        return Stats("not an int", "x")  # type: ignore[arg-type]

    with pytest.raises(TypeCheckError) as info:
        bad_stats(1)
    assert info.value.argument == "total"
    assert bad_stats.name in str(info.value)


def test_tuple_output_returns_a_tuple() -> None:
    result = pair(4)
    assert type(result) is tuple
    assert result == (4, "4")
    assert list(pair.interface.outputs) == ["o0", "o1"]


def test_tuple_output_of_wrong_length_is_an_error() -> None:
    @task
    def short(x: int) -> tuple[int, str]:
        return (x,)  # type: ignore[return-value]

    with pytest.raises(TypeCheckError) as info:
        short(1)
    assert short.name in str(info.value)


def test_tuple_output_item_type_is_checked() -> None:
    @task
    def swapped(x: int) -> tuple[int, str]:
        return str(x), x  # type: ignore[return-value]

    with pytest.raises(TypeCheckError) as info:
        swapped(1)
    assert info.value.argument == "o0"


def test_missing_return_annotation_means_no_outputs() -> None:
    assert unannotated_return.interface.outputs == {}
    assert nothing.interface.outputs == {}
    assert list(add.interface.outputs) == ["o0"]


# -- decoration-time errors ----------------------------------------------------------


def _assert_names(message: str, fn_qualname: str, param: str) -> None:
    assert fn_qualname in message, message
    assert f"'{param}'" in message, message


def test_missing_annotation_is_rejected() -> None:
    def untyped(x, y: int) -> int:  # type: ignore[no-untyped-def]
        return y

    with pytest.raises(TaskDefinitionError) as info:
        task(untyped)
    _assert_names(str(info.value), untyped.__qualname__, "x")
    assert "annotation" in str(info.value)


def test_var_positional_is_rejected() -> None:
    def star(x: int, *args: int) -> int:
        return x

    with pytest.raises(TaskDefinitionError) as info:
        task(star)
    _assert_names(str(info.value), star.__qualname__, "args")
    assert "*args" in str(info.value)


def test_var_keyword_is_rejected() -> None:
    def double_star(x: int, **kwargs: int) -> int:
        return x

    with pytest.raises(TaskDefinitionError) as info:
        task(double_star)
    _assert_names(str(info.value), double_star.__qualname__, "kwargs")
    assert "**kwargs" in str(info.value)


@pytest.mark.parametrize(
    ("annotation", "default"),
    [
        (list[int], [1, 2]),
        (dict[str, int], {"a": 1}),
        (list[int], []),
        (tuple[str, ...], {"a"}),
        (Point, Point()),
    ],
    ids=["list", "dict", "empty-list", "set", "unhashable-dataclass"],
)
def test_mutable_default_is_rejected(annotation: object, default: object) -> None:
    def fn(x: int, items=default) -> int:  # type: ignore[no-untyped-def]
        return x

    fn.__annotations__["items"] = annotation
    with pytest.raises(TaskDefinitionError) as info:
        task(fn)
    message = str(info.value)
    _assert_names(message, fn.__qualname__, "items")
    assert "mutable default" in message


def test_immutable_defaults_are_accepted() -> None:
    @task
    def fn(
        x: int,
        items: tuple[int, ...] = (1, 2),
        point: FrozenPoint = FrozenPoint(3),
        maybe: int | None = None,
    ) -> int:
        return x + sum(items) + point.x + (maybe or 0)

    assert fn(1) == 7
    assert fn(1, (), FrozenPoint(0), 4) == 5


def test_default_not_matching_its_type_is_rejected() -> None:
    def fn(x: int = "a") -> int:  # type: ignore[assignment]
        return x

    with pytest.raises(TaskDefinitionError) as info:
        task(fn)
    message = str(info.value)
    _assert_names(message, fn.__qualname__, "x")
    assert "int" in message
    assert "str" in message


def test_none_default_for_non_optional_is_rejected() -> None:
    def fn(x: int = None) -> int:  # type: ignore[assignment]  # noqa: RUF013
        return 1

    with pytest.raises(TaskDefinitionError) as info:
        task(fn)
    _assert_names(str(info.value), fn.__qualname__, "x")


@pytest.mark.parametrize(
    "annotation", [dict[int, str], set[int], T], ids=["dict-int-keys", "set", "typevar"])
def test_unsupported_input_annotation_is_rejected(annotation: object) -> None:
    def fn(x) -> int:  # type: ignore[no-untyped-def]
        return 1

    fn.__annotations__["x"] = annotation
    with pytest.raises(UnsupportedTypeError) as info:
        task(fn)
    assert isinstance(info.value, DefinitionError)
    _assert_names(str(info.value), fn.__qualname__, "x")


def test_unsupported_return_annotation_is_rejected() -> None:
    def fn(x: int) -> dict[int, str]:
        return {x: "x"}

    with pytest.raises(UnsupportedTypeError) as info:
        task(fn)
    message = str(info.value)
    assert fn.__qualname__ in message
    assert "return" in message


def test_unresolvable_annotation_is_rejected() -> None:
    def fn(x: "NoSuchType") -> int:  # type: ignore[name-defined] # noqa: F821
        return 1

    with pytest.raises(TaskDefinitionError) as info:
        task(fn)
    message = str(info.value)
    assert fn.__qualname__ in message
    assert "NoSuchType" in message


@pytest.mark.parametrize("target", [3, "f", 4.5], ids=["int", "str", "float"])
def test_decorating_a_non_callable_is_rejected(target: object) -> None:
    with pytest.raises(TaskDefinitionError) as info:
        task(target)  # type: ignore[call-overload]
    assert repr(target) in str(info.value)


def test_decorating_a_task_again_is_rejected() -> None:
    with pytest.raises(TaskDefinitionError):
        task(add)


def test_decorating_a_callable_instance_is_rejected() -> None:
    class Doubler:
        def __call__(self, x: int) -> int:
            return 2 * x

    with pytest.raises(TaskDefinitionError) as info:
        task(Doubler())
    assert "Doubler" in str(info.value)


def test_decorating_a_class_is_rejected() -> None:
    class Job:
        """A class is callable, but it is not a function."""

    with pytest.raises(TaskDefinitionError) as info:
        task(Job)
    assert "Job" in str(info.value)


def test_parameterised_decorator_rejects_non_function() -> None:
    with pytest.raises(TaskDefinitionError):
        task(retries=1)(42)  # type: ignore[arg-type]


# -- metadata -------------------------------------------------------------------------


def test_keeps_function_metadata() -> None:
    assert add.__name__ == "_add"
    assert add.__doc__ == _add.__doc__
    assert add.__module__ == _add.__module__ == __name__
    assert add.__qualname__ == _add.__qualname__
    assert add.__wrapped__ is _add
    assert add.fn is _add


def test_keeps_metadata_of_nested_function() -> None:
    def inner(a: str) -> str:
        """Inner doc."""
        return a

    t = task(inner)
    assert t.__qualname__ == inner.__qualname__
    assert "<locals>" in t.__qualname__
    assert t.__doc__ == "Inner doc."
    # The default name uses the plain function name, not the qualified one.
    assert t.name == f"{__name__}.inner"


def test_signature_equals_the_function_signature() -> None:
    assert inspect.signature(add) == inspect.signature(_add)
    params = inspect.signature(add).parameters
    assert list(params) == ["x", "y"]
    assert params["y"].default == 2
    assert inspect.signature(stats).return_annotation is Stats


def _plain_text(text: str) -> str:
    return re.sub(".\b", "", text)


def test_render_doc_shows_docstring_and_parameters() -> None:
    text = _plain_text(pydoc.render_doc(add))
    assert "Add two numbers." in text
    assert "Returns their sum." in text
    assert "_add(x: int, y: int = 2) -> int" in text


def test_help_output_shows_docstring_and_parameters(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pydoc, "pager", pydoc.plainpager)  # never an interactive pager
    help(add)
    text = _plain_text(capsys.readouterr().out)
    assert "Add two numbers." in text
    assert "x: int" in text
    assert "y: int = 2" in text


def test_pydoc_helper_output() -> None:
    out = io.StringIO()
    pydoc.Helper(output=out).help(stats)
    text = _plain_text(out.getvalue())
    assert "Total and label of some values." in text
    assert "values: list[int]" in text


def test_repr_mentions_the_name() -> None:
    text = repr(add)
    assert add.name in text
    assert "task" in text
    assert "x: int" in text
