"""The Ray executor on the session's local Ray (two CPUs, one declared GPU).

Tasks run in Ray actors: GPU requests map to Ray's GPUs (one task per GPU at a time),
environment variables reach only the tasks that ask for them, a request no node offers fails
before anything runs, timeouts really stop a task (the alarm in the actor, else killing the
actor) but do not count the wait for an actor, a killed actor fails (or retries) its call,
actors and their modules are reused across runs, Arrow tables and maps travel, and the cache
works as on every executor.
"""

import os
import re
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import ray
from executor_support import Calls

import sterna
from sterna import ResourceError, Resources, TaskFailedError, TaskTimeoutError, map_task

pytestmark = pytest.mark.usefixtures("ray_instance")

RAY = "ray"
POOL_SIZE = 2  # actors of a one-CPU environment that fit on the two-CPU instance
SLEEPY_S = 1.0  # how long a task that times out after 0.3 s would sleep
DEAF_S = 3.0  # longer than a 0.3 s timeout plus the executor's grace
HOLD_S = 3.5  # longer than a 0.5 s timeout plus the executor's grace

_LOADS: dict[str, int] = {}  # set-up kept in this module, as a loaded model would be


# -- module-level tasks (imported by name in the actors) ---------------------------------------


@sterna.task(requests=Resources(cpu=2))
def load_once(key: str) -> tuple[int, int]:
    """(pid, how many times this process has been asked for ``key``)."""
    _LOADS[key] = _LOADS.get(key, 0) + 1
    return os.getpid(), _LOADS[key]


@sterna.task
def worker_pid(i: int) -> int:
    time.sleep(0.05)  # long enough for the items to spread over the pool
    return os.getpid()


@sterna.workflow
def worker_pids(items: list[int]) -> list[int]:
    return map_task(worker_pid)(i=items)


@sterna.task
def make_table(n: int) -> pa.Table:
    return pa.table({"x": pa.array(range(n), pa.int64())})


@sterna.task
def add_square(t: pa.Table) -> pa.Table:
    return t.append_column("sq", pc.multiply(t["x"], t["x"]))


@sterna.workflow
def table_pipeline(n: int) -> pa.Table:
    return add_square(t=make_table(n=n))


@sterna.task
def square(x: int) -> int:
    return x * x


@sterna.workflow
def squares(xs: list[int]) -> list[int]:
    return map_task(square)(x=xs)


# -- GPUs ---------------------------------------------------------------------------------------


def test_gpu_task_sees_exactly_one_gpu_id() -> None:
    @sterna.task(requests=Resources(gpu=1))
    def visible_gpus() -> tuple[str, int]:
        return os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"), os.getpid()

    devices, pid = sterna.run(visible_gpus, executor=RAY).outputs

    assert re.fullmatch(r"\d+", devices), f"expected one GPU id, got {devices!r}"
    assert pid != os.getpid()  # it ran in an actor, not in the driver


def test_two_gpu_tasks_never_overlap_on_one_gpu(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(requests=Resources(gpu=1))
    def on_gpu(tag: str) -> str:
        start = time.time()
        time.sleep(0.3)
        calls.append([tag, start, time.time(), os.environ.get("CUDA_VISIBLE_DEVICES")])
        return tag

    @sterna.workflow
    def two_branches() -> tuple[str, str]:
        return on_gpu(tag="a"), on_gpu(tag="b")

    run = sterna.run(two_branches, executor=RAY)

    assert run.outputs == ("a", "b")
    spans = sorted(calls.items(), key=lambda span: span[1])
    assert [span[0] for span in spans] in (["a", "b"], ["b", "a"])
    (_, _, first_end, first_gpu), (_, second_start, _, second_gpu) = spans
    assert first_end <= second_start, f"the two GPU tasks overlapped: {spans}"
    assert re.fullmatch(r"\d+", first_gpu) and re.fullmatch(r"\d+", second_gpu)


# -- environment variables ----------------------------------------------------------------------


def test_environment_reaches_only_the_task_that_sets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("K", raising=False)

    @sterna.task(environment={"K": "v"})
    def with_k() -> str:
        return os.environ.get("K", "<unset>")

    @sterna.task
    def without_k(after: str) -> str:
        return os.environ.get("K", "<unset>")

    @sterna.workflow
    def both() -> tuple[str, str]:
        seen = with_k()
        return seen, without_k(after=seen)

    assert sterna.run(both, executor=RAY).outputs == ("v", "<unset>")
    assert "K" not in os.environ  # nor does it leak into the driver


# -- requests no node can meet ------------------------------------------------------------------


@pytest.mark.parametrize(("params", "shown"), [
    ({"requests": Resources(gpu=4)}, "GPU=4"),
    ({"requests": Resources(cpu=64)}, "CPU=64"),
    ({"accelerator": "nvidia-tesla-a100"}, "accelerator_type:A100"),
], ids=["gpu", "cpu", "accelerator"])
def test_request_no_node_offers_fails_before_anything_runs(
        tmp_path: Path, params: dict[str, Any], shown: str) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task
    def first(x: int) -> int:
        calls.append("first")
        return x

    def too_big(x: int) -> int:
        calls.append("too_big")
        return x

    big = sterna.task(**params)(too_big)

    @sterna.workflow
    def wants_too_much(x: int) -> int:
        return big(x=first(x=x))

    with pytest.raises(ResourceError) as info:
        sterna.run(wants_too_much, executor=RAY, x=1)

    message = str(info.value)
    assert big.name in message
    assert shown in message
    assert "no node" in message
    assert calls.items() == []  # not even the first task ran
    assert info.value.run is not None and info.value.run.status == "failed"


# -- timeouts -----------------------------------------------------------------------------------


def test_timed_out_task_is_really_stopped_and_retried(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")
    late = tmp_path / "written-after-the-timeout"

    @sterna.task(timeout=0.3, retries=1)
    def sleepy(path: str) -> str:
        calls.append(time.time())
        time.sleep(SLEEPY_S)
        Path(path).write_text("still running after the timeout")
        return path

    with pytest.raises(TaskTimeoutError) as info:
        sterna.run(sleepy, executor=RAY, path=str(late))

    error = info.value
    assert sleepy.name in str(error) and "timed out after 0.3 s" in str(error)
    assert error.task == sleepy.name
    assert error.attempts == 2
    assert len(calls) == 2  # retries apply to timeouts
    record = error.run.nodes[next(iter(error.run.nodes))]
    assert [a.error for a in record.attempts] == ["timed out after 0.3 s"] * 2
    time.sleep(max(0.0, max(calls.items()) + SLEEPY_S + 0.5 - time.time()))  # past any write
    assert not late.exists(), "a timed-out task kept running after its timeout"


def test_task_deaf_to_its_alarm_is_stopped_by_killing_its_actor(tmp_path: Path) -> None:
    """A task that ignores the in-actor alarm still ends at its timeout (plus a grace)."""
    calls = Calls(tmp_path / "calls.jsonl")
    late = tmp_path / "written-by-a-deaf-task"

    @sterna.task(timeout=0.3, environment={"STERNA_TEST_DEAF": "1"})  # an actor of its own
    def deaf(path: str) -> str:
        calls.append(time.time())
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        time.sleep(DEAF_S)
        Path(path).write_text("still running after the timeout")
        return path

    with pytest.raises(TaskTimeoutError) as info:
        sterna.run(deaf, executor=RAY, path=str(late))

    error = info.value
    assert deaf.name in str(error) and "timed out after 0.3 s" in str(error)
    assert error.attempts == 1
    assert len(calls) == 1
    (started,) = calls.items()
    time.sleep(max(0.0, started + DEAF_S + 0.5 - time.time()))  # past its would-be write
    assert not late.exists(), "the task went on running after its timeout"


def test_waiting_for_an_actor_does_not_count_against_the_timeout(tmp_path: Path) -> None:
    """The timeout bounds the task's own run, not the wait for room to start its actor."""
    calls = Calls(tmp_path / "calls.jsonl")

    @ray.remote(num_cpus=0)
    class Holder:
        def ready(self) -> bool:
            return True

    # All of the instance's memory resource, held for a while by something else.
    holder = Holder.options(memory=int(ray.cluster_resources()["memory"])).remote()
    ray.get(holder.ready.remote(), timeout=60)
    release = threading.Timer(HOLD_S, ray.kill, (holder,))
    release.start()

    @sterna.task(requests=Resources(mem="1Gi"), timeout=0.5)
    def quick() -> int:
        calls.append("quick")
        return 1

    @sterna.task
    def beside() -> int:  # ends while the other waits, so the executor checks its deadlines
        time.sleep(0.2)
        return 2

    @sterna.workflow
    def both() -> tuple[int, int]:
        return quick(), beside()

    try:
        run = sterna.run(both, executor=RAY)
    finally:
        release.join()

    assert run.outputs == (1, 2)
    assert calls.items() == ["quick"]


# -- actors that die ----------------------------------------------------------------------------


def test_killed_actor_is_retried_and_the_run_succeeds(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")
    marker = tmp_path / "died-once"

    @sterna.task(retries=1)
    def die_once() -> int:
        calls.append(os.getpid())
        if not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return os.getpid()

    run = sterna.run(die_once, executor=RAY)

    first, second = calls.items()
    assert first != second  # the retry ran in a new actor
    assert run.outputs == second
    record = run.nodes[next(iter(run.nodes))]
    assert record.status == "succeeded"
    assert len(record.attempts) == 2
    assert "actor died" in (record.attempts[0].error or "")
    assert record.attempts[1].error is None


def test_killed_actor_without_retries_fails_the_run(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")
    marker = tmp_path / "died-once"

    @sterna.task
    def die_once() -> int:
        calls.append(os.getpid())
        if not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return os.getpid()

    with pytest.raises(TaskFailedError) as info:
        sterna.run(die_once, executor=RAY)

    error = info.value
    assert not isinstance(error, TaskTimeoutError)
    assert die_once.name in str(error) and "actor died" in str(error)
    assert error.task == die_once.name
    assert error.attempts == 1
    assert len(calls) == 1


# -- actor reuse --------------------------------------------------------------------------------


def test_actors_are_reused_across_runs() -> None:
    first = sterna.run(worker_pids, executor=RAY, items=list(range(8))).outputs
    second = sterna.run(worker_pids, executor=RAY, items=list(range(8))).outputs

    assert set(second) == set(first)
    assert 1 <= len(set(first)) <= POOL_SIZE
    assert os.getpid() not in first


def test_module_level_state_survives_between_runs() -> None:
    key = uuid.uuid4().hex

    pid_1, count_1 = sterna.run(load_once, executor=RAY, key=key).outputs
    pid_2, count_2 = sterna.run(load_once, executor=RAY, key=key).outputs

    assert pid_1 == pid_2 != os.getpid()
    assert (count_1, count_2) == (1, 2)  # the second run found the first run's set-up
    assert key not in _LOADS  # it ran in the actor, not here


# -- values -------------------------------------------------------------------------------------


def test_arrow_tables_pass_between_tasks() -> None:
    result = sterna.run(table_pipeline, executor=RAY, n=1000).outputs

    assert isinstance(result, pa.Table)
    assert result.column_names == ["x", "sq"]
    assert result.column("sq").to_pylist() == [x * x for x in range(1000)]


def test_map_task_over_twenty_items() -> None:
    run = sterna.run(squares, executor=RAY, xs=list(range(20)))

    assert run.outputs == [x * x for x in range(20)]
    items = [node for node in run.nodes if node.endswith("]")]
    assert len(items) == 20
    assert all(run.nodes[node].status == "succeeded" for node in items)


# -- the cache ----------------------------------------------------------------------------------


def test_cached_task_second_run_is_a_hit(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(cache=True, cache_version="1")
    def cached_double(x: int) -> int:
        calls.append(x)
        return 2 * x

    first = sterna.run(cached_double, executor=RAY, x=21)
    second = sterna.run(cached_double, executor=RAY, x=21)

    assert first.outputs == second.outputs == 42
    (node,) = first.nodes
    assert first.nodes[node].cache_status == "miss"
    assert second.nodes[node].cache_status == "hit"
    assert calls.items() == [21]  # computed once
