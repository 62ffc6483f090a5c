"""Parallel executors: per-task overhead, map speed-up, and Arrow hand-off between workers.

Each sterna figure sits beside the same work done with the raw tool in the same
run: ``concurrent.futures.ProcessPoolExecutor`` (spawned workers, ``operator.add``
as the trivial task) for the process executor, plain Ray tasks for the Ray
executor. Per-item overhead = time / items (the tasks
themselves do nothing). Run with ``python -m pytest bench/bench_executors.py
--benchmark-enable``; the README records the figures.
"""

from __future__ import annotations

import itertools
import multiprocessing
import operator
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import sterna
from sterna import map_task, task, workflow

CHAIN = 100
ITEMS = 1000
BURN_ITEMS, BURN_S = 200, 0.02
ROWS = 10_000_000


def plain_inc(x: int) -> int:
    return x + 1


inc = task(plain_inc)


@task
def burn(x: int) -> int:
    """About 20 ms of pure CPU work."""
    end = time.perf_counter() + BURN_S
    while time.perf_counter() < end:
        pass
    return x


@task
def make_table(rows: int) -> pa.Table:
    values = pa.array(range(rows), type=pa.int64()) if rows < 1000 else pc.cumulative_sum(
        pa.repeat(pa.scalar(1, pa.int64()), rows))  # type: ignore[attr-defined]
    return pa.table({"a": values, "b": pc.multiply(values, 2)})


@task
def column_sum(t: pa.Table) -> int:
    return int(pc.sum(t.column("b")).as_py())


@workflow
def chain(x: int = 0) -> int:
    value = x
    for _ in range(CHAIN):
        value = inc(x=value)
    return value


@workflow
def mapped(xs: list[int]) -> list[int]:
    return map_task(inc)(x=xs)


@workflow
def burn_map(xs: list[int]) -> list[int]:
    return map_task(burn)(x=xs)


@workflow
def hand_off(rows: int) -> int:
    return column_sum(t=make_table(rows=rows))


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    # spawn, as sterna's workers: forking a process that runs Ray's threads can hang
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as executor:
        list(executor.map(operator.add, range(4), itertools.repeat(1)))  # started before timing
        yield executor


@pytest.fixture(scope="module")
def ray_ready() -> Iterator[Any]:
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False)
    from sterna.core.executors.ray import release_actors

    release_actors()  # idle actors of earlier runs hold the CPUs raw Ray tasks need
    yield ray
    if started:
        ray.shutdown()


def _run(target: Any, executor: str, workers: int = 2, **inputs: Any) -> Any:
    return sterna.run(target, executor=executor, workers=workers, cache=False,
                      **inputs).outputs


# -- the 100-task chain -------------------------------------------------------------------
@pytest.mark.benchmark(group="chain-100-process")
def test_chain_raw_futures(benchmark: Any, pool: ProcessPoolExecutor) -> None:
    def raw() -> int:
        value = 0
        for _ in range(CHAIN):
            value = pool.submit(operator.add, value, 1).result()
        return value

    assert benchmark(raw) == CHAIN


@pytest.mark.benchmark(group="chain-100-process")
def test_chain_process_executor(benchmark: Any) -> None:
    _run(chain, "process")
    assert benchmark(_run, chain, "process") == CHAIN


@pytest.mark.benchmark(group="chain-100-ray")
def test_chain_raw_ray(benchmark: Any, ray_ready: Any) -> None:
    from sterna.core.executors.ray import release_actors

    release_actors()
    remote_inc = ray_ready.remote(plain_inc)

    def raw() -> int:
        ref = remote_inc.remote(0)
        for _ in range(CHAIN - 1):
            ref = remote_inc.remote(ref)
        return int(ray_ready.get(ref))

    assert benchmark(raw) == CHAIN


@pytest.mark.benchmark(group="chain-100-ray")
def test_chain_ray_executor(benchmark: Any, ray_ready: Any) -> None:
    _run(chain, "ray")
    assert benchmark(_run, chain, "ray") == CHAIN


# -- the 1,000-item map -------------------------------------------------------------------
@pytest.mark.benchmark(group="map-1000-process")
def test_map_raw_futures(benchmark: Any, pool: ProcessPoolExecutor) -> None:
    def raw() -> list[int]:
        return list(pool.map(operator.add, range(ITEMS), itertools.repeat(1)))

    assert benchmark(raw)[-1] == ITEMS


@pytest.mark.benchmark(group="map-1000-process")
def test_map_process_executor(benchmark: Any) -> None:
    xs = list(range(ITEMS))
    _run(mapped, "process", xs=xs)
    assert benchmark(_run, mapped, "process", xs=xs)[-1] == ITEMS


@pytest.mark.benchmark(group="map-1000-ray")
def test_map_raw_ray(benchmark: Any, ray_ready: Any) -> None:
    from sterna.core.executors.ray import release_actors

    release_actors()
    remote_inc = ray_ready.remote(plain_inc)
    raw = lambda: ray_ready.get([remote_inc.remote(i) for i in range(ITEMS)])  # noqa: E731
    raw()
    assert benchmark(raw)[-1] == ITEMS


@pytest.mark.benchmark(group="map-1000-ray")
def test_map_ray_executor(benchmark: Any, ray_ready: Any) -> None:
    xs = list(range(ITEMS))
    _run(mapped, "ray", xs=xs)
    assert benchmark(_run, mapped, "ray", xs=xs)[-1] == ITEMS


# -- speed-up of a CPU-bound map ------------------------------------------------------------
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.benchmark(group="map-200x20ms")
def test_cpu_bound_map(benchmark: Any, workers: int) -> None:
    xs = list(range(BURN_ITEMS))
    _run(burn_map, "process", workers, xs=xs[:4])  # workers started before timing
    result = benchmark.pedantic(_run, args=(burn_map, "process", workers), kwargs={"xs": xs},
                                rounds=1, iterations=1)
    assert result == xs


# -- Arrow hand-off of 10M rows ---------------------------------------------------------------
@pytest.mark.parametrize("executor", ["serial", "process"])
@pytest.mark.benchmark(group="arrow-10M")
def test_arrow_hand_off(benchmark: Any, executor: str) -> None:
    _run(hand_off, executor, rows=10)
    result = benchmark.pedantic(_run, args=(hand_off, executor), kwargs={"rows": ROWS},
                                rounds=3, iterations=1)
    assert result == ROWS * (ROWS + 1)
    benchmark.extra_info["driver_peak_rss_mb"] = _peak_rss_mb("self")
    if executor == "process":
        from sterna.core.executors.process import process_pool

        peaks = [_peak_rss_mb(str(w.proc.pid)) for w in process_pool(2).workers]
        benchmark.extra_info["worker_peak_rss_mb"] = max(peaks, default=0.0)


def _peak_rss_mb(pid: str) -> float:
    """Peak resident memory (VmHWM) of a process, in MB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0
