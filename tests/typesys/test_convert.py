"""typesys.convert: values from command-line text and from JSON-like data, durations, tables."""

import datetime
import enum
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from sterna import Directory, File
from sterna.typesys.convert import from_builtin, from_text, parse_duration, read_table
from sterna.typesys.resolve import resolve
from sterna.typesys.types import UnionT


class Color(enum.Enum):
    RED = "red"
    GREEN = 2


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclass(frozen=True)
class Point:
    x: int
    y: int = 0


@dataclass
class Shape:
    name: str
    origin: Point
    corners: list[Point] = field(default_factory=list)
    created: datetime.date = datetime.date(2026, 1, 1)
    tags: dict[str, float] = field(default_factory=dict)
    color: Color | None = None


def text(annotation: Any, value: str) -> Any:
    return from_text(resolve(annotation), value)


def data(annotation: Any, value: Any) -> Any:
    return from_builtin(resolve(annotation), value)


def same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


# -- from_text: scalars ------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("42", 42), ("-3", -3), ("0", 0), (" 7 ", 7),
])
def test_text_int(value: str, expected: int) -> None:
    assert same(text(int, value), expected)


@pytest.mark.parametrize("value", ["4.5", "3.0", "four", "", "0x10"])
def test_text_int_rejects(value: str) -> None:
    with pytest.raises(ValueError, match="expected an integer") as info:
        text(int, value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize(("value", "expected"), [
    ("2.5", 2.5), ("3", 3.0), ("-1e3", -1000.0), (".5", 0.5),
])
def test_text_float(value: str, expected: float) -> None:
    assert same(text(float, value), expected)


def test_text_float_rejects() -> None:
    with pytest.raises(ValueError, match=r"expected a number, got 'many'"):
        text(float, "many")


@pytest.mark.parametrize(("value", "expected"), [
    ("true", True), ("false", False), ("yes", True), ("no", False), ("1", True), ("0", False),
    ("True", True), ("FALSE", False), ("Yes", True), ("NO", False),
])
def test_text_bool(value: str, expected: bool) -> None:
    assert text(bool, value) is expected


@pytest.mark.parametrize("value", ["maybe", "2", "", "truthy"])
def test_text_bool_rejects(value: str) -> None:
    with pytest.raises(ValueError, match="expected true or false") as info:
        text(bool, value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("value", ["plain", "", "42", "none", "[1]", "  spaced  "])
def test_text_str_is_verbatim(value: str) -> None:
    assert same(text(str, value), value)


def test_text_bytes() -> None:
    assert same(text(bytes, "abc"), b"abc")


def test_text_datetime() -> None:
    assert same(text(datetime.datetime, "2026-01-31T12:30:05"),
                datetime.datetime(2026, 1, 31, 12, 30, 5))
    assert same(text(datetime.datetime, "2026-01-31"), datetime.datetime(2026, 1, 31))
    aware = text(datetime.datetime, "2026-01-31T12:00:00+02:00")
    assert aware.utcoffset() == datetime.timedelta(hours=2)


@pytest.mark.parametrize("value", ["31/01/2026", "yesterday", "2026-13-01T00:00:00"])
def test_text_datetime_rejects(value: str) -> None:
    with pytest.raises(ValueError, match="expected an ISO date-time") as info:
        text(datetime.datetime, value)
    assert repr(value) in str(info.value)


def test_text_date() -> None:
    assert same(text(datetime.date, "2026-02-28"), datetime.date(2026, 2, 28))


@pytest.mark.parametrize("value", ["2026-02-30", "2026-01-31T12:00:00", "Jan 5"])
def test_text_date_rejects(value: str) -> None:
    with pytest.raises(ValueError, match="expected an ISO date such as") as info:
        text(datetime.date, value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize(("value", "seconds"), [
    ("90", 90), ("1.5", 1.5), ("90s", 90), ("1h30m", 5400), ("2d", 172800), ("250ms", 0.25),
])
def test_text_timedelta(value: str, seconds: float) -> None:
    assert text(datetime.timedelta, value) == datetime.timedelta(seconds=seconds)


@pytest.mark.parametrize("value", ["soon", "1h30", "h", "5 weeks"])
def test_text_timedelta_rejects(value: str) -> None:
    with pytest.raises(ValueError, match="expected a duration") as info:
        text(datetime.timedelta, value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("value", ["inf", "-inf", "1e30", "99999999999d"])
def test_text_timedelta_out_of_range_is_a_value_error(value: str) -> None:
    with pytest.raises(ValueError) as info:
        text(datetime.timedelta, value)
    assert repr(value) in str(info.value)


# -- from_text: enums, literals, unions, none --------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("RED", Color.RED), ("red", Color.RED), ("GREEN", Color.GREEN), ("2", Color.GREEN),
])
def test_text_enum_by_name_or_value(value: str, expected: Color) -> None:
    assert text(Color, value) is expected


def test_text_int_enum_by_value() -> None:
    assert text(Level, "2") is Level.HIGH
    assert text(Level, "LOW") is Level.LOW


def test_text_enum_rejects() -> None:
    with pytest.raises(ValueError) as info:
        text(Color, "BLUE")
    message = str(info.value)
    for part in ("RED", "GREEN", "Color", "'BLUE'"):
        assert part in message


def test_text_literal() -> None:
    assert same(text(Literal["a", "b"], "b"), "b")
    assert same(text(Literal[1, 2], "2"), 2)


def test_text_literal_rejects() -> None:
    with pytest.raises(ValueError, match=r"expected one of a, b, got 'c'"):
        text(Literal["a", "b"], "c")
    with pytest.raises(ValueError, match=r"got '3'"):
        text(Literal[1, 2], "3")


@pytest.mark.parametrize("value", ["none", "null", "None", "NULL"])
def test_text_optional_none(value: str) -> None:
    assert text(int | None, value) is None


def test_text_optional_value() -> None:
    assert same(text(int | None, "7"), 7)
    assert text(bool | None, "yes") is True
    assert text(bool | None, "none") is None


def test_text_optional_rejects() -> None:
    with pytest.raises(ValueError, match=r"expected int \| None, got 'seven'"):
        text(int | None, "seven")


def test_text_union_prefers_the_typed_option_over_str() -> None:
    assert same(text(Union[str, int], "5"), 5)
    assert same(text(Union[str, int], "five"), "five")
    assert same(text(Union[int, float], "2.5"), 2.5)


def test_text_none_type() -> None:
    assert text(type(None), "null") is None
    with pytest.raises(ValueError, match=r"expected 'none', got 'x'"):
        text(type(None), "x")


def test_text_any_is_json_or_text() -> None:
    assert text(Any, '{"a": [1, 2]}') == {"a": [1, 2]}
    assert text(Any, "just words") == "just words"


# -- from_text: JSON values --------------------------------------------------------------------


def test_text_list_and_dict_as_json() -> None:
    assert text(list[int], "[1, 2, 3]") == [1, 2, 3]
    assert same(text(dict[str, float], '{"a": 1, "b": 2.5}'), {"a": 1.0, "b": 2.5})
    assert same(text(dict[str, float], '{"a": 1}')["a"], 1.0)


def test_text_tuple_as_json() -> None:
    assert same(text(tuple[int, str], '[1, "a"]'), (1, "a"))
    assert same(text(tuple[int, ...], "[1, 2, 3]"), (1, 2, 3))


def test_text_dataclass_as_json() -> None:
    shape = text(Shape, json.dumps({
        "name": "tri", "origin": {"x": 1}, "corners": [{"x": 0, "y": 0}, {"x": 3, "y": 4}],
        "created": "2026-03-01", "tags": {"w": 2}, "color": "RED"}))
    assert shape == Shape("tri", Point(1, 0), [Point(0, 0), Point(3, 4)],
                          datetime.date(2026, 3, 1), {"w": 2.0}, Color.RED)
    assert type(shape.origin) is Point
    assert same(shape.tags["w"], 2.0)


def test_text_bad_json_names_the_type() -> None:
    with pytest.raises(ValueError, match=r"expected JSON for list\[int\]"):
        text(list[int], "1, 2")
    with pytest.raises(ValueError, match="expected JSON for Shape"):
        text(Shape, "{name: tri}")


def test_text_json_with_a_bad_item_says_where() -> None:
    with pytest.raises(ValueError, match=r"value\[1\]: expected an integer, got 'a'"):
        text(list[int], '[1, "a"]')
    with pytest.raises(ValueError, match=r"value\['k'\]\[1\]: expected a number, got 'x'"):
        text(dict[str, list[float]], '{"k": [1, "x"]}')


def test_text_table_reads_the_file(tmp_path: Path) -> None:
    table = pa.table({"a": [1, 2]})
    pq.write_table(table, tmp_path / "t.parquet")
    assert text(pa.Table, str(tmp_path / "t.parquet")).equals(table)
    schema = pa.schema([("a", pa.int64())])
    assert text(Annotated[pa.Table, schema], str(tmp_path / "t.parquet")).equals(table)


def test_text_table_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such file"):
        text(pa.Table, str(tmp_path / "absent.parquet"))


def test_text_file_and_directory_wrap_the_path(tmp_path: Path) -> None:
    file = text(File, str(tmp_path / "a.txt"))
    assert type(file) is File
    assert file.path == str(tmp_path / "a.txt")
    folder = text(Directory, str(tmp_path))
    assert type(folder) is Directory
    assert folder.path == str(tmp_path)


def test_text_pickled_class_is_refused() -> None:
    class Opaque:
        pass

    with pytest.warns(Warning):
        stype = resolve(Opaque)
    with pytest.raises(ValueError, match="Opaque cannot be given as text"):
        from_text(stype, "x")
    with pytest.raises(ValueError, match="Opaque cannot be given as data"):
        from_builtin(stype, "x")


# -- from_builtin ------------------------------------------------------------------------------


@pytest.mark.parametrize(("annotation", "value", "expected"), [
    (int, 3, 3), (int, 3.0, 3), (float, 2, 2.0), (float, 2.5, 2.5), (str, "s", "s"),
    (bool, True, True), (bool, False, False), (bytes, "ab", b"ab"),
    (datetime.datetime, "2026-01-31T08:00:00", datetime.datetime(2026, 1, 31, 8)),
    (datetime.date, "2026-01-31", datetime.date(2026, 1, 31)),
    (datetime.timedelta, 90, datetime.timedelta(seconds=90)),
    (datetime.timedelta, "1h", datetime.timedelta(hours=1)),
    (Color, "RED", Color.RED), (Color, "red", Color.RED), (Color, 2, Color.GREEN),
    (Literal["a", "b"], "a", "a"), (Literal[1, 2], 2, 2),
    (int | None, None, None), (int | None, 4, 4),
    (Any, {"k": [1]}, {"k": [1]}), (type(None), None, None),
])
def test_builtin_leaf_values(annotation: Any, value: Any, expected: Any) -> None:
    got = data(annotation, value)
    assert same(got, expected), got


@pytest.mark.parametrize(("annotation", "value", "message"), [
    (int, 3.5, "value: expected an integer, got 3.5"),
    (int, True, "value: expected an integer, got True"),
    (int, [1], "value: expected an integer, got [1]"),
    (float, True, "value: expected a number, got True"),
    (float, "x", "value: expected a number, got 'x'"),
    (str, 5, "value: expected str, got 5"),
    (bool, 1, "value: expected bool, got 1"),
    (bool, "true", "value: expected bool, got 'true'"),
    (datetime.datetime, 5, "value: expected an ISO date-time"),
    (datetime.date, "01/31/2026", "value: expected an ISO date"),
    (datetime.timedelta, "later", "value: expected a duration"),
    (Color, "BLUE", "value: expected one of RED, GREEN (Color), got 'BLUE'"),
    (Literal["a", "b"], "c", "value: expected one of Literal['a', 'b']"),
    (int | None, "x", "value: expected int | None, got 'x'"),
    (type(None), 0, "value: expected null, got 0"),
    (list[int], "abc", "value: expected list, got 'abc'"),
    (dict[str, int], [1], "value: expected dict, got [1]"),
    (tuple[int, str], [1, "a", 2], "value: expected 2 items, got 3"),
    (tuple[int, str], "ab", "value: expected list or tuple, got 'ab'"),
    (File, 5, "value: expected str, got 5"),
])
def test_builtin_rejects_with_clear_messages(annotation: Any, value: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        data(annotation, value)
    assert message in str(info.value)


def test_builtin_literal_does_not_take_a_bool_for_an_int() -> None:
    with pytest.raises(ValueError, match="Literal"):
        data(Literal[1, 2], True)


def test_builtin_union_keeps_a_json_string_that_str_accepts() -> None:
    # Built by hand: resolve() memoises Union[int, str] and Union[str, int] as one key.
    int_or_str = UnionT(Union[int, str], (resolve(int), resolve(str)))
    assert same(from_builtin(int_or_str, "5"), "5")
    assert same(from_builtin(int_or_str, 5), 5)
    float_or_str = UnionT(Union[float, str], (resolve(float), resolve(str)))
    assert same(from_builtin(float_or_str, "2.5"), "2.5")


def test_builtin_containers() -> None:
    assert data(list[int], [1, 2]) == [1, 2]
    assert same(data(dict[str, float], {"a": 1}), {"a": 1.0})
    assert same(data(dict[str, float], {"a": 1})["a"], 1.0)
    assert same(data(tuple[int, str], [1, "a"]), (1, "a"))
    assert same(data(tuple[int, ...], (1, 2, 3)), (1, 2, 3))
    assert data(list[list[Color]], [["RED"], [2, "red"]]) == [
        [Color.RED], [Color.GREEN, Color.RED]]


def test_builtin_nested_errors_say_where() -> None:
    with pytest.raises(ValueError, match=r"^value\[2\]: expected an integer, got 'x'$"):
        data(list[int], [1, 2, "x"])
    with pytest.raises(ValueError, match=r"^value\['b'\]\[0\]: expected a number, got None$"):
        data(dict[str, list[float]], {"a": [], "b": [None]})
    with pytest.raises(ValueError, match=r"^value\[1\]: expected str, got 2$"):
        data(tuple[int, str], [1, 2])


def test_builtin_dataclass_nested() -> None:
    shape = data(Shape, {"name": "sq", "origin": {"x": 1, "y": 2},
                         "corners": [{"x": 0}], "created": "2026-05-05",
                         "color": 2})
    assert shape == Shape("sq", Point(1, 2), [Point(0, 0)], datetime.date(2026, 5, 5), {},
                          Color.GREEN)
    assert type(shape.corners[0]) is Point
    defaults = data(Shape, {"name": "dot", "origin": {"x": 0}})
    assert defaults == Shape("dot", Point(0))
    assert defaults.created == datetime.date(2026, 1, 1)


def test_builtin_dataclass_errors_say_where() -> None:
    with pytest.raises(ValueError, match=r"^value\.origin\.x: expected an integer, got 'a'$"):
        data(Shape, {"name": "s", "origin": {"x": "a"}})
    with pytest.raises(ValueError, match=r"^value\.corners\[1\]: Point has no field 'z'$"):
        data(Shape, {"name": "s", "origin": {"x": 1}, "corners": [{"x": 1}, {"z": 1}]})
    with pytest.raises(ValueError, match=r"^value: missing field 'origin' of Shape$"):
        data(Shape, {"name": "s"})
    with pytest.raises(ValueError, match=r"^value\.origin: missing field 'x' of Point$"):
        data(Shape, {"name": "s", "origin": {"y": 1}})
    with pytest.raises(ValueError, match=r"^value: expected dict, got \[1\]$"):
        data(Shape, [1])
    with pytest.raises(ValueError, match=r"^value\.created: expected an ISO date"):
        data(Shape, {"name": "s", "origin": {"x": 1}, "created": "soon"})


def test_builtin_where_prefix_is_used() -> None:
    with pytest.raises(ValueError, match=r"^config\.origin\.x: expected an integer"):
        from_builtin(resolve(Shape), {"name": "s", "origin": {"x": "a"}}, "config")


def test_builtin_table_from_rows_or_path(tmp_path: Path) -> None:
    table = data(pa.Table, [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}])
    assert table.equals(pa.table({"a": [1, 2], "b": ["x", "y"]}))
    pcsv.write_csv(table, tmp_path / "t.csv")
    assert data(pa.Table, str(tmp_path / "t.csv")).equals(table)
    with pytest.raises(ValueError, match=r"value: expected list, got \{'a': 1\}"):
        data(pa.Table, {"a": 1})
    with pytest.raises(ValueError, match="no such file"):
        data(pa.Table, str(tmp_path / "missing.csv"))


def test_builtin_file_and_directory(tmp_path: Path) -> None:
    file = data(File, str(tmp_path / "f.bin"))
    assert type(file) is File
    assert file.path == str(tmp_path / "f.bin")
    assert type(data(Directory, str(tmp_path))) is Directory


# -- parse_duration ----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    (90, datetime.timedelta(seconds=90)),
    (1.5, datetime.timedelta(seconds=1.5)),
    ("90", datetime.timedelta(seconds=90)),
    ("0.25", datetime.timedelta(seconds=0.25)),
    ("90s", datetime.timedelta(seconds=90)),
    ("15m", datetime.timedelta(minutes=15)),
    ("2h", datetime.timedelta(hours=2)),
    ("1h30m", datetime.timedelta(hours=1, minutes=30)),
    ("1h 30m", datetime.timedelta(hours=1, minutes=30)),
    ("2d", datetime.timedelta(days=2)),
    ("2d3h4m5s", datetime.timedelta(days=2, hours=3, minutes=4, seconds=5)),
    ("250ms", datetime.timedelta(milliseconds=250)),
    ("1.5h", datetime.timedelta(minutes=90)),
    (" 45s ", datetime.timedelta(seconds=45)),
])
def test_parse_duration(value: Any, expected: datetime.timedelta) -> None:
    assert parse_duration(value) == expected


def test_parse_duration_minutes_and_milliseconds_are_not_confused() -> None:
    assert parse_duration("5m") == datetime.timedelta(minutes=5)
    assert parse_duration("5ms") == datetime.timedelta(milliseconds=5)


@pytest.mark.parametrize("value", ["", "abc", "1h30", "h", "5 weeks", "1x", "m5", True])
def test_parse_duration_rejects(value: Any) -> None:
    with pytest.raises(ValueError, match="not a duration") as info:
        parse_duration(value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("value", ["inf", "nan", "1e30", float("inf")],
                         ids=["text-inf", "text-nan", "text-1e30", "float-inf"])
def test_parse_duration_out_of_range_is_a_value_error(value: Any) -> None:
    with pytest.raises(ValueError, match="duration") as info:
        parse_duration(value)
    assert repr(value) in str(info.value)


# -- read_table --------------------------------------------------------------------------------


@pytest.fixture()
def sample() -> pa.Table:
    return pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"], "score": [0.5, 1.5, 2.5]})


@pytest.mark.parametrize("suffix", [".parquet", ".PARQUET"])
def test_read_parquet(tmp_path: Path, sample: pa.Table, suffix: str) -> None:
    path = tmp_path / f"data{suffix}"
    pq.write_table(sample, path)
    assert read_table(str(path)).equals(sample)


def test_read_csv(tmp_path: Path, sample: pa.Table) -> None:
    path = tmp_path / "data.csv"
    pcsv.write_csv(sample, path)
    table = read_table(str(path))
    assert table.equals(sample)
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("score").type == pa.float64()


@pytest.mark.parametrize("suffix", [".arrow", ".feather", ".ipc"])
def test_read_arrow_ipc(tmp_path: Path, sample: pa.Table, suffix: str) -> None:
    path = tmp_path / f"data{suffix}"
    feather.write_feather(sample, path)
    assert read_table(str(path)).equals(sample)


def test_read_table_keeps_the_written_schema(tmp_path: Path) -> None:
    table = pa.table({"day": pa.array([datetime.date(2026, 1, 1)], pa.date32()),
                      "n": pa.array([1], pa.int32())})
    pq.write_table(table, tmp_path / "d.parquet")
    feather.write_feather(table, tmp_path / "d.arrow")
    assert read_table(str(tmp_path / "d.parquet")).schema.equals(table.schema)
    assert read_table(str(tmp_path / "d.arrow")).schema.equals(table.schema)


def test_read_table_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such file") as info:
        read_table(str(tmp_path / "gone.parquet"))
    assert "gone.parquet" in str(info.value)


def test_read_table_directory_is_not_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "looks.parquet"
    folder.mkdir()
    with pytest.raises(ValueError, match="no such file"):
        read_table(str(folder))


@pytest.mark.parametrize("name", ["data.json", "data.xlsx", "data"])
def test_read_table_unsupported_format(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"expected a \.parquet, \.csv or \.arrow file") as info:
        read_table(str(path))
    assert name in str(info.value)


def test_read_corrupt_parquet_is_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"definitely not parquet")
    with pytest.raises(ValueError):
        read_table(str(path))
