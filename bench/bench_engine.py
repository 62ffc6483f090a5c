"""Serial engine overhead: a 100-task chain and a 1,000-node fan-out.

Each workflow is benchmarked beside the same work done as plain Python calls;
the per-node overhead is (engine time - plain time) / nodes. Run with
``python -m pytest bench --benchmark-enable``.
"""

from __future__ import annotations

from typing import Any

import pytest

import sterna
from sterna import task, workflow

CHAIN = 100
FAN = 1000


def plain_inc(x: int) -> int:
    return x + 1


def plain_total(xs: list[int]) -> int:
    return sum(xs)


inc = task(plain_inc)
total = task(plain_total)


@workflow
def chain(x: int = 0) -> int:
    value = x
    for _ in range(CHAIN):
        value = inc(x=value)
    return value


@workflow
def fan_out(x: int = 0) -> int:
    return total(xs=[inc(x=x) for _ in range(FAN)])


def plain_chain(x: int = 0) -> int:
    value = x
    for _ in range(CHAIN):
        value = plain_inc(value)
    return value


def plain_fan_out(x: int = 0) -> int:
    return plain_total([plain_inc(x) for _ in range(FAN)])


@pytest.mark.benchmark(group="chain-100")
def test_chain_plain_python(benchmark: Any) -> None:
    assert benchmark(plain_chain) == CHAIN


@pytest.mark.benchmark(group="chain-100")
def test_chain_engine(benchmark: Any) -> None:
    assert benchmark(chain, x=0) == CHAIN


@pytest.mark.benchmark(group="chain-100")
def test_chain_run_record(benchmark: Any) -> None:
    result = benchmark(sterna.run, chain, x=0)
    assert result.outputs == CHAIN
    assert len(result.nodes) == CHAIN


@pytest.mark.benchmark(group="fan-out-1000")
def test_fan_out_plain_python(benchmark: Any) -> None:
    assert benchmark(plain_fan_out) == FAN


@pytest.mark.benchmark(group="fan-out-1000")
def test_fan_out_engine(benchmark: Any) -> None:
    assert benchmark(fan_out, x=0) == FAN


@pytest.mark.benchmark(group="direct-call")
def test_direct_task_call(benchmark: Any) -> None:
    assert benchmark(inc, 1) == 2
