"""Edge cases of the engine loop: locks, batches, duplicates, retries and ratios."""

import os
import threading
from pathlib import Path
from typing import Any

import pytest
from executor_support import Calls
from filelock import FileLock, Timeout

import sterna
from sterna import TaskFailedError, map_task


@pytest.mark.executors("serial", "process")
def test_a_map_over_the_same_item_twice_finishes(executor: str, tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(cache=True)
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    run = sterna.run(map_task(square), x=[3, 3, 4, 3])
    assert run.outputs == [9, 9, 16, 9]
    assert sorted(calls) == [3, 4]  # each key computed once


@pytest.mark.executors("serial", "process")
def test_cache_serialize_locks_are_released_when_a_run_fails(executor: str) -> None:
    @sterna.task(cache=True, cache_serialize=True)
    def slow(x: int) -> int:
        return x

    @sterna.task
    def boom(x: int) -> int:
        raise ValueError("boom")

    @sterna.workflow
    def wf(x: int, y: int) -> tuple[int, int, int]:
        return boom(x=x), slow(x=x), slow(x=y)

    with pytest.raises(TaskFailedError):
        sterna.run(wf, x=1, y=2)
    locks = list((Path(os.environ["STERNA_HOME"]) / "locks").glob("*.lock"))
    for path in locks:  # another holder gets every key at once
        lock = FileLock(path)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            pytest.fail(f"{path.name} is still held after the failed run")
        lock.release()


def test_a_key_locked_by_another_holder_is_waited_for_without_blocking(tmp_path: Path) -> None:
    """While another holder has the key, the run goes on with other nodes and then hits."""
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(cache=True, cache_serialize=True)
    def shared(x: int) -> int:
        calls.append(["shared", x])
        return x * 10

    @sterna.task
    def other(x: int) -> int:
        calls.append(["other", x])
        return x

    @sterna.workflow
    def wf(x: int) -> tuple[int, int]:
        return shared(x=x), other(x=x)

    sterna.run(shared, x=2)  # the entry exists; now hold the key's lock from "elsewhere"
    (lock_path,) = (Path(os.environ["STERNA_HOME"]) / "locks").glob("*.lock")
    holder = FileLock(lock_path, thread_local=False)
    holder.acquire()
    threading.Timer(0.5, holder.release).start()
    run = sterna.run(wf, x=2)
    assert run.outputs == (20, 2)
    assert run.nodes["shared"].cache_status == "hit"
    assert calls.count(["shared", 2]) == 1 and ["other", 2] in calls


def test_a_dead_worker_fails_only_its_own_item_of_a_batch() -> None:
    @sterna.task
    def work(x: int) -> int:
        if x == 7:
            os._exit(3)  # the worker dies with the whole batch it was given
        return x

    run = sterna.run(map_task(work, min_success_ratio=0.9), x=list(range(40)),
                     executor="process", workers=2)
    assert run.outputs == [None if x == 7 else x for x in range(40)]
    failed = [n for n, r in run.nodes.items() if r.status == "failed"]
    assert failed == ["map_work[7]"]
    assert "died" in (run.nodes["map_work[7]"].error or "")


@pytest.mark.executors("process")  # two nodes at once: a serial run never gets there
def test_a_node_waiting_for_its_retry_when_the_run_fails_is_recorded_failed(
        executor: str, tmp_path: Path) -> None:
    started = tmp_path / "flaky-started"

    @sterna.task
    def boom(x: int) -> int:
        import time

        deadline = time.time() + 10
        while not started.exists() and time.time() < deadline:
            time.sleep(0.01)
        raise ValueError("boom")

    @sterna.task(retries=3)
    def flaky(x: int) -> int:
        import time

        started.touch()
        time.sleep(0.3)
        raise RuntimeError("flaky")

    @sterna.workflow
    def wf(x: int) -> tuple[int, int]:
        return boom(x=x), flaky(x=x)

    with pytest.raises(TaskFailedError) as info:
        sterna.run(wf, x=1)
    record = info.value.run.nodes["flaky"]
    assert record.status == "failed"
    assert record.attempts and record.attempts[0].error == "RuntimeError: flaky"


def test_min_success_ratio_needs_exactly_its_share() -> None:
    @sterna.task
    def seven_pass(x: int) -> int:
        if x >= 7:
            raise ValueError(str(x))
        return x

    run = sterna.run(map_task(seven_pass, min_success_ratio=0.07), x=list(range(100)))
    assert run.outputs[:7] == list(range(7))  # 7 of 100 is 0.07: enough


@pytest.mark.executors("serial", "process")
def test_an_item_whose_output_cannot_be_stored_counts_against_the_ratio(executor: str) -> None:
    @sterna.task(cache=True)
    def make(x: int) -> Any:
        return threading.Lock() if x == 1 else x

    run = sterna.run(map_task(make, min_success_ratio=0.5), x=[0, 1, 2, 3])
    assert run.outputs == [0, None, 2, 3]
    assert run.nodes["map_make[1]"].status == "failed"
