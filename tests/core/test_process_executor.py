"""The process executor: a pool of spawned worker processes.

Real processes, real signals and real files: branches that run at the same time, workers
that die (SIGKILL, segfault), timeouts that really stop a task (even one that blocks or
ignores SIGALRM), admission against cpu/mem/gpu capacity, GPU ids, per-task environment
variables, Arrow tables handed between workers without copies, where tasks may be defined,
inputs that cannot be sent, and Ctrl-C.
"""

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from executor_support import Calls

import sterna
from sterna import ResourceError, Resources, TaskFailedError, TaskTimeoutError

WORKERS = 2
MEET_S = 10.0  # how long a task waits for its partner before it fails (never a hang)


# -- helpers (used inside tasks too: they travel with the tasks) ------------------------------


def meet(folder: str, me: str, other: str) -> None:
    """Write my marker, then wait (bounded) until the other task has written its own."""
    Path(folder, me).touch()
    deadline = time.monotonic() + MEET_S
    while not Path(folder, other).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{me!r} waited {MEET_S:g} s for {other!r}: "
                               "the two tasks did not run at the same time")
        time.sleep(0.01)


def rss_anon() -> int:
    """This process's anonymous resident memory in bytes (from /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon in /proc/self/status")


def die_by(signum: int) -> None:
    """End this process with ``signum`` (no core file left behind for a segfault)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.kill(os.getpid(), signum)
    time.sleep(5)  # a signal not delivered at once must not let the task go on


def is_gone(pid: int, wait_s: float = 5.0) -> bool:
    """Whether process ``pid`` has ended (absent or a zombie), waiting up to ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def wait_for_file(path: Path, wait_s: float = 20.0) -> str:
    """The text of ``path`` once it exists (bounded wait)."""
    deadline = time.monotonic() + wait_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)
    time.sleep(0.05)  # let its writer finish the line
    return path.read_text()


def run_process(target: Any, **inputs: Any) -> sterna.Run:
    return sterna.run(target, executor="process", workers=WORKERS, **inputs)


# -- module-level tasks ------------------------------------------------------------------------

FACTOR = 3


def _scale(x: int) -> int:
    return x * FACTOR


@sterna.task
def scaled(x: int) -> tuple[int, int]:
    return _scale(x), os.getpid()


@sterna.workflow
def scaled_wf(x: int) -> tuple[int, int]:
    return scaled(x=x)


@sterna.task
def kill_self(signum: int) -> int:
    die_by(signum)
    return 0


# -- 1. independent branches run at the same time ---------------------------------------------


def test_independent_branches_run_at_the_same_time(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task
    def rendezvous(folder: str, me: str, other: str) -> str:
        meet(folder, me, other)
        calls.append([me, os.getpid()])
        return me

    @sterna.workflow
    def both(folder: str) -> tuple[str, str]:
        return (rendezvous(folder=folder, me="a", other="b"),
                rendezvous(folder=folder, me="b", other="a"))

    run = run_process(both, folder=str(tmp_path))
    assert run.outputs == ("a", "b")
    pids = {pid for _, pid in calls}
    assert len(pids) == 2
    assert os.getpid() not in pids


# -- 2. a worker that dies ----------------------------------------------------------------------

DEATHS = [pytest.param(signal.SIGKILL, id="sigkill"), pytest.param(signal.SIGSEGV, id="segfault")]


@pytest.mark.parametrize("signum", DEATHS)
def test_dead_worker_fails_only_its_node(tmp_path: Path, signum: signal.Signals) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task
    def slow_ok(x: int) -> int:
        time.sleep(0.3)
        calls.append(["ok", os.getpid()])
        return x + 1

    @sterna.workflow
    def mixed(signum: int, x: int) -> tuple[int, int]:
        return kill_self(signum=signum), slow_ok(x=x)

    with pytest.raises(TaskFailedError) as info:
        run_process(mixed, signum=int(signum), x=1)
    error = info.value
    message = str(error)
    assert type(error) is TaskFailedError
    assert error.task == kill_self.name
    assert kill_self.name in message
    assert "worker process" in message
    assert "died" in message
    assert signum.name in message
    # the other task of the run still completed and was recorded
    assert [what for what, _ in calls] == ["ok"]
    records = {record.task: record for record in error.run.nodes.values()}
    assert records[kill_self.name].status == "failed"
    assert records[slow_ok.name].status == "succeeded"
    # the pool still works for the next run
    again = run_process(scaled_wf, x=2)
    assert again.outputs[0] == 6
    assert again.outputs[1] != os.getpid()


@pytest.mark.parametrize("signum", DEATHS)
def test_dead_worker_is_retried_in_a_fresh_worker(tmp_path: Path, signum: signal.Signals) -> None:
    calls = Calls(tmp_path / "calls.jsonl")
    marker = tmp_path / "died-once"

    @sterna.task(retries=1)
    def die_once(signum: int) -> int:
        calls.append(os.getpid())
        if not marker.exists():
            marker.touch()
            die_by(signum)
        return os.getpid()

    @sterna.workflow
    def once(signum: int) -> int:
        return die_once(signum=signum)

    run = sterna.run(once, executor="process", workers=1, signum=int(signum))
    first, second = calls.items()  # one worker: the retry can only run in a new one
    assert run.outputs == second
    assert first != second
    assert is_gone(first)
    (record,) = run.nodes.values()
    assert record.status == "succeeded"
    assert len(record.attempts) == 2
    assert record.attempts[0].error is not None
    assert "died" in record.attempts[0].error
    assert signum.name in record.attempts[0].error
    assert record.attempts[1].error is None


# -- 3. timeouts really stop the task -----------------------------------------------------------


def test_timed_out_task_is_stopped(tmp_path: Path) -> None:
    late = tmp_path / "late.txt"

    @sterna.task(timeout=0.3)
    def sleep_then_write(path: str, seconds: float) -> str:
        time.sleep(seconds)
        Path(path).write_text("written after the timeout")
        return path

    @sterna.workflow
    def sleepy(path: str, seconds: float) -> str:
        return sleep_then_write(path=path, seconds=seconds)

    started = time.monotonic()
    with pytest.raises(TaskTimeoutError) as info:
        run_process(sleepy, path=str(late), seconds=1.5)
    message = str(info.value)
    assert sleep_then_write.name in message
    assert "timed out after 0.3 s" in message
    assert info.value.task == sleep_then_write.name
    time.sleep(max(0.0, started + 1.5 + 0.5 - time.monotonic()))
    assert not late.exists()


def test_task_that_evades_sigalrm_is_killed(tmp_path: Path) -> None:
    """One task blocks SIGALRM, another ignores it: the driver kills both workers."""
    calls = Calls(tmp_path / "calls.jsonl")
    sleep_s = 3.5  # past the timeout plus the grace the worker's own alarm gets

    @sterna.task(timeout=0.3)
    def stuck(path: str, how: str) -> str:
        calls.append([how, os.getpid()])
        if how == "mask":
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        else:
            signal.signal(signal.SIGALRM, signal.SIG_IGN)
        time.sleep(sleep_s)
        Path(path).write_text("written after the timeout")
        return path

    @sterna.workflow
    def stuck_wf(masked: str, ignored: str) -> tuple[str, str]:
        return stuck(path=masked, how="mask"), stuck(path=ignored, how="ignore")

    masked, ignored = tmp_path / "masked.txt", tmp_path / "ignored.txt"
    started = time.monotonic()
    with pytest.raises(TaskTimeoutError) as info:
        run_process(stuck_wf, masked=str(masked), ignored=str(ignored))
    assert stuck.name in str(info.value)
    assert "timed out after 0.3 s" in str(info.value)
    records = list(info.value.run.nodes.values())
    assert [r.status for r in records] == ["failed", "failed"]
    assert all("timed out" in (r.error or "") for r in records)
    pids = dict(calls.items())
    assert set(pids) == {"mask", "ignore"}
    assert all(is_gone(pid) for pid in pids.values())
    time.sleep(max(0.0, started + sleep_s + 0.5 - time.monotonic()))
    assert not masked.exists()
    assert not ignored.exists()


def test_timeouts_are_retried(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")
    marker = tmp_path / "slow-once"

    @sterna.task(timeout=0.3, retries=1)
    def slow_once() -> int:
        calls.append("slow_once")
        if not marker.exists():
            marker.touch()
            time.sleep(5)
        return 7

    @sterna.task(timeout=0.3, retries=1)
    def always_slow() -> int:
        calls.append("always_slow")
        time.sleep(5)
        return 0

    run = run_process(slow_once)
    assert run.outputs == 7
    (record,) = run.nodes.values()
    assert len(record.attempts) == 2
    assert "timed out" in (record.attempts[0].error or "")
    assert record.attempts[1].error is None

    with pytest.raises(TaskTimeoutError) as info:
        run_process(always_slow)
    assert info.value.attempts == 2
    assert always_slow.name in str(info.value)
    assert "2 attempts" in str(info.value)
    assert calls == ["slow_once", "slow_once", "always_slow", "always_slow"]


# -- 4. admission against cpu / mem / gpu capacity ----------------------------------------------


def test_tasks_that_need_every_core_never_overlap(tmp_path: Path) -> None:
    sterna.configure(cpus=2)
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(requests=Resources(cpu=2))
    def hog(name: str) -> str:
        start = time.time()
        time.sleep(0.3)
        calls.append([name, start, time.time()])
        return name

    @sterna.workflow
    def hogs() -> tuple[str, str]:
        return hog(name="a"), hog(name="b")

    run = run_process(hogs)
    assert run.outputs == ("a", "b")
    (_, start1, end1), (_, start2, end2) = sorted(calls.items(), key=lambda c: c[1])
    assert end1 <= start2, f"[{start1}, {end1}] overlaps [{start2}, {end2}]"


def test_one_core_tasks_overlap(tmp_path: Path) -> None:
    sterna.configure(cpus=2)

    @sterna.task(requests=Resources(cpu=1))
    def light(folder: str, me: str, other: str) -> str:
        meet(folder, me, other)
        return me

    @sterna.workflow
    def lights(folder: str) -> tuple[str, str]:
        return (light(folder=folder, me="a", other="b"),
                light(folder=folder, me="b", other="a"))

    assert run_process(lights, folder=str(tmp_path)).outputs == ("a", "b")


IMPOSSIBLE = [
    pytest.param({"cpus": 2}, Resources(cpu=64), ["cpu=64", "2 cores"], id="cpu"),
    pytest.param({}, Resources(mem="10Ti"), ["mem=10240.0GiB"], id="mem"),
    pytest.param({"gpus": "0"}, Resources(gpu=1), ["gpu=1", "0 GPUs"], id="gpu-none"),
    pytest.param(None, Resources(gpu=1), ["gpu=1", "0 GPUs"], id="gpu-unset"),
]


@pytest.mark.parametrize(("settings", "requests", "fragments"), IMPOSSIBLE)
def test_request_that_can_never_fit_fails_before_anything_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: dict[str, Any] | None,
        requests: Resources, fragments: list[str]) -> None:
    if settings is None:  # no GPU configured, none visible
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    else:
        sterna.configure(**settings)
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task
    def first(x: int) -> int:
        calls.append("first")
        return x

    @sterna.task(requests=requests)
    def greedy(x: int) -> int:
        calls.append("greedy")
        return x

    @sterna.workflow
    def wants_too_much(x: int) -> int:
        return greedy(x=first(x=x))

    with pytest.raises(ResourceError) as info:
        run_process(wants_too_much, x=1)
    message = str(info.value)
    assert greedy.name in message
    for fragment in fragments:
        assert fragment in message
    assert calls == []


# -- 5. GPUs --------------------------------------------------------------------------------------


def test_gpu_ids_are_given_to_gpu_tasks_only(tmp_path: Path) -> None:
    sterna.configure(gpus="0,1")  # fake ids: nothing here touches a real GPU

    @sterna.task(requests=Resources(gpu=1))
    def one_gpu(folder: str, me: str, other: str) -> str:
        meet(folder, me, other)
        return os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")

    @sterna.task(requests=Resources(gpu=2))
    def two_gpus() -> str:
        return os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")

    @sterna.task
    def no_gpu(folder: str, me: str, other: str) -> str:
        meet(folder, me, other)
        return os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")

    @sterna.workflow
    def pair_of(folder: str) -> tuple[str, str]:
        return (one_gpu(folder=folder, me="a", other="b"),
                one_gpu(folder=folder, me="b", other="a"))

    @sterna.workflow
    def plain_pair(folder: str) -> tuple[str, str]:
        return (no_gpu(folder=folder, me="a", other="b"),
                no_gpu(folder=folder, me="b", other="a"))

    (tmp_path / "gpu").mkdir()
    seen = run_process(pair_of, folder=str(tmp_path / "gpu")).outputs
    assert sorted(seen) == ["0", "1"]

    assert run_process(two_gpus).outputs == "0,1"

    # both workers have now run GPU tasks; a task without gpu requests gets nothing from sterna
    (tmp_path / "plain").mkdir()
    plain = run_process(plain_pair, folder=str(tmp_path / "plain")).outputs
    driver = os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")
    assert plain == (driver, driver)


# -- 6. environment variables -------------------------------------------------------------------


def test_environment_is_set_for_its_task_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("X", raising=False)

    @sterna.task(environment={"X": "1"})
    def with_x() -> tuple[int, str]:
        return os.getpid(), os.environ.get("X", "<unset>")

    @sterna.task
    def without_x(after: int) -> tuple[int, str]:
        return os.getpid(), os.environ.get("X", "<unset>")

    @sterna.workflow
    def env_wf() -> tuple[int, str, int, str]:
        pid_a, x_a = with_x()
        pid_b, x_b = without_x(after=pid_a)
        return pid_a, x_a, pid_b, x_b

    pid_a, x_a, pid_b, x_b = sterna.run(env_wf, executor="process", workers=1).outputs
    assert x_a == "1"
    assert pid_b == pid_a  # one worker: the next task runs in the same process
    assert x_b == "<unset>"
    assert "X" not in os.environ


# -- 7. Arrow tables between workers ------------------------------------------------------------


def test_table_made_in_one_worker_is_read_in_another(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")
    data = {"n": [1, 2, None, 4], "s": ["a", "b", "c", None]}

    @sterna.task
    def make() -> pa.Table:
        calls.append(["make", os.getpid()])
        return pa.table(data)

    @sterna.task
    def read(t: pa.Table, folder: str, me: str, other: str) -> str:
        meet(folder, me, other)
        calls.append(["read", os.getpid()])
        return json.dumps(t.to_pydict())

    @sterna.workflow
    def hand_off(folder: str) -> tuple[pa.Table, str, str]:
        t = make()
        return (t, read(t=t, folder=folder, me="a", other="b"),
                read(t=t, folder=folder, me="b", other="a"))

    table, first, second = run_process(hand_off, folder=str(tmp_path)).outputs
    assert table.to_pydict() == data
    assert json.loads(first) == data
    assert json.loads(second) == data
    made = [pid for what, pid in calls if what == "make"]
    readers = {pid for what, pid in calls if what == "read"}
    assert len(made) == 1 and len(readers) == 2
    assert readers - set(made), "no reader ran in a worker other than the maker"


def test_large_table_is_not_copied_into_the_receiver() -> None:
    """~1 GB of int64 handed from one task to the next adds no anonymous memory there."""
    chunk, chunks = 1_000_000, 130  # 130M int64 values: 1.04 GB

    @sterna.task
    def big(n: int, times: int) -> pa.Table:
        values = pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), n))  # 1..n
        return pa.table({"v": pa.chunked_array([values] * times)})

    @sterna.task
    def total(t: pa.Table) -> tuple[int, int, int]:
        before = rss_anon()
        value = pc.sum(t["v"]).as_py()  # reads every value: every buffer is touched
        after = rss_anon()
        return value, before, after

    @sterna.workflow
    def big_wf(n: int, times: int) -> tuple[int, int, int]:
        return total(t=big(n=n, times=times))

    value, before, after = run_process(big_wf, n=chunk, times=chunks).outputs
    assert value == chunks * chunk * (chunk + 1) // 2
    assert after - before < 200 * 2**20, f"RssAnon grew by {(after - before) / 2**20:.0f} MiB"


# -- 8. where tasks are defined -------------------------------------------------------------------


def test_task_defined_inside_a_test_function() -> None:
    offset = 10

    @dataclass
    class Point:
        x: int
        y: int

    def shift(value: int) -> int:
        return value + offset

    @sterna.task
    def moved(x: int) -> Point:
        return Point(shift(x), os.getpid())

    @sterna.workflow
    def moved_wf(x: int) -> Point:
        return moved(x=x)

    point = run_process(moved_wf, x=5).outputs
    assert isinstance(point, Point)
    assert point.x == 15
    assert point.y != os.getpid()


def test_task_defined_at_module_level() -> None:
    value, pid = run_process(scaled_wf, x=4).outputs
    assert value == 12
    assert pid != os.getpid()


def test_pipeline_script_without_main_guard(tmp_path: Path) -> None:
    script = tmp_path / "pipeline.py"
    script.write_text(textwrap.dedent("""\
        import os

        import sterna

        OFFSET = 100


        def bump(x):
            return x + OFFSET


        @sterna.task
        def double(x: int) -> int:
            return 2 * x


        @sterna.task
        def bumped(x: int) -> tuple[int, int]:
            return bump(x), os.getpid()


        @sterna.workflow
        def pipeline(x: int) -> tuple[int, int]:
            return bumped(x=double(x=x))


        value, pid = sterna.run(pipeline, executor="process", workers=2, x=5).outputs
        print("RESULT", value, pid != os.getpid())
        """))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "RESULT 110 True"


# -- 9. inputs that cannot be sent ----------------------------------------------------------------


@pytest.mark.parametrize(("make", "kind"), [
    pytest.param(lambda: (i for i in range(3)), "'generator'", id="generator"),
    pytest.param(threading.Lock, "'_thread.lock'", id="lock"),
])
def test_input_that_cannot_be_pickled(tmp_path: Path, make: Any, kind: str) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task
    def takes_anything(value: Any) -> str:
        calls.append("ran")
        return type(value).__name__

    @sterna.workflow
    def anything_wf(value: Any) -> str:
        return takes_anything(value=value)

    with pytest.raises(TaskFailedError) as info:
        run_process(anything_wf, value=make())
    message = str(info.value)
    assert takes_anything.name in message
    assert "cannot be sent to a worker process" in message
    assert f"cannot pickle {kind}" in message
    assert calls == []


# -- 10. Ctrl-C ---------------------------------------------------------------------------------


LONG_TASKS = """\
import os
import time
from pathlib import Path

import sterna

FOLDER = {folder!r}


@sterna.task
def long(name: str) -> int:
    Path(FOLDER, name + ".tmp").write_text(str(os.getpid()))
    os.replace(Path(FOLDER, name + ".tmp"), Path(FOLDER, name + ".pid"))
    time.sleep(60)
    return 1


@sterna.workflow
def long_wf() -> tuple[int, int]:
    return long(name="a"), long(name="b")
"""
RUN_LONG = """
sterna.run(long_wf, executor="process", workers=2)
"""


def interrupt_long_pipeline(tmp_path: Path, *, tasks_module: bool = False,
                            ) -> tuple[int, str, list[int]]:
    """Run a pipeline of two long tasks, Ctrl-C it once both run: (status, stderr, worker pids).

    The tasks are in the script itself (sent to workers by value), or in a module the
    script imports (sent by name). Fails if a worker outlives the driver (and kills it
    then, so none is left sleeping).
    """
    markers = tmp_path / "markers"
    markers.mkdir()
    tasks = LONG_TASKS.format(folder=str(markers))
    script = tmp_path / "long_pipeline.py"
    if tasks_module:
        (tmp_path / "long_tasks.py").write_text(tasks)
        script.write_text("import sterna\nfrom long_tasks import long_wf\n" + RUN_LONG)
    else:
        script.write_text(tasks + RUN_LONG)
    err = tmp_path / "stderr.txt"
    with open(err, "w") as stderr_file:  # a file, not a pipe: a leaked worker keeps a pipe open
        proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=stderr_file)
    pids: list[int] = []
    try:
        pids = [int(wait_for_file(markers / f"{name}.pid")) for name in ("a", "b")]
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        stderr = err.read_text()
        assert proc.pid not in pids
        left = [pid for pid in pids if not is_gone(pid)]
        assert not left, f"workers {left} of {pids} outlived Ctrl-C; the driver said:\n{stderr}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in pids:
            if not is_gone(pid, wait_s=0):
                os.kill(pid, signal.SIGKILL)
    return proc.returncode, stderr, pids


def test_ctrl_c_stops_workers_and_records_interrupted_run(tmp_path: Path) -> None:
    from sterna.cache.history import runs_list
    from sterna.cache.store import Store

    returncode, stderr, pids = interrupt_long_pipeline(tmp_path)
    assert returncode != 0
    assert stderr.rstrip().splitlines()[-1] == "KeyboardInterrupt", stderr
    assert len(set(pids)) == 2

    runs = runs_list(Store.at(tmp_path / ".sterna"))
    assert len(runs) == 1
    assert runs[0]["status"] == "interrupted"
    assert runs[0]["executor"] == "process"


@pytest.mark.parametrize("tasks_module", [False, True], ids=["tasks-in-script", "tasks-module"])
def test_ctrl_c_exit_status_is_that_of_sigint(tmp_path: Path, tasks_module: bool) -> None:
    """Python ends a script stopped by an unhandled Ctrl-C by SIGINT (130 in a shell).

    That is how a shell loop or make tells that the user interrupted it; recording
    the interrupted run must not change it.
    """
    returncode, stderr, _ = interrupt_long_pipeline(tmp_path, tasks_module=tasks_module)
    assert stderr.rstrip().splitlines()[-1] == "KeyboardInterrupt", stderr
    assert returncode == -signal.SIGINT
