"""``sterna run ... --input value``: each input parsed from text by its annotation."""

import itertools
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from cli_support import assert_user_error, invoke

_seq = itertools.count()



INPUTS = '''
    import datetime
    import enum
    from dataclasses import dataclass
    from typing import Annotated, Literal, Optional

    import pyarrow as pa

    from sterna import Directory, File, task

    SCHEMA = pa.schema([("a", pa.int64()), ("b", pa.string())])


    class Mode(enum.Enum):
        FAST = "fast"
        SLOW = 2


    @dataclass(frozen=True)
    class Point:
        x: int
        y: int = 0


    @dataclass(frozen=True)
    class Shape:
        name: str
        origin: Point
        corners: list[Point]
        created: datetime.date


    @task
    def show_int(v: int) -> str:
        return repr(v)


    @task
    def show_float(v: float) -> str:
        return repr(v)


    @task
    def show_bool(v: bool) -> str:
        return repr(v)


    @task
    def show_str(v: str) -> str:
        return repr(v)


    @task
    def show_datetime(v: datetime.datetime) -> str:
        return repr(v)


    @task
    def show_date(v: datetime.date) -> str:
        return repr(v)


    @task
    def show_timedelta(v: datetime.timedelta) -> str:
        return repr(v.total_seconds())


    @task
    def show_mode(v: Mode) -> str:
        return repr(v)


    @task
    def show_literal(v: Literal["small", "large"]) -> str:
        return repr(v)


    @task
    def show_int_literal(v: Literal[1, 2]) -> str:
        return repr(v)


    @task
    def show_optional(v: Optional[int] = 5) -> str:
        return repr(v)


    @task
    def show_list(v: list[int]) -> str:
        return repr(v)


    @task
    def show_dict(v: dict[str, list[float]]) -> str:
        return repr(v)


    @task
    def show_tuple(v: tuple[int, str]) -> str:
        return repr(v)


    @task
    def show_shape(v: Shape) -> str:
        return repr(v)


    @task
    def table_rows(t: pa.Table) -> pa.Table:
        return t


    @task
    def typed_table(t: Annotated[pa.Table, SCHEMA]) -> int:
        return t.num_rows


    @task
    def read_file(f: File) -> str:
        return f.read_text()


    @task
    def count_files(d: Directory) -> int:
        return len(d.files())


    @task
    def shift(start_day: datetime.date, extra_days: int = 0) -> str:
        return (start_day + datetime.timedelta(days=extra_days)).isoformat()
'''


@pytest.fixture()
def pipeline(tmp_path: Path) -> Path:
    path = tmp_path / f"cliinputs_pipe_{next(_seq)}.py"
    path.write_text(textwrap.dedent(INPUTS))
    return path


def shown(pipeline: Path, name: str, *args: str) -> str:
    result = invoke("run", pipeline, name, *args)
    assert result.exit_code == 0, result.output
    return result.stdout.rstrip("\n")


# -- scalars -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [("42", "42"), ("-7", "-7"), ("0", "0")])
def test_int(pipeline: Path, text: str, expected: str) -> None:
    assert shown(pipeline, "show_int", "--v", text) == expected


@pytest.mark.parametrize("text", ["4.5", "abc", ""])
def test_int_rejects_non_integers(pipeline: Path, text: str) -> None:
    assert_user_error(invoke("run", pipeline, "show_int", "--v", text), "--v", "integer",
                      repr(text))


@pytest.mark.parametrize(("text", "expected"), [("2.5", "2.5"), ("3", "3.0"), ("1e3", "1000.0")])
def test_float(pipeline: Path, text: str, expected: str) -> None:
    assert shown(pipeline, "show_float", "--v", text) == expected


def test_float_rejects_text(pipeline: Path) -> None:
    assert_user_error(invoke("run", pipeline, "show_float", "--v", "much"), "--v", "number",
                      "'much'")


@pytest.mark.parametrize(("text", "expected"), [
    ("true", "True"), ("false", "False"), ("yes", "True"), ("no", "False"),
    ("1", "True"), ("0", "False"), ("TRUE", "True"), ("No", "False"),
])
def test_bool(pipeline: Path, text: str, expected: str) -> None:
    assert shown(pipeline, "show_bool", "--v", text) == expected


def test_bool_rejects_other_words(pipeline: Path) -> None:
    assert_user_error(invoke("run", pipeline, "show_bool", "--v", "maybe"), "--v", "true",
                      "false", "'maybe'")


@pytest.mark.parametrize("text", ["hello world", "42", "none", "[1, 2]", ""])
def test_str_is_taken_verbatim(pipeline: Path, text: str) -> None:
    assert shown(pipeline, "show_str", "--v", text) == repr(text)


def test_datetime_iso(pipeline: Path) -> None:
    assert shown(pipeline, "show_datetime", "--v", "2026-01-31T12:30:05") == (
        "datetime.datetime(2026, 1, 31, 12, 30, 5)")
    assert shown(pipeline, "show_datetime", "--v", "2026-01-31") == (
        "datetime.datetime(2026, 1, 31, 0, 0)")


def test_datetime_rejects_non_iso(pipeline: Path) -> None:
    assert_user_error(invoke("run", pipeline, "show_datetime", "--v", "31/01/2026 12:00"),
                      "--v", "ISO", "'31/01/2026 12:00'")


def test_date_iso(pipeline: Path) -> None:
    assert shown(pipeline, "show_date", "--v", "2026-02-28") == "datetime.date(2026, 2, 28)"


@pytest.mark.parametrize("text", ["2026-02-30", "tomorrow", "2026-01-31T12:00:00"])
def test_date_rejects_bad_dates(pipeline: Path, text: str) -> None:
    assert_user_error(invoke("run", pipeline, "show_date", "--v", text), "--v", "ISO date",
                      repr(text))


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90.0), ("1.5", 1.5), ("90s", 90.0), ("1h30m", 5400.0), ("2d", 172800.0),
    ("250ms", 0.25),
])
def test_timedelta(pipeline: Path, text: str, seconds: float) -> None:
    assert shown(pipeline, "show_timedelta", "--v", text) == repr(seconds)


@pytest.mark.parametrize("text", ["soon", "1h30", "5 parsecs"])
def test_timedelta_rejects_non_durations(pipeline: Path, text: str) -> None:
    assert_user_error(invoke("run", pipeline, "show_timedelta", "--v", text), "--v",
                      "duration", repr(text))


@pytest.mark.parametrize("text", ["inf", "1e30"])
def test_timedelta_out_of_range_is_a_user_error(pipeline: Path, text: str) -> None:
    assert_user_error(invoke("run", pipeline, "show_timedelta", "--v", text), "--v", repr(text))


# -- enums, literals, optionals ----------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("FAST", "<Mode.FAST: 'fast'>"), ("fast", "<Mode.FAST: 'fast'>"),
    ("SLOW", "<Mode.SLOW: 2>"), ("2", "<Mode.SLOW: 2>"),
])
def test_enum_by_name_or_value(pipeline: Path, text: str, expected: str) -> None:
    assert shown(pipeline, "show_mode", "--v", text) == expected


def test_enum_rejects_unknown_member(pipeline: Path) -> None:
    assert_user_error(invoke("run", pipeline, "show_mode", "--v", "MEDIUM"), "--v", "FAST",
                      "SLOW", "Mode", "'MEDIUM'")


def test_literal(pipeline: Path) -> None:
    assert shown(pipeline, "show_literal", "--v", "large") == "'large'"
    assert shown(pipeline, "show_int_literal", "--v", "2") == "2"


def test_literal_rejects_other_values(pipeline: Path) -> None:
    assert_user_error(invoke("run", pipeline, "show_literal", "--v", "medium"), "--v", "small",
                      "large", "'medium'")
    assert_user_error(invoke("run", pipeline, "show_int_literal", "--v", "3"), "--v", "'3'")


@pytest.mark.parametrize(("args", "expected"), [
    (["--v", "none"], "None"), (["--v", "null"], "None"), (["--v", "None"], "None"),
    (["--v", "7"], "7"), ([], "5"),
])
def test_optional(pipeline: Path, args: list[str], expected: str) -> None:
    assert shown(pipeline, "show_optional", *args) == expected


def test_optional_rejects_other_text(pipeline: Path) -> None:
    assert_user_error(invoke("run", pipeline, "show_optional", "--v", "seven"), "--v", "int",
                      "None", "'seven'")


# -- JSON: lists, dicts, tuples, dataclasses ---------------------------------------------------


def test_list_as_json(pipeline: Path) -> None:
    assert shown(pipeline, "show_list", "--v", "[1, 2, 3]") == "[1, 2, 3]"
    assert shown(pipeline, "show_list", "--v", "[]") == "[]"


def test_list_with_a_bad_item_says_where(pipeline: Path) -> None:
    assert_user_error(invoke("run", pipeline, "show_list", "--v", '[1, "two"]'), "--v", "[1]",
                      "integer", "'two'")


def test_list_that_is_not_json(pipeline: Path) -> None:
    assert_user_error(invoke("run", pipeline, "show_list", "--v", "1,2"), "--v", "JSON",
                      "list[int]")


def test_list_given_an_object(pipeline: Path) -> None:
    assert_user_error(invoke("run", pipeline, "show_list", "--v", '{"a": 1}'), "--v",
                      "expected list")


def test_dict_as_json_with_coercion_to_float(pipeline: Path) -> None:
    assert shown(pipeline, "show_dict", "--v", '{"a": [1, 2.5], "b": []}') == (
        "{'a': [1.0, 2.5], 'b': []}")


def test_dict_with_a_bad_value_says_where(pipeline: Path) -> None:
    assert_user_error(invoke("run", pipeline, "show_dict", "--v", '{"a": [1, "x"]}'), "--v",
                      "['a'][1]", "number", "'x'")


def test_tuple_as_json_list(pipeline: Path) -> None:
    assert shown(pipeline, "show_tuple", "--v", '[3, "c"]') == "(3, 'c')"


def test_tuple_of_wrong_length(pipeline: Path) -> None:
    assert_user_error(invoke("run", pipeline, "show_tuple", "--v", '[3, "c", 4]'), "--v",
                      "2 items", "3")


def test_nested_dataclass_as_json(pipeline: Path) -> None:
    value = ('{"name": "tri", "origin": {"x": 1}, "corners": [{"x": 0, "y": 0}, {"x": 3, "y": 4}],'
             ' "created": "2026-01-31"}')
    assert shown(pipeline, "show_shape", "--v", value) == (
        "Shape(name='tri', origin=Point(x=1, y=0), corners=[Point(x=0, y=0), Point(x=3, y=4)], "
        "created=datetime.date(2026, 1, 31))")


def test_nested_dataclass_with_a_bad_field_says_where(pipeline: Path) -> None:
    value = ('{"name": "tri", "origin": {"x": 1}, "corners": [{"x": 0}, {"x": "far"}],'
             ' "created": "2026-01-31"}')
    assert_user_error(invoke("run", pipeline, "show_shape", "--v", value), "--v",
                      "corners[1].x", "integer", "'far'")


def test_dataclass_with_unknown_and_missing_fields(pipeline: Path) -> None:
    unknown = '{"name": "t", "origin": {"x": 1, "z": 2}, "corners": [], "created": "2026-01-01"}'
    assert_user_error(invoke("run", pipeline, "show_shape", "--v", unknown), "--v", "Point",
                      "'z'")
    missing = '{"name": "t", "corners": [], "created": "2026-01-01"}'
    assert_user_error(invoke("run", pipeline, "show_shape", "--v", missing), "--v", "missing",
                      "'origin'")


# -- tables, files and directories from paths --------------------------------------------------


@pytest.fixture()
def table() -> pa.Table:
    return pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]})


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".arrow"])
def test_table_from_a_file(pipeline: Path, tmp_path: Path, table: pa.Table, suffix: str) -> None:
    path = tmp_path / f"data{suffix}"
    if suffix == ".parquet":
        pq.write_table(table, path)
    elif suffix == ".csv":
        pcsv.write_csv(table, path)
    else:
        feather.write_feather(table, path)
    assert shown(pipeline, "table_rows", "--t", str(path)) == (
        "pa.Table: 3 rows x 2 columns (a: int64, b: string)")
    assert shown(pipeline, "typed_table", "--t", str(path)) == "3"


def test_table_from_a_missing_file(pipeline: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nothing.parquet"
    assert_user_error(invoke("run", pipeline, "table_rows", "--t", missing), "--t",
                      "no such file", "nothing.parquet")


def test_table_from_an_unsupported_format(pipeline: Path, tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_text("a,b\n1,x\n")
    assert_user_error(invoke("run", pipeline, "table_rows", "--t", path), "--t", ".parquet",
                      ".csv", "data.xlsx")


def test_table_from_a_corrupt_file(pipeline: Path, tmp_path: Path) -> None:
    path = tmp_path / "corrupt.parquet"
    path.write_bytes(b"not parquet at all")
    assert_user_error(invoke("run", pipeline, "table_rows", "--t", path), "--t")


def test_table_with_the_wrong_schema_is_a_one_line_type_error(pipeline: Path,
                                                              tmp_path: Path) -> None:
    path = tmp_path / "wrong.csv"
    pcsv.write_csv(pa.table({"a": [1.5], "c": ["q"]}), path)
    result = invoke("run", pipeline, "typed_table", "--t", path)
    assert_user_error(result, f"task '{pipeline.stem}.typed_table'", "input 't'",
                      "expected pa.Table[a: int64, b: string]", "double")


def test_file_from_a_path(pipeline: Path, tmp_path: Path) -> None:
    path = tmp_path / "note.txt"
    path.write_text("hello from a file")
    assert shown(pipeline, "read_file", "--f", str(path)) == "hello from a file"


def test_file_that_does_not_exist(pipeline: Path, tmp_path: Path) -> None:
    assert_user_error(invoke("run", pipeline, "read_file", "--f", tmp_path / "gone.txt"),
                      f"task '{pipeline.stem}.read_file'", "input 'f'",
                      "expected File", "gone.txt")


def test_file_given_a_directory(pipeline: Path, tmp_path: Path) -> None:
    assert_user_error(invoke("run", pipeline, "read_file", "--f", tmp_path), "read_file", "'f'",
                      "File")


def test_directory_from_a_path(pipeline: Path, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.txt", "b.txt", "sub/c.txt"):
        (folder / name).write_text(name)
    assert shown(pipeline, "count_files", "--d", str(folder)) == "3"


def test_directory_that_does_not_exist(pipeline: Path, tmp_path: Path) -> None:
    assert_user_error(invoke("run", pipeline, "count_files", "--d", tmp_path / "nowhere"),
                      f"task '{pipeline.stem}.count_files'",
                      "input 'd'", "expected Directory", "nowhere")


# -- option names ------------------------------------------------------------------------------


def test_underscored_inputs_take_dashed_options(pipeline: Path) -> None:
    assert shown(pipeline, "shift", "--start-day", "2026-01-30", "--extra-days", "3") == (
        "2026-02-02")


def test_underscored_inputs_take_underscored_options(pipeline: Path) -> None:
    assert shown(pipeline, "shift", "--start_day", "2026-01-30", "--extra_days", "1") == (
        "2026-01-31")


def test_dashed_option_defaults_and_errors(pipeline: Path) -> None:
    assert shown(pipeline, "shift", "--start-day", "2026-12-31") == "2026-12-31"
    assert_user_error(invoke("run", pipeline, "shift", "--start-day", "soon"), "start", "'soon'")


def test_help_shows_each_inputs_type(pipeline: Path) -> None:
    result = invoke("run", pipeline, "shift", "--help")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    start = next(line for line in lines if "--start-day" in line)
    assert "date" in start
    assert "required" in start
    extra = next(line for line in lines if "--extra-days" in line)
    assert "int" in extra
    assert "default: 0" in extra
