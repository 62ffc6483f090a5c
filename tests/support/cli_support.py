"""Helpers shared by the CLI tests (on sys.path through pytest's ``pythonpath``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from click.testing import CliRunner, Result

from sterna.cli.main import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
QUICKSTART = EXAMPLES / "quickstart.py"


def invoke(*args: object) -> Result:
    """Run the ``sterna`` command in-process."""
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="sterna")


def assert_user_error(result: Result, *fragments: str) -> str:
    """A user mistake: non-zero exit, no traceback, one 'Error:' line holding every fragment."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert result.stdout == ""
    return lines[0]


@contextmanager
def forgetting_loaded_pipelines(*roots: Path) -> Iterator[None]:
    """Drop the pipeline modules loaded from ``roots`` and the folders put on sys.path."""
    path_before = list(sys.path)
    modules_before = set(sys.modules)
    yield
    sys.path[:] = path_before
    resolved = [root.resolve() for root in roots]
    for name in set(sys.modules) - modules_before:
        file = getattr(sys.modules[name], "__file__", None)
        if file and any(Path(file).resolve().is_relative_to(root) for root in resolved):
            del sys.modules[name]
