"""The ``sterna`` command line: thin commands over the public API.

User mistakes (a missing file, an unknown workflow, a bad input) print one
line and exit 1 without a traceback; a failing task prints its own traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import click

import sterna
from sterna.core.errors import SternaError, TaskFailedError

from .entities import CONTEXT, FileDispatch, Target
from .params import format_output
from .store_commands import register_store_commands


@click.group(context_settings=CONTEXT)
@click.version_option(sterna.__version__, prog_name="sterna")
@click.option("--home", type=click.Path(file_okay=False), default=None,
              help="Store root (default: STERNA_HOME or ./.sterna).")
def cli(home: str | None) -> None:
    """sterna: typed, cached pipelines, local first."""
    if home:
        sterna.configure(home=home)


class RunFiles(FileDispatch):
    """``sterna run FILE NAME``: runs the target and prints its outputs."""

    verb = "Run"

    def action(self, target: Target, given: dict[str, Any]) -> None:
        options = click.get_current_context().find_root().meta.get("sterna.run", {})
        try:
            result = sterna.run(target, inputs=given, **options)
        except TaskFailedError as exc:
            if exc.traceback:
                click.echo(exc.traceback, err=True, nl=False)
            raise click.ClickException(str(exc)) from None
        except SternaError as exc:
            raise click.ClickException(str(exc)) from None
        _print_outputs(result)


def _print_outputs(result: sterna.Run) -> None:
    hits = sum(1 for n in result.nodes.values() if n.cache_status == "hit")
    cached = f", {hits} cached" if hits else ""
    click.echo(f"run {result.run_id} {result.status} in {result.duration * 1e3:.1f} ms "
               f"({len(result.nodes)} nodes{cached})", err=True)
    outputs = result.outputs_by_name
    if list(outputs) == ["o0"]:
        click.echo(format_output(outputs["o0"]))
        return
    for name, value in outputs.items():
        click.echo(f"{name}: {format_output(value)}")


@cli.group(cls=RunFiles, context_settings=CONTEXT)
@click.option("--executor", type=click.Choice(["serial", "process", "ray"]), default=None,
              help="Where tasks run (default: STERNA_EXECUTOR or serial).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes of the process executor (default: one per core).")
@click.option("--ray-address", default=None, metavar="ADDRESS",
              help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray).")
@click.option("--overwrite-cache", is_flag=True, help="Recompute cached tasks, replace entries.")
@click.option("--no-cache", is_flag=True, help="Ignore the cache: read and write nothing.")
@click.pass_context
def run(ctx: click.Context, executor: str | None, workers: int | None, ray_address: str | None,
        overwrite_cache: bool, no_cache: bool) -> None:
    """Run a workflow or task from a Python file.

    Each input is an option named after it: sterna run pipeline.py etl --day 2026-01-31.
    Lists, dicts and dataclasses are given as JSON; tables as .parquet, .csv or .arrow paths.
    """
    options = ctx.find_root().meta.setdefault("sterna.run", {})
    if executor:
        options["executor"] = executor
    if workers:
        options["workers"] = workers
    if ray_address:
        options["ray_address"] = ray_address
    if overwrite_cache:
        options["overwrite_cache"] = True
    if no_cache:
        options["cache"] = False


register_store_commands(cli)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="sterna")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
