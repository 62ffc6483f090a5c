"""Quickstart: a small typed, cached pipeline over an Arrow table.

Run it as a script (``python examples/quickstart.py``) or through the CLI
(``sterna run examples/quickstart.py daily_report --days 30``). Run it twice:
the cached tasks hit the second time (their results live in ./.sterna/).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Annotated

import pyarrow as pa
import pyarrow.compute as pc

from sterna import task, workflow

SALES = pa.schema([("day", pa.date32()), ("region", pa.string()), ("amount", pa.float64())])
REGIONS = ("north", "south", "east", "west")


@dataclass(frozen=True)
class Report:
    """What the pipeline reports: the best region and the total it sold."""

    best_region: str
    best_total: float
    rows_dropped: int


@task(cache=True)
def load_sales(days: int, start: datetime.date) -> Annotated[pa.Table, SALES]:
    """Build a deterministic sales table: one row per day and region, a few bad rows."""
    rows = []
    for offset in range(days):
        day = start + datetime.timedelta(days=offset)
        for i, region in enumerate(REGIONS):
            amount = float((offset * 37 + i * 101) % 500) if (offset + i) % 11 else -1.0
            rows.append({"day": day, "region": region, "amount": amount})
    return pa.Table.from_pylist(rows, schema=SALES)


@task(cache=True, retries=1)
def clean(sales: Annotated[pa.Table, SALES]) -> Annotated[pa.Table, SALES]:
    """Drop refunds and data-entry errors (negative amounts)."""
    return sales.filter(pc.greater_equal(sales["amount"], 0))


@task
def totals_by_region(sales: Annotated[pa.Table, SALES]) -> pa.Table:
    """Sum the amounts per region."""
    return sales.group_by("region").aggregate([("amount", "sum")])


@task
def report(totals: pa.Table, raw_rows: int, clean_rows: int) -> Report:
    """Pick the region with the highest total."""
    best = totals.sort_by([("amount_sum", "descending")]).slice(0, 1).to_pylist()[0]
    return Report(best["region"], round(best["amount_sum"], 2), raw_rows - clean_rows)


@task
def count_rows(sales: pa.Table) -> int:
    """Number of rows in a table."""
    return sales.num_rows


@workflow
def daily_report(days: int = 30, start: datetime.date = datetime.date(2026, 1, 1)) -> Report:
    """Load, clean and aggregate sales, then report the best region."""
    raw = load_sales(days=days, start=start)
    cleaned = clean(sales=raw)
    totals = totals_by_region(sales=cleaned)
    return report(totals=totals, raw_rows=count_rows(sales=raw),
                  clean_rows=count_rows(sales=cleaned))


if __name__ == "__main__":
    import sterna

    result = sterna.run(daily_report, days=30)
    print(result.outputs)
    for node in result.nodes.values():
        print(f"  {node.node_id:<20} {node.status:<10} {node.cache_status:<9} "
              f"{node.duration * 1e3:7.2f} ms")
