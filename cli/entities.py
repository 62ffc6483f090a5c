"""``FILE.py NAME --input value ...``: commands built from a file's workflows and tasks.

``sterna run`` and ``sterna cache explain`` both take a file, a name and the
entity's inputs as options; this module builds those commands once, and each
verb supplies what to do with the target and its parsed inputs.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import click

from sterna.core.errors import SternaError
from sterna.core.task import Task
from sterna.core.workflow import Workflow

from .loader import LoadError, entities, find, load_module
from .params import input_option

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
Target = Workflow[..., Any] | Task[..., Any]
Action = Callable[[Target, dict[str, Any]], None]


def load(path: str) -> Any:
    """Import a pipeline file; user mistakes become one-line errors."""
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
    while tb is not None and tb.tb_frame.f_code.co_filename != str(Path(path).resolve()):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))


class EntityCommand(click.Command):
    """One workflow or task, with an option per input."""

    def __init__(self, target: Target, action: Action, verb: str) -> None:
        kind = "workflow" if isinstance(target, Workflow) else "task"
        doc = (target.__doc__ or "").strip()
        super().__init__(
            name=target.__name__, context_settings=CONTEXT,
            params=[input_option(p) for p in target.interface.inputs.values()],
            callback=self._invoke, help=f"{verb} {kind} {target.name}.\n\n{doc}".strip(),
            short_help=f"{kind}: {doc.splitlines()[0] if doc else target.name}")
        self.target = target
        self.action = action

    def _invoke(self, **values: Any) -> None:
        ctx = click.get_current_context()
        given = {name: value for name, value in values.items()
                 if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT}
        self.action(self.target, given)


class FileCommand(click.Group):
    """The workflows and tasks of one file, as subcommands."""

    def __init__(self, path: str, action: Action, verb: str) -> None:
        super().__init__(name=path, context_settings=CONTEXT,
                         help=f"Workflows and tasks in {path}.")
        self.path, self.action, self.verb = path, action, verb

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(entities(load(self.path)))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = load(self.path)
        try:
            return EntityCommand(find(module, cmd_name), self.action, self.verb)
        except LoadError as exc:
            raise click.ClickException(str(exc)) from None


class FileDispatch(click.Group):
    """Resolves ``... FILE NAME`` to the file's command group; subclasses set the verb."""

    verb: ClassVar[str] = "Run"

    def action(self, target: Target, given: dict[str, Any]) -> None:
        raise NotImplementedError

    def list_commands(self, ctx: click.Context) -> list[str]:
        return []

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return FileCommand(cmd_name, self.action, self.verb)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[OPTIONS] FILE.py NAME [--INPUT VALUE ...]")
