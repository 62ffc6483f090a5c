"""Commands over the store: cache, tasks, runs, lineage, sql, register."""

from __future__ import annotations

import json
from typing import Any

import click

from sterna.core import config
from sterna.core.errors import SternaError

from .entities import CONTEXT, FileDispatch, Target, load
from .loader import entities
from .output import echo_table, human_size, parse_age, parse_size


def _store() -> Any:
    from sterna.cache.store import Store

    try:
        return Store.at(config.current().home)
    except SternaError as exc:  # a bad configuration (STERNA_BLOBS) is a user mistake
        raise click.ClickException(str(exc)) from None


def _guard(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call an API function; a SternaError becomes a one-line CLI error."""
    try:
        return fn(*args, **kwargs)
    except SternaError as exc:
        raise click.ClickException(str(exc)) from None


# -- cache -----------------------------------------------------------------------------------
@click.group(context_settings=CONTEXT)
def cache() -> None:
    """Inspect and manage the cache."""


@cache.command("ls")
def cache_ls() -> None:
    """Per task: entries, size, last used, hits."""
    from sterna.cache.admin import cache_list

    found = _guard(cache_list, _store())
    echo_table(["task", "entries", "size", "last used", "hits"],
               [[r["task"], r["entries"], human_size(r["size"]), r["last_used"], r["hits"]]
                for r in found])


@cache.command("clear")
@click.argument("task", required=False)
def cache_clear(task: str | None) -> None:
    """Drop the entries of TASK (or of every task) and the blobs nothing else uses."""
    from sterna.cache.admin import cache_clear as clear

    report = _guard(clear, _store(), task)
    click.echo(f"removed {report.entries_removed} entries, {report.blobs_removed} blobs "
               f"({human_size(report.bytes_freed)})")


@cache.command("gc")
@click.option("--max-size", default=None, help="Keep the cache under this size (e.g. 10GB).")
@click.option("--older-than", default=None, help="Drop entries unused for this long (e.g. 30d).")
def cache_gc(max_size: str | None, older_than: str | None) -> None:
    """Drop old or least recently used entries, then unreferenced blobs."""
    from sterna.cache.admin import cache_gc as gc

    report = _guard(gc, _store(), max_size=parse_size(max_size) if max_size else None,
                    older_than=parse_age(older_than) if older_than else None)
    click.echo(f"removed {report.entries_removed} entries, {report.blobs_removed} blobs "
               f"({human_size(report.bytes_freed)})")


@cache.command("verify")
def cache_verify() -> None:
    """Re-hash every blob; quarantine bad ones and drop the entries that used them."""
    from sterna.cache.admin import cache_verify as verify

    report = _guard(verify, _store())
    for digest in report.bad:
        click.echo(f"bad blob {digest} (quarantined)")
    click.echo(f"checked {report.blobs_checked} blobs: {len(report.bad)} bad, "
               f"{report.entries_removed} entries dropped")
    if report.bad:
        raise SystemExit(1)


class ExplainFiles(FileDispatch):
    """``sterna cache explain FILE NAME [inputs]``."""

    verb = "Explain the cache for"

    def action(self, target: Target, given: dict[str, Any]) -> None:
        from sterna.cache.explain import explain_target

        for item in _guard(explain_target, target, given):
            click.echo(f"{item.node_id:<24} {item.status:<10} {item.task}")
            for reason in item.reasons:
                click.echo(f"    {reason}")


cache.add_command(ExplainFiles(name="explain", context_settings=CONTEXT,
                               help="Per task: would it hit the cache, and if not, why."))


# -- tasks, runs, lineage, sql, register ------------------------------------------------------
@click.group(context_settings=CONTEXT)
def tasks() -> None:
    """Registered tasks and their versions."""


@tasks.command("ls")
def tasks_ls() -> None:
    """Every registered task with its latest version."""
    from sterna.cache.history import tasks_list

    echo_table(["task", "latest", "versions", "registered"],
               [[r["name"], r["latest"], r["versions"], r["registered_at"]]
                for r in _guard(tasks_list, _store())])


@tasks.command("versions")
@click.argument("name")
def tasks_versions(name: str) -> None:
    """Every version of task NAME, newest first."""
    from sterna.cache.history import task_versions

    echo_table(["version", "code", "registered", "project/domain"],
               [[r["version"], r["code_fingerprint"][:16], r["registered_at"],
                 f"{r['project']}/{r['domain']}"] for r in _guard(task_versions, _store(), name)])


@tasks.command("show")
@click.argument("name")
def tasks_show(name: str) -> None:
    """Interface, configuration and source of NAME or NAME@VERSION."""
    from sterna.cache.history import task_show

    task, _, version = name.partition("@")
    row = _guard(task_show, _store(), task, version or None)
    click.echo(f"task {row['name']} @ {row['version']}  ({row['project']}/{row['domain']}, "
               f"registered {row['registered_at']:%Y-%m-%d %H:%M:%S})")
    interface = json.loads(row["interface"])
    click.echo("inputs:  " + (", ".join(f"{k}: {v}" for k, v in interface["inputs"].items())
                              or "none"))
    click.echo("outputs: " + (", ".join(f"{k}: {v}" for k, v in interface["outputs"].items())
                              or "none"))
    settings = {k: v for k, v in json.loads(row["config"]).items() if v not in (None, "", [], {},
                                                                             False, 0)}
    click.echo("config:  " + (json.dumps(settings, sort_keys=True) if settings else "defaults"))
    click.echo(f"code:    {row['code_fingerprint']}")
    click.echo("")
    click.echo(row["source"].rstrip())


@click.group(context_settings=CONTEXT)
def runs() -> None:
    """Recorded runs."""


@runs.command("ls")
@click.option("--limit", default=20, show_default=True)
@click.option("--workflow", default=None, help="Only runs of this workflow.")
def runs_ls(limit: int, workflow: str | None) -> None:
    """The latest runs, newest first."""
    from sterna.cache.history import runs_list

    echo_table(["run", "workflow", "status", "executor", "started", "seconds"],
               [[r["run_id"], r["workflow"], r["status"], r["executor"], r["started_at"],
                 r["duration_s"]] for r in _guard(runs_list, _store(), limit=limit,
                                                  workflow=workflow)])


@runs.command("show")
@click.argument("run_id")
def runs_show(run_id: str) -> None:
    """A run and each of its node executions."""
    from sterna.cache.history import run_show

    run, nodes = _guard(run_show, _store(), run_id)
    click.echo(f"run {run['run_id']} of {run['workflow']} ({run['kind']}): {run['status']}, "
               f"{run['executor']}, started {run['started_at']:%Y-%m-%d %H:%M:%S} on "
               f"{run['host']} (pid {run['pid']})")
    if run["error"]:
        click.echo(f"error: {run['error']}")
    echo_table(["node", "task", "status", "cache", "attempts", "seconds", "error"],
               [[n["node_id"], n["task"], n["status"], n["cache_status"], n["attempts"],
                 n["duration_s"], (n["error"] or "").splitlines()[0] if n["error"] else ""]
                for n in nodes])


@click.command(context_settings=CONTEXT)
@click.argument("digest")
def lineage(digest: str) -> None:
    """Walk upstream from a value DIGEST: which task made it, from which inputs."""
    from sterna.cache.history import lineage as walk

    def show(node: Any, indent: str, label: str) -> None:
        made = (f"{node.task} output {node.output!r} (run {node.run_id}, node {node.node_id})"
                if node.task else "a workflow input or constant")
        click.echo(f"{indent}{label}{node.digest[:16]}  {made}")
        for name, upstream in node.inputs.items():
            show(upstream, indent + "    ", f"{name} = ")

    show(_guard(walk, _store(), digest), "", "")


@click.command(context_settings=CONTEXT)
@click.argument("query")
def sql(query: str) -> None:
    """Run a read-only SQL QUERY over the metadata tables and print the result."""
    from sterna.cache.history import sql as run_sql

    columns, found = _guard(run_sql, _store(), query)
    if columns:
        echo_table(columns, found)


@click.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path(dir_okay=False))
def register(file: str) -> None:
    """Register every task and workflow of FILE (a changed one gets a new version)."""
    from sterna.cache.registry import register_all

    module = load(file)
    for kind, name, version, new in _guard(register_all, _store(), entities(module).values()):
        click.echo(f"{kind:<9} {name}  {version}  {'registered' if new else 'unchanged'}")


def register_store_commands(cli: click.Group) -> None:
    """Attach the store commands to the root group."""
    from .profile_command import profile

    for command in (cache, tasks, runs, lineage, sql, register, profile):
        cli.add_command(command)
