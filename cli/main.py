"""The ``sterna`` command line: thin commands over the public API.

User mistakes (a missing file, an unknown workflow, a bad input) print one
line and exit 1 without a traceback; a failing task prints its own traceback.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import click

import sterna
from sterna.core.errors import SternaError, TaskFailedError
from sterna.core.task import Task
from sterna.core.workflow import Workflow

from .loader import LoadError, entities, find, load_module
from .params import format_output, input_option

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(sterna.__version__, prog_name="sterna")
def cli() -> None:
    """sterna: typed, cached pipelines, local first."""


def _load(path: str) -> Any:
    try:
        return load_module(path)
    except LoadError as exc:
        raise click.ClickException(str(exc)) from None
    except SternaError as exc:
        raise click.ClickException(f"cannot load {path}: {exc}") from None
    except Exception as exc:
        click.echo(_user_traceback(exc, path), err=True, nl=False)
        raise click.ClickException(
            f"cannot load {path}: {type(exc).__name__}: {exc}") from None


def _user_traceback(exc: BaseException, path: str) -> str:
    """The traceback from the first frame of the user's file on."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != str(_resolved(path)):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))


def _resolved(path: str) -> str:
    from pathlib import Path

    return str(Path(path).resolve())


class EntityCommand(click.Command):
    """``sterna run FILE NAME --input value ...`` for one workflow or task."""

    def __init__(self, target: Workflow[..., Any] | Task[..., Any]) -> None:
        kind = "workflow" if isinstance(target, Workflow) else "task"
        doc = (target.__doc__ or "").strip()
        super().__init__(
            name=target.__name__, context_settings=CONTEXT,
            params=[input_option(p) for p in target.interface.inputs.values()],
            callback=self._run, help=f"Run {kind} {target.name}.\n\n{doc}".strip(),
            short_help=f"{kind}: {doc.splitlines()[0] if doc else target.name}")
        self.target = target

    def _run(self, **values: Any) -> None:
        ctx = click.get_current_context()
        given = {name: value for name, value in values.items()
                 if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT}
        options = ctx.find_root().meta.get("sterna.run", {})
        try:
            result = sterna.run(self.target, inputs=given, **options)
        except TaskFailedError as exc:
            if exc.traceback:
                click.echo(exc.traceback, err=True, nl=False)
            raise click.ClickException(str(exc)) from None
        except SternaError as exc:
            raise click.ClickException(str(exc)) from None
        _print_outputs(result)


def _print_outputs(result: sterna.Run) -> None:
    click.echo(f"run {result.run_id} {result.status} in {result.duration * 1e3:.1f} ms "
               f"({len(result.nodes)} nodes)", err=True)
    outputs = result.outputs_by_name
    if list(outputs) == ["o0"]:
        click.echo(format_output(outputs["o0"]))
        return
    for name, value in outputs.items():
        click.echo(f"{name}: {format_output(value)}")


class FileCommand(click.Group):
    """``sterna run FILE``: the workflows and tasks of one file, as subcommands."""

    def __init__(self, path: str) -> None:
        super().__init__(name=path, context_settings=CONTEXT,
                         help=f"Workflows and tasks in {path}.")
        self.path = path

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(entities(_load(self.path)))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = _load(self.path)
        try:
            return EntityCommand(find(module, cmd_name))
        except LoadError as exc:
            raise click.ClickException(str(exc)) from None


class RunCommand(click.Group):
    """Resolves ``sterna run FILE ...`` to the file's command group."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return []

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return FileCommand(cmd_name)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[OPTIONS] FILE.py NAME [--INPUT VALUE ...]")


@cli.group(cls=RunCommand, context_settings=CONTEXT)
@click.option("--executor", type=click.Choice(["serial", "process", "ray"]), default=None,
              help="Where tasks run (default: STERNA_EXECUTOR or serial).")
@click.pass_context
def run(ctx: click.Context, executor: str | None) -> None:
    """Run a workflow or task from a Python file.

    Each input is an option named after it: sterna run pipeline.py etl --day 2026-01-31.
    Lists, dicts and dataclasses are given as JSON; tables as .parquet, .csv or .arrow paths.
    """
    options = ctx.find_root().meta.setdefault("sterna.run", {})
    if executor:
        options["executor"] = executor


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="sterna")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
