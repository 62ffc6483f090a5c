"""``sterna profile``: where a run's time went and what the cache saved."""

from __future__ import annotations

import json
from typing import Any

import click

from .entities import CONTEXT
from .output import echo_table, human_size
from .store_commands import _guard, _store


def _ms(seconds: float | None) -> str:
    return f"{(seconds or 0.0) * 1e3:.1f}"


@click.command(context_settings=CONTEXT)
@click.argument("run_id", required=False)
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the run as Chrome trace events to this JSON file.")
@click.option("--compare", nargs=2, default=None, metavar="RUN_A RUN_B",
              help="Compare two runs of the same workflow instead.")
def profile(run_id: str | None, trace_path: str | None, compare: tuple[str, str] | None,
            ) -> None:
    """Profile RUN_ID (default: the latest run): per task cache status and time split."""
    from sterna.cache import profile as profiles

    store = _store()
    if compare:
        _show_comparison(*_guard(profiles.compare, store, *compare))
        return
    result = _guard(profiles.load_profile, store, run_id)
    _show(result)
    if trace_path:
        with open(trace_path, "w", encoding="utf-8") as handle:
            json.dump(profiles.chrome_trace(result), handle, default=str)
        click.echo(f"trace written to {trace_path} (open it in Perfetto or chrome://tracing)")


def _show(result: Any) -> None:
    run = result.run
    wall = (run["ended_at"] - run["started_at"]).total_seconds() if run["ended_at"] else 0.0
    click.echo(f"run {run['run_id']} of {run['workflow']}: {run['status']}, "
               f"{_ms(wall)} ms wall, {run['executor']}")
    echo_table(["node", "cache", "hash ms", "load ms", "compute ms", "store ms", "in", "out",
                "saved ms"],
               [[n["node_id"], n["cache_status"], _ms(n["hash_s"]), _ms(n["load_s"]),
                 _ms(n["compute_s"]), _ms(n["store_s"]), human_size(n["bytes_in"]),
                 human_size(n["bytes_out"]), _ms(n["saved_s"])] for n in result.nodes])
    click.echo(f"totals: compute {_ms(result.total('compute_s'))} ms, hash "
               f"{_ms(result.total('hash_s'))} ms, load {_ms(result.total('load_s'))} ms, "
               f"store {_ms(result.total('store_s'))} ms; the cache saved "
               f"{_ms(result.total('saved_s'))} ms")
    if result.critical_path:
        durations = {n["node_id"]: n["duration_s"] or 0.0 for n in result.nodes}
        total = sum(durations.get(n, 0.0) for n in result.critical_path)
        click.echo(f"critical path: {' -> '.join(result.critical_path)} ({_ms(total)} ms)")
    for line in result.costly_loads:
        click.echo(f"loading costs more than recomputing: {line}")


def _show_comparison(a: Any, b: Any, changes: list[Any]) -> None:
    click.echo(f"A: run {a.run['run_id']} ({a.run['status']})   "
               f"B: run {b.run['run_id']} ({b.run['status']})")
    rows = []
    for change in changes:
        old, new = change.before or {}, change.after or {}
        rows.append([change.node_id, old.get("cache_status", "-"), new.get("cache_status", "-"),
                     _ms(old.get("duration_s")), _ms(new.get("duration_s")),
                     "; ".join(change.reasons)])
    echo_table(["node", "cache A", "cache B", "A ms", "B ms", "why B recomputed"], rows)
