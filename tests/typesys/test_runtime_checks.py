"""Run-time type checks: through ``check_value`` and through real direct task calls.

A failed check raises ``TypeCheckError`` whose message names the task, the
argument, what was expected, what came, and where inside the value it went wrong.
"""

# Optional[...] is part of what is under test.
# ruff: noqa: UP045

import dataclasses
import datetime
import enum
import typing
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

import pyarrow as pa
import pytest

import sterna
from sterna.typesys.check import check_value, describe_value, short_repr, summarize
from sterna.typesys.resolve import resolve

OWNER = "task 'mod.clean'"


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Point:
    x: float
    y: float


@dataclasses.dataclass
class Shape:
    name: str
    corners: list[Point]
    meta: dict[str, int]
    kind: Literal["poly", "circle"] = "poly"


@dataclasses.dataclass
class Layer:
    shapes: dict[str, Shape]


@dataclasses.dataclass
class Labelled(Point):
    label: str = ""


class Blob:
    """A class sterna has no type for: its values are pickled."""


class OtherBlob:
    pass


SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), ("name", pa.string())])
Rows = Annotated[pa.Table, SCHEMA]

NOW = datetime.datetime(2024, 5, 1, 12, 30)
TODAY = datetime.date(2024, 5, 1)


def check(annotation: object, value: object, role: str = "input", name: str = "rows") -> Any:
    return check_value(resolve(annotation), value, owner=OWNER, role=role, name=name)


def rejected(annotation: object, value: object, role: str = "input") -> sterna.TypeCheckError:
    with pytest.raises(sterna.TypeCheckError) as info:
        check(annotation, value, role=role)
    return info.value


def _ids(cases: list[tuple[object, ...]]) -> list[str]:
    return [f"{i}-{str(c[0])[:30]}" for i, c in enumerate(cases)]


# -- accepted values ---------------------------------------------------------------------

ACCEPTED: list[tuple[object, object]] = [
    (int, 3),
    (int, -(10**30)),
    (float, 2.5),
    (str, ""),
    (str, "text"),
    (bool, False),
    (bytes, b"\x00\x01"),
    (None, None),
    (datetime.datetime, NOW),
    (datetime.date, TODAY),
    (datetime.timedelta, datetime.timedelta(seconds=3)),
    (Color, Color.BLUE),
    (list[int], []),
    (list[int], [1, 2, 3]),
    (list[list[str]], [["a"], [], ["b", "c"]]),
    (dict[str, int], {}),
    (dict[str, int], {"a": 1, "b": 2}),
    (dict[str, list[Optional[int]]], {"a": [1, None]}),
    (dict, {1: "any keys", "x": None}),
    (list, [1, "mixed", None]),
    (tuple[int, str], (1, "a")),
    (tuple[int, ...], ()),
    (tuple[int, ...], (1, 2, 3, 4)),
    (tuple[()], ()),
    (Optional[int], None),
    (Optional[int], 5),
    (Union[int, str], "s"),
    (int | str, 7),
    (Literal["a", "b"], "b"),
    (Literal[1, 2], 2),
    (Literal[Color.RED], Color.RED),
    (Point, Point(1.0, 2.0)),
    (Point, Labelled(1.0, 2.0, "sub")),
    (Shape, Shape("sq", [Point(0.0, 0.0)], {"n": 4})),
    (Layer, Layer({"a": Shape("c", [], {}, "circle")})),
    (list[Point], [Point(0.0, 1.0), Point(2.0, 3.0)]),
    (Optional[Point], None),
    (Any, object()),
    (Any, None),
    (list[Any], [1, "x", None]),
    (pa.Table, pa.table({"anything": [1.5]})),
    (Blob, Blob()),
    (Annotated[int, "meta"], 4),
    (datetime.date, NOW),  # a datetime is a date
]


@pytest.mark.parametrize(("annotation", "value"), ACCEPTED, ids=_ids(ACCEPTED))
def test_accepted_values_pass_unchanged(annotation: object, value: object) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sterna.SternaWarning)
        result = check(annotation, value)
    assert result is value


# -- rejected values: message is "<owner> <role> '<name>': expected E, got G (detail)" ------

REJECTED: list[tuple[object, object, str, str, str]] = [
    # annotation, value, expected, got, detail after "got G"
    (int, "3", "int", "str", ""),
    (int, 3.0, "int", "float", ""),
    (int, None, "int", "None", ""),
    (float, "1.5", "float", "str", ""),
    (str, b"x", "str", "bytes", ""),
    (bytes, "x", "bytes", "str", ""),
    (bool, 1, "bool", "int", ""),
    (datetime.datetime, TODAY, "datetime", "date", ""),
    (datetime.timedelta, 5, "timedelta", "int", ""),
    (Color, "red", "Color", "str", ""),
    (None, 0, "None", "int", " (is not None)"),
    (list[int], [1, 2, 3, "x"], "list[int]", "list[int | str]", " (item 3: 'x')"),
    (list[int], (1, 2), "list[int]", "tuple[int, int]", ""),
    (list[str], "abc", "list[str]", "str", ""),
    (list[list[int]], [[1], [2, None]], "list[list[int]]", "list[list[int] | list[int | None]]",
     " (item 1, item 1: None)"),
    (dict[str, int], {"a": 1, "b": "two"}, "dict[str, int]", "dict[str, int | str]",
     " (value of key 'b': 'two')"),
    (dict[str, int], [("a", 1)], "dict[str, int]", "list[tuple[str, int]]", ""),
    (dict[str, list[int]], {"a": [1, "q"]}, "dict[str, list[int]]", "dict[str, list[int | str]]",
     " (value of key 'a', item 1: 'q')"),
    (list[dict[str, int]], [{"a": 1}, {"b": "z"}], "list[dict[str, int]]",
     "list[dict[str, int] | dict[str, str]]", " (item 1, value of key 'b': 'z')"),
    (list[dict[str, list[int]]], [{"k": [1]}, {"k": [2, 3.5]}], "list[dict[str, list[int]]]",
     "list[dict[str, list[int]] | dict[str, list[int | float]]]",
     " (item 1, value of key 'k', item 1: 3.5)"),
    (tuple[int, str], (1, 2), "tuple[int, str]", "tuple[int, int]", " (item 1: 2)"),
    (tuple[int, ...], (1, 2, "a"), "tuple[int, ...]", "tuple[int, int, str]", " (item 2: 'a')"),
    (tuple[int, ...], [1, 2], "tuple[int, ...]", "list[int]", ""),
    (Optional[int], "1", "int | None", "str", ""),
    (Union[int, str], 1.5, "int | str", "float", ""),
    (int | str, [1], "int | str", "list[int]", ""),
    (Point, {"x": 1.0, "y": 2.0}, "Point", "dict[str, float]", ""),
    (Point, Point(1.0, "2"), "Point", "Point", " (field 'y': '2')"),
    (Shape, Shape("s", [Point(0.0, 0.0), Point("a", 1.0)], {}), "Shape", "Shape",
     " (field 'corners', item 1, field 'x': 'a')"),
    (Shape, Shape("s", [], {"n": "4"}), "Shape", "Shape", " (field 'meta', value of key 'n': '4')"),
    (Layer, Layer({"top": Shape("s", [], {}, "blob")}), "Layer", "Layer",
     " (field 'shapes', value of key 'top', field 'kind': 'blob'"),
    (list[Point], [Point(1.0, 1.0), Point(None, 1.0)], "list[Point]", "list[Point]",
     " (item 1, field 'x': None)"),
    (dict[str, Point], {"p": Point(1.0, "s")}, "dict[str, Point]", "dict[str, Point]",
     " (value of key 'p', field 'y': 's')"),
    (tuple[Point, int], (Point(1.0, 1.0), "x"), "tuple[Point, int]", "tuple[Point, str]",
     " (item 1: 'x')"),
    (tuple[Point, int], (Point(1.0, 1.0),), "tuple[Point, int]", "tuple[Point]",
     " (has 1 items, expected 2)"),
    (Optional[Point], 3, "Point | None", "int", ""),
    (Blob, OtherBlob(), "Blob", "OtherBlob", ""),
    (pa.Table, {"id": [1]}, "pa.Table", "dict[str, list[int]]", ""),
]


@pytest.mark.parametrize(("annotation", "value", "expected", "got", "detail"), REJECTED,
                         ids=_ids(REJECTED))
def test_rejected_values_raise_with_full_message(
    annotation: object, value: object, expected: str, got: str, detail: str,
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sterna.SternaWarning)
        error = rejected(annotation, value)
    message = str(error)
    head = f"task 'mod.clean' input 'rows': expected {expected}, got {got}"
    assert message.startswith(head + detail)
    if not detail:
        assert message == head
    assert error.task == "mod.clean"  # the task's name, not its label
    assert error.argument == "rows"
    assert error.expected == expected
    assert error.got == got


@pytest.mark.parametrize(("annotation", "value", "fragment"), [
    (Literal["a", "b"], "c", "expected Literal['a', 'b'], got str ("),
    (Literal[1, 2], 3, "expected Literal[1, 2], got int ("),
    (tuple[int, str], (1, "a", "b"), "expected tuple[int, str], got tuple[int, str, str] ("),
    (tuple[()], (1,), "expected tuple[()], got tuple[int] ("),
])
def test_rejected_with_typeguard_reason(annotation: object, value: object, fragment: str) -> None:
    message = str(rejected(annotation, value))
    assert message.startswith(f"task 'mod.clean' input 'rows': {fragment}")
    assert message.endswith(")")


def test_dict_with_non_str_key_points_at_the_key() -> None:
    error = rejected(dict[str, int], {"a": 1, 7: 2})
    assert str(error) == (
        "task 'mod.clean' input 'rows': expected dict[str, int], got dict[str | int, int] "
        "(key 7: 7)")


def test_dict_of_dataclass_with_non_str_key_points_at_the_key() -> None:
    error = rejected(dict[str, Point], {1: Point(0.0, 0.0)})
    assert str(error) == (
        "task 'mod.clean' input 'rows': expected dict[str, Point], got dict[int, Point] "
        "(key 1: 1)")


def test_role_and_name_appear_in_message() -> None:
    error = rejected(int, "x", role="output")
    assert str(error).startswith("task 'mod.clean' output 'rows': expected int, got str")


def test_type_check_error_is_a_sterna_error() -> None:
    error = rejected(int, "x")
    assert isinstance(error, sterna.SternaError)
    assert not isinstance(error, sterna.TaskFailedError)


def test_long_offending_value_is_cut_in_message() -> None:
    long_text = "x" * 200
    message = str(rejected(list[int], [1, long_text]))
    assert "(item 1: 'xxxx" in message
    assert long_text not in message
    assert message.endswith("...)")
    assert short_repr(long_text) == repr(long_text)[:57] + "..."


def test_got_describes_mixed_and_empty_containers() -> None:
    assert describe_value([]) == "list (empty)"
    assert describe_value({}) == "dict (empty)"
    assert describe_value([1, "a", 2, None]) == "list[int | str | None]"
    assert describe_value({"a": 1.0, "b": [1]}) == "dict[str, float | list[int]]"
    assert describe_value((1, "a")) == "tuple[int, str]"
    assert describe_value(Point(0.0, 0.0)) == "Point"
    assert describe_value(NOW) == "datetime"
    assert describe_value(pa.table({"a": [1]})) == "pa.Table[a: int64]"


def test_summarize_never_dumps_a_table() -> None:
    table = pa.table({"a": list(range(1000)), "b": ["v"] * 1000})
    assert summarize(table) == "pa.Table(1,000 rows x 2 columns)"
    assert summarize(list(range(20))) == "list of 20 items"
    assert summarize("short") == "'short'"


# -- int -> float, bool and int ----------------------------------------------------------------

def test_int_is_coerced_to_float() -> None:
    result = check(float, 3)
    assert result == 3.0
    assert type(result) is float


def test_float_stays_the_same_object() -> None:
    value = 2.5
    assert check(float, value) is value


def test_optional_float_coerces_int() -> None:
    result = check(Optional[float], 4)
    assert type(result) is float and result == 4.0
    assert check(Optional[float], None) is None


def test_union_first_accepting_option_wins() -> None:
    assert type(check(Union[int, float], 1)) is int
    assert type(check(Union[int, float], 1.5)) is float


def test_union_order_decides_coercion_whatever_was_resolved_before() -> None:
    """Union[int, float] keeps an int even after Union[float, int] was resolved."""

    class Marker:
        pass

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sterna.SternaWarning)
        assert type(check(Union[float, int, Marker], 1)) is float
        assert type(check(Union[int, float, Marker], 1)) is int


@pytest.mark.parametrize(("annotation", "value", "expected"), [
    (list[float], [1, 2.5], [1.0, 2.5]),
    (dict[str, float], {"a": 1}, {"a": 1.0}),
    (tuple[float, ...], (1, 2), (1.0, 2.0)),
    (tuple[float, str], (3, "s"), (3.0, "s")),
    (list[Optional[float]], [1, None], [1.0, None]),
])
def test_int_inside_containers_is_coerced_to_float(
    annotation: object, value: object, expected: object,
) -> None:
    result = check(annotation, value)
    assert result == expected
    flat = list(result.values()) if isinstance(result, dict) else list(result)  # type: ignore
    assert [type(v) for v in flat] == [type(v) for v in (
        expected.values() if isinstance(expected, dict) else expected)]  # type: ignore


def test_int_in_dataclass_float_field_is_coerced() -> None:
    result = check(Point, Point(1, 2))  # type: ignore[arg-type]
    assert isinstance(result, Point)
    assert type(result.x) is float and type(result.y) is float


def test_bool_is_an_int_but_int_is_not_a_bool() -> None:
    assert check(int, True) is True
    assert check(list[int], [True, 2]) == [True, 2]
    assert str(rejected(bool, 0)) == "task 'mod.clean' input 'rows': expected bool, got int"
    assert "got list[int]" in str(rejected(list[bool], [1]))


def test_bool_given_for_float_becomes_float() -> None:
    result = check(float, True)
    assert type(result) is float and result == 1.0


def test_literals_tell_bool_and_int_apart() -> None:
    assert "expected Literal[1], got bool" in str(rejected(Literal[1], True))
    assert "expected Literal[True], got int" in str(rejected(Literal[True], 1))
    assert check(Literal[True], True) is True


def test_float_is_never_narrowed_to_int() -> None:
    assert "expected int, got float" in str(rejected(int, 1.0))
    assert "expected list[int], got list[float]" in str(rejected(list[int], [1.0]))


# -- tables -----------------------------------------------------------------------------------

def _rows(**columns: object) -> pa.Table:
    return pa.table(columns)  # type: ignore[arg-type]


def test_table_with_declared_schema_accepts_matching_value() -> None:
    table = pa.Table.from_pylist([{"id": 1, "name": "a"}], schema=SCHEMA)
    assert check(Rows, table) is table


def test_table_with_extra_columns_is_accepted() -> None:
    schema = SCHEMA.append(pa.field("score", pa.float64()))
    table = pa.Table.from_pylist([{"id": 1, "name": "a", "score": 0.5}], schema=schema)
    assert check(Rows, table) is table


def test_table_missing_column_is_rejected() -> None:
    table = pa.Table.from_pylist([{"id": 1}], schema=pa.schema(
        [pa.field("id", pa.int64(), nullable=False)]))
    error = rejected(Rows, table)
    assert str(error) == (
        "task 'mod.clean' input 'rows': expected pa.Table[id: int64 not null, name: string], "
        "got pa.Table[id: int64 not null] (has no column 'name' (expected string))")


def test_table_wrong_column_type_is_rejected() -> None:
    table = pa.Table.from_pylist([{"id": "1", "name": "a"}], schema=pa.schema(
        [pa.field("id", pa.string(), nullable=False), ("name", pa.string())]))
    error = rejected(Rows, table)
    assert "expected pa.Table[id: int64 not null, name: string]" in str(error)
    assert "got pa.Table[id: string not null, name: string]" in str(error)
    assert "(has column 'id' of type string, expected int64)" in str(error)


def test_table_nullable_column_where_not_null_declared_is_rejected() -> None:
    table = _rows(id=[1, 2], name=["a", "b"])  # pa.table makes every column nullable
    error = rejected(Rows, table)
    assert "got pa.Table[id: int64, name: string]" in str(error)
    assert "(has nullable column 'id', expected not null)" in str(error)


def test_table_not_null_column_where_nullable_declared_is_accepted() -> None:
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False),
                        pa.field("name", pa.string(), nullable=False)])
    table = pa.Table.from_pylist([{"id": 1, "name": "a"}], schema=schema)
    assert check(Rows, table) is table


def test_untyped_table_accepts_any_table_but_nothing_else() -> None:
    table = _rows(a=[1])
    assert check(pa.Table, table) is table
    assert "expected pa.Table, got list[int]" in str(rejected(pa.Table, [1]))


def test_table_inside_list_is_checked_against_schema() -> None:
    only_id = pa.Table.from_pylist([{"id": 1}], schema=pa.schema(
        [pa.field("id", pa.int64(), nullable=False)]))
    error = rejected(list[Rows], [only_id])
    message = str(error)
    assert message.startswith(
        "task 'mod.clean' input 'rows': expected list[pa.Table[id: int64 not null, name: string]]"
        ", got list[pa.Table[id: int64 not null]] (item 0: ")
    assert message.endswith("has no column 'name' (expected string))")


def test_table_inside_container_is_summarized_not_dumped() -> None:
    """The offending table is named in one line; its rows never appear in the message."""
    table = pa.table({"id": [111111, 222222], "secret": ["alpha", "beta"]})
    message = str(rejected(dict[str, Rows], {"t": table}))
    assert "(value of key 't': " in message
    assert "\n" not in message
    assert "222222" not in message and "alpha" not in message


# -- files and directories ---------------------------------------------------------------------

def test_path_values_are_wrapped_and_must_exist(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n")
    for value in (str(data), data):
        wrapped = check(sterna.File, value)
        assert isinstance(wrapped, sterna.File)
        assert wrapped.path == str(data)
    folder = check(sterna.Directory, str(tmp_path))
    assert isinstance(folder, sterna.Directory)
    missing = tmp_path / "missing.csv"
    assert str(rejected(sterna.File, missing)) == (
        f"task 'mod.clean' input 'rows': expected File, got PosixPath "
        f"(names {str(missing)!r}, which is not an existing file)")


def test_list_of_files_wraps_each_item(tmp_path: Path) -> None:
    paths = [tmp_path / "a", tmp_path / "b"]
    for p in paths:
        p.write_bytes(b"1")
    result = check(list[sterna.File], [str(p) for p in paths])
    assert [type(f) for f in result] == [sterna.File, sterna.File]
    assert [f.path for f in result] == [str(p) for p in paths]
    error = rejected(list[sterna.File], [str(paths[0]), str(tmp_path / "nope")])
    assert "expected list[File], got list[str] (item 1:" in str(error)
    assert "which is not an existing file" in str(error)


def test_dataclass_file_field_is_wrapped(tmp_path: Path) -> None:
    @dataclasses.dataclass
    class Job:
        source: sterna.File

    data = tmp_path / "in.txt"
    data.write_text("x")
    result = check(Job, Job(str(data)))  # type: ignore[arg-type]
    assert isinstance(result.source, sterna.File)


# -- real tasks: direct calls check inputs and outputs -----------------------------------------

def test_task_input_error_names_task_argument_expected_and_got() -> None:
    calls: list[object] = []

    @sterna.task(name="mod.clean")
    def clean(rows: list[int]) -> int:
        calls.append(rows)
        return len(rows)

    with pytest.raises(sterna.TypeCheckError) as info:
        clean(rows=[1, 2, 3, "x"])
    assert str(info.value) == (
        "task 'mod.clean' input 'rows': expected list[int], got list[int | str] (item 3: 'x')")
    assert info.value.task == "mod.clean"
    assert info.value.argument == "rows"
    assert info.value.expected == "list[int]"
    assert info.value.got == "list[int | str]"
    assert calls == []
    assert clean(rows=[1, 2]) == 2
    assert calls == [[1, 2]]


def test_task_positional_inputs_are_checked() -> None:
    @sterna.task(name="mod.scale")
    def scale(factor: float, values: list[int]) -> list[float]:
        return [factor * v for v in values]

    with pytest.raises(sterna.TypeCheckError, match=r"input 'values': expected list\[int\]"):
        scale(2.0, ["a"])  # type: ignore[list-item]
    with pytest.raises(sterna.TypeCheckError, match="input 'factor': expected float, got str"):
        scale("2", [1])  # type: ignore[arg-type]


def test_task_default_name_is_module_and_function() -> None:
    @sterna.task
    def tidy(rows: list[int]) -> int:
        return 0

    assert tidy.name.endswith(".tidy")
    with pytest.raises(sterna.TypeCheckError) as info:
        tidy(rows=["a"])  # type: ignore[list-item]
    assert str(info.value).startswith(f"task {tidy.name!r} input 'rows': expected list[int]")


def test_task_output_error_names_output() -> None:
    @sterna.task(name="mod.clean")
    def clean(rows: list[int]) -> list[int]:
        return [*rows, "y"]  # type: ignore[list-item]

    with pytest.raises(sterna.TypeCheckError) as info:
        clean(rows=[1, 2])
    assert str(info.value) == (
        "task 'mod.clean' output 'o0': expected list[int], got list[int | str] (item 2: 'y')")
    assert info.value.argument == "o0"


def test_task_tuple_outputs_are_checked_one_by_one() -> None:
    @sterna.task(name="mod.split")
    def split(n: int) -> tuple[int, str]:
        return n, n  # type: ignore[return-value]

    with pytest.raises(sterna.TypeCheckError) as info:
        split(n=1)
    assert str(info.value) == "task 'mod.split' output 'o1': expected str, got int"


def test_task_named_tuple_output_is_named() -> None:
    class Stats(typing.NamedTuple):
        count: int
        mean: float

    @sterna.task(name="mod.stats")
    def stats(values: list[float]) -> Stats:
        return Stats(len(values), "n/a")  # type: ignore[arg-type]

    with pytest.raises(sterna.TypeCheckError) as info:
        stats(values=[1.0])
    assert str(info.value) == "task 'mod.stats' output 'mean': expected float, got str"


def test_task_without_return_annotation_must_return_none() -> None:
    @sterna.task(name="mod.log")
    def log(message: str) -> None:
        return 1  # type: ignore[return-value]

    with pytest.raises(sterna.TypeCheckError, match=r"task 'mod\.log' returned int"):
        log(message="x")


def test_task_nested_dataclass_error_path() -> None:
    @sterna.task(name="mod.area")
    def area(shape: Shape) -> float:
        return 0.0

    bad = Shape("tri", [Point(0.0, 0.0), Point(1.0, "up")], {})  # type: ignore[arg-type]
    with pytest.raises(sterna.TypeCheckError) as info:
        area(shape=bad)
    assert str(info.value) == (
        "task 'mod.area' input 'shape': expected Shape, got Shape "
        "(field 'corners', item 1, field 'y': 'up')")


def test_task_nested_item_in_dict_in_list() -> None:
    @sterna.task(name="mod.merge")
    def merge(batches: list[dict[str, list[int]]]) -> int:
        return 0

    with pytest.raises(sterna.TypeCheckError) as info:
        merge(batches=[{"a": [1]}, {"a": [2], "b": [3, "4"]}])  # type: ignore[list-item]
    assert str(info.value).endswith("(item 1, value of key 'b', item 1: '4')")
    assert "task 'mod.merge' input 'batches': expected list[dict[str, list[int]]]" in str(
        info.value)


def test_task_int_to_float_input_and_output_coercion() -> None:
    seen: list[type] = []

    @sterna.task(name="mod.half")
    def half(x: float) -> float:
        seen.append(type(x))
        return 2  # type: ignore[return-value]

    result = half(x=3)
    assert seen == [float]
    assert type(result) is float and result == 2.0


def test_task_list_of_float_input_receives_floats() -> None:
    seen: list[list[type]] = []

    @sterna.task(name="mod.mean")
    def mean(xs: list[float]) -> float:
        seen.append([type(x) for x in xs])
        return sum(xs) / len(xs)

    assert mean(xs=[1, 2]) == 1.5
    assert seen == [[float, float]]


def test_task_file_input_and_output_are_wrapped(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("hello")
    seen: list[object] = []

    @sterna.task(name="mod.copy")
    def copy(src: sterna.File) -> sterna.File:
        seen.append(src)
        target = tmp_path / "out.txt"
        target.write_bytes(src.read_bytes())
        return str(target)  # type: ignore[return-value]

    result = copy(src=str(source))
    assert isinstance(seen[0], sterna.File)
    assert isinstance(result, sterna.File)
    assert result.read_text() == "hello"
    assert result == sterna.File(source)  # same bytes, same identity


def test_task_rejects_missing_file_input(tmp_path: Path) -> None:
    calls: list[object] = []

    @sterna.task(name="mod.load")
    def load(src: sterna.File) -> int:
        calls.append(src)
        return 0

    missing = str(tmp_path / "gone.txt")
    with pytest.raises(sterna.TypeCheckError) as info:
        load(src=missing)
    assert str(info.value) == (
        f"task 'mod.load' input 'src': expected File, got str "
        f"(names {missing!r}, which is not an existing file)")
    assert calls == []


def test_task_rejects_missing_directory_output(tmp_path: Path) -> None:
    @sterna.task(name="mod.mkdir")
    def mkdir(name: str) -> sterna.Directory:
        return str(tmp_path / name)  # type: ignore[return-value]

    with pytest.raises(sterna.TypeCheckError) as info:
        mkdir(name="never-made")
    assert str(info.value).startswith(
        "task 'mod.mkdir' output 'o0': expected Directory, got str (names ")
    assert "which is not an existing directory" in str(info.value)


def test_task_table_schema_input_and_output() -> None:
    @sterna.task(name="mod.enrich")
    def enrich(rows: Rows) -> Rows:
        return rows.drop_columns(["name"])

    with pytest.raises(sterna.TypeCheckError) as info:
        enrich(rows=_rows(id=[1], name=["a"]))
    assert str(info.value) == (
        "task 'mod.enrich' input 'rows': expected pa.Table[id: int64 not null, name: string], "
        "got pa.Table[id: int64, name: string] (has nullable column 'id', expected not null)")

    good = pa.Table.from_pylist([{"id": 1, "name": "a"}], schema=SCHEMA)
    with pytest.raises(sterna.TypeCheckError) as info:
        enrich(rows=good)
    assert str(info.value) == (
        "task 'mod.enrich' output 'o0': expected pa.Table[id: int64 not null, name: string], "
        "got pa.Table[id: int64 not null] (has no column 'name' (expected string))")


def test_task_pickled_type_is_checked_by_isinstance() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sterna.SternaWarning)

        @sterna.task(name="mod.fit")
        def fit(model: Blob) -> Blob:
            return model

    blob = Blob()
    assert fit(model=blob) is blob
    with pytest.raises(sterna.TypeCheckError) as info:
        fit(model=OtherBlob())  # type: ignore[arg-type]
    assert str(info.value) == "task 'mod.fit' input 'model': expected Blob, got OtherBlob"


def test_task_enum_literal_and_optional_inputs() -> None:
    @sterna.task(name="mod.paint")
    def paint(color: Color, mode: Literal["fast", "slow"], limit: Optional[int] = None) -> str:
        return f"{color.value}-{mode}-{limit}"

    assert paint(color=Color.RED, mode="fast") == "red-fast-None"
    assert paint(Color.BLUE, "slow", 3) == "blue-slow-3"
    with pytest.raises(sterna.TypeCheckError, match="input 'color': expected Color, got str"):
        paint(color="red", mode="fast")  # type: ignore[arg-type]
    with pytest.raises(sterna.TypeCheckError,
                       match=r"input 'mode': expected Literal\['fast', 'slow'\], got str"):
        paint(color=Color.RED, mode="medium")  # type: ignore[arg-type]
    with pytest.raises(sterna.TypeCheckError,
                       match=r"input 'limit': expected int \| None, got str"):
        paint(color=Color.RED, mode="fast", limit="3")  # type: ignore[arg-type]


def test_task_any_input_accepts_everything() -> None:
    @sterna.task(name="mod.passthrough")
    def passthrough(value: Any) -> Any:
        return value

    marker = object()
    assert passthrough(value=marker) is marker
    assert passthrough(value=None) is None


def test_task_default_of_wrong_type_fails_at_definition() -> None:
    with pytest.raises(sterna.TaskDefinitionError) as info:
        @sterna.task(name="mod.limit")
        def limit(n: int = "ten") -> int:  # type: ignore[assignment]
            return n

    assert "'n'" in str(info.value)
    assert "expected int, got str" in str(info.value)
