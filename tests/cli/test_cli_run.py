"""``sterna run FILE.py NAME``: finding and running entities, printing outputs, help, errors."""

import itertools
import textwrap
from pathlib import Path

import pytest
from cli_support import QUICKSTART, assert_user_error, invoke

import sterna

_seq = itertools.count()


def write_pipeline(folder: Path, source: str, stem: str = "pipe") -> Path:
    """Write a pipeline file with a module name no other test uses."""
    path = folder / f"clirun_{stem}_{next(_seq)}.py"
    path.write_text(textwrap.dedent(source))
    return path



BASIC = '''
    from typing import NamedTuple

    import pyarrow as pa

    from sterna import task, workflow


    class Stats(NamedTuple):
        total: int
        label: str


    @task
    def double(x: int) -> int:
        """Twice x."""
        return 2 * x


    @task
    def add(a: int, b: int = 1) -> int:
        return a + b


    @workflow
    def pipeline(x: int, offset: int = 1) -> int:
        """Double x, then add an offset.

        A second paragraph that the listing leaves out.
        """
        return add(a=double(x=x), b=offset)


    @task
    def stats(n: int) -> Stats:
        return Stats(n * 3, f"n={n}")


    @task
    def pair(n: int) -> tuple[int, str]:
        return n + 1, "ok"


    @task
    def make_table(rows: int) -> pa.Table:
        return pa.table({"id": list(range(rows)), "name": [f"r{i}" for i in range(rows)]})


    @task
    def greet(name: str) -> str:
        return f"hello {name}"


    @task
    def nothing(x: int) -> None:
        return None


    @workflow
    def _hidden(x: int) -> int:
        return double(x=x)
'''


@pytest.fixture()
def basic(tmp_path: Path) -> Path:
    return write_pipeline(tmp_path, BASIC, "basic")


# -- running and printing ----------------------------------------------------------------------


def test_run_workflow_prints_single_output(basic: Path) -> None:
    result = invoke("run", basic, "pipeline", "--x", "5")
    assert result.exit_code == 0, result.output
    assert result.stdout == "11\n"


def test_run_workflow_uses_given_and_default_inputs(basic: Path) -> None:
    given = invoke("run", basic, "pipeline", "--x", "5", "--offset", "100")
    assert given.exit_code == 0, given.output
    assert given.stdout == "110\n"


def test_run_reports_status_on_stderr_not_stdout(basic: Path) -> None:
    result = invoke("run", basic, "pipeline", "--x", "2")
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.stderr
    assert "2 nodes" in result.stderr
    assert "succeeded" not in result.stdout


def test_run_single_task(basic: Path) -> None:
    result = invoke("run", basic, "add", "--a", "40", "--b", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout == "42\n"


def test_run_finds_entity_by_full_sterna_name(basic: Path) -> None:
    result = invoke("run", basic, f"{basic.stem}.double", "--x", "21")
    assert result.exit_code == 0, result.output
    assert result.stdout == "42\n"


def test_string_output_is_printed_without_quotes(basic: Path) -> None:
    result = invoke("run", basic, "greet", "--name", "world")
    assert result.exit_code == 0, result.output
    assert result.stdout == "hello world\n"


def test_namedtuple_outputs_are_printed_by_name(basic: Path) -> None:
    result = invoke("run", basic, "stats", "--n", "4")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["total: 12", "label: n=4"]


def test_tuple_outputs_are_printed_by_name(basic: Path) -> None:
    result = invoke("run", basic, "pair", "--n", "4")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["o0: 5", "o1: ok"]


def test_task_without_outputs_prints_nothing(basic: Path) -> None:
    result = invoke("run", basic, "nothing", "--x", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""


def test_table_output_is_summarised_not_dumped(basic: Path) -> None:
    result = invoke("run", basic, "make_table", "--rows", "25000")
    assert result.exit_code == 0, result.output
    out = result.stdout.strip()
    assert "25,000 rows" in out
    assert "2 columns" in out
    assert "id: int64" in out
    assert "name: string" in out
    assert "r24999" not in out
    assert len(out.splitlines()) == 1


def test_executor_serial_is_accepted(basic: Path) -> None:
    result = invoke("run", "--executor", "serial", basic, "pipeline", "--x", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout == "3\n"


def test_unknown_executor_is_a_user_error(basic: Path) -> None:
    result = invoke("run", "--executor", "bogus", basic, "pipeline", "--x", "1")
    assert_user_error(result, "--executor", "bogus", "serial")


def test_loads_a_file_inside_a_package_under_its_dotted_name(tmp_path: Path) -> None:
    package = tmp_path / f"clirunpkg_{next(_seq)}"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("FACTOR = 7\n")
    (package / "flow.py").write_text(textwrap.dedent('''
        from sterna import task

        from .helpers import FACTOR


        @task
        def scale(x: int) -> int:
            return FACTOR * x
    '''))
    result = invoke("run", package / "flow.py", "scale", "--x", "3")
    assert result.exit_code == 0, result.output
    assert result.stdout == "21\n"
    by_name = invoke("run", package / "flow.py", f"{package.name}.flow.scale", "--x", "2")
    assert by_name.exit_code == 0, by_name.output
    assert by_name.stdout == "14\n"


def test_same_file_twice_in_one_process(basic: Path) -> None:
    first = invoke("run", basic, "double", "--x", "1")
    second = invoke("run", basic, "double", "--x", "2")
    assert (first.stdout, second.stdout) == ("2\n", "4\n")


def test_files_with_the_same_name_in_different_folders_run_their_own_code(
        tmp_path: Path) -> None:
    stem = f"clirun_same_{next(_seq)}"
    for folder, word in (("one", "first"), ("two", "second")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / f"{stem}.py").write_text(textwrap.dedent(f'''
            from sterna import task


            @task
            def which() -> str:
                return "{word}"
        '''))
    first = invoke("run", tmp_path / "one" / f"{stem}.py", "which")
    assert first.exit_code == 0, first.output
    assert first.stdout == "first\n"
    second = invoke("run", tmp_path / "two" / f"{stem}.py", "which")
    # Either the second file runs, or the clash is reported; never the first file's code.
    assert second.stdout != "first\n", "ran the other file's task"
    if second.exit_code == 0:
        assert second.stdout == "second\n"
    else:
        assert_user_error(second, stem)


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert "sterna" in result.stdout
    assert sterna.__version__ in result.stdout


# -- help --------------------------------------------------------------------------------------


def test_help_of_a_file_lists_workflows_and_tasks(basic: Path) -> None:
    result = invoke("run", basic, "--help")
    assert result.exit_code == 0, result.output
    listing = result.stdout
    for name in ("pipeline", "double", "add", "stats", "pair", "make_table", "greet"):
        assert name in listing
    pipeline_line = next(line for line in listing.splitlines() if "pipeline" in line)
    assert "workflow" in pipeline_line
    assert "Double x, then add an offset." in pipeline_line
    double_line = next(line for line in listing.splitlines() if line.strip().startswith("double"))
    assert "task" in double_line
    assert "Twice x." in double_line
    assert "_hidden" not in listing
    assert "second paragraph" not in listing


def test_help_of_a_workflow_lists_inputs_types_and_defaults(basic: Path) -> None:
    result = invoke("run", basic, "pipeline", "--help")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "Double x, then add an offset." in text
    x_line = next(line for line in text.splitlines() if line.strip().startswith("--x"))
    assert "int" in x_line
    assert "required" in x_line
    offset_line = next(line for line in text.splitlines() if "--offset" in line)
    assert "int" in offset_line
    assert "default: 1" in offset_line


def test_help_of_quickstart_workflow_shows_date_and_int_defaults() -> None:
    result = invoke("run", QUICKSTART, "daily_report", "--help")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    days = next(line for line in lines if "--days" in line)
    assert "int" in days
    assert "default: 30" in days
    start = next(line for line in lines if "--start" in line)
    assert "date" in start
    assert "default: 2026-01-01" in start  # as it would be typed, not a Python repr


def test_help_does_not_run_the_workflow(tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    path = write_pipeline(tmp_path, f'''
        from sterna import task


        @task
        def touch(x: int) -> int:
            open({str(marker)!r}, "w").close()
            return x
    ''', "helponly")
    result = invoke("run", path, "touch", "--help")
    assert result.exit_code == 0, result.output
    assert "--x" in result.stdout
    assert not marker.exists()


# -- user mistakes: one line, no traceback -----------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_pipeline.py"
    assert_user_error(invoke("run", missing, "anything"), "no such file", "no_such_pipeline.py")


def test_not_a_python_file(tmp_path: Path) -> None:
    text = tmp_path / "pipeline.txt"
    text.write_text("x = 1\n")
    assert_user_error(invoke("run", text, "anything"), "pipeline.txt", ".py")


def test_unknown_name_lists_the_available_ones(basic: Path) -> None:
    line = assert_user_error(invoke("run", basic, "nope"), "'nope'")
    for name in ("add", "double", "greet", "pipeline", "stats"):
        assert name in line


def test_bad_input_value_names_the_option_and_what_was_expected(basic: Path) -> None:
    result = invoke("run", basic, "pipeline", "--x", "five")
    assert_user_error(result, "--x", "integer", "'five'")


def test_missing_required_input_names_it(basic: Path) -> None:
    line = assert_user_error(invoke("run", basic, "pipeline", "--offset", "2"))
    assert "missing" in line.lower()
    assert "'x'" in line or "--x" in line


def test_option_without_value(basic: Path) -> None:
    assert_user_error(invoke("run", basic, "pipeline", "--x"), "--x")


def test_unknown_option(basic: Path) -> None:
    assert_user_error(invoke("run", basic, "pipeline", "--x", "1", "--y", "2"), "--y")


def test_workflow_definition_error_in_the_file(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, '''
        from sterna import task, workflow


        @task
        def make() -> str:
            return "x"


        @task
        def need(n: int) -> int:
            return n


        @workflow
        def broken() -> int:
            return need(n=make())
    ''', "baddef")
    result = invoke("run", path, "broken")
    assert_user_error(result, f"{path.stem}.broken", f"{path.stem}.make", "'n'", "str", "int")


def test_task_definition_error_in_the_file(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, '''
        from sterna import task


        @task
        def untyped(x) -> int:
            return x
    ''', "badtask")
    assert_user_error(invoke("run", path, "untyped", "--x", "1"), "untyped", "'x'", "annotation")


def test_definition_error_is_reported_for_help_too(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, '''
        from sterna import task


        @task
        def untyped(x) -> int:
            return x
    ''', "badhelp")
    assert_user_error(invoke("run", path, "--help"), "untyped", "'x'")


def test_wrong_typed_input_is_one_line(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, '''
        from sterna import File, task


        @task
        def size(f: File) -> int:
            return len(f.read_bytes())
    ''', "wrongtype")
    missing = tmp_path / "absent.bin"
    assert_user_error(invoke("run", path, "size", "--f", missing), f"task '{path.stem}.size'",
                      "input 'f'", "expected File", "absent.bin", "not an existing file")


# -- a failing task: its own traceback, then the error line ------------------------------------


FAILING = '''
    from sterna import task, workflow


    @task
    def explode(x: int) -> int:
        if x > 2:
            raise ValueError(f"x too large: {x}")
        return x


    @task
    def minus_one(x: int) -> int:
        return x - 1


    @workflow
    def flow(x: int) -> int:
        return explode(x=explode(x=minus_one(x=x)))
'''


def test_failing_task_prints_its_traceback_and_the_error_line(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, FAILING, "failing")
    result = invoke("run", path, "flow", "--x", "6")
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    err = result.stderr
    assert "Traceback" in err
    assert str(path) in err
    assert 'raise ValueError(f"x too large: {x}")' in err
    assert "ValueError: x too large: 5" in err
    assert "core/engine.py" not in err
    assert "click" not in err
    lines = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1
    assert f"{path.stem}.explode" in lines[0]
    assert "ValueError: x too large: 5" in lines[0]
    assert err.index("Traceback") < err.index("Error:")
    assert result.stdout == ""


def test_task_that_succeeds_after_the_same_file_failed(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, FAILING, "failing_ok")
    assert invoke("run", path, "flow", "--x", "9").exit_code != 0
    result = invoke("run", path, "flow", "--x", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout == "1\n"
