"""The engine when tasks fail, on every executor: retries, timeouts, error details, records,
interrupts."""

import os
import signal
import threading
import time
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from executor_support import Calls

import sterna
from sterna import SternaError, TaskFailedError, TaskTimeoutError, TypeCheckError

pytestmark = pytest.mark.usefixtures("executor")


class Flaky:
    """Fails ``failures`` times, then returns; records every call (from any process)."""

    def __init__(self, path: Path, failures: int) -> None:
        self.failures = failures
        self.calls = Calls(path)

    def __call__(self, x: int) -> int:
        self.calls.append(x)
        count = len(self.calls)
        if count <= self.failures:
            raise ValueError(f"flaky failure {count}")
        return x + 100


def _run_in_thread(target: Any, **inputs: Any) -> dict[str, Any]:
    """Run ``sterna.run(target, **inputs)`` in a non-main thread; return what happened."""
    box: dict[str, Any] = {}

    def body() -> None:
        try:
            box["run"] = sterna.run(target, **inputs)
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    thread = threading.Thread(target=body, name="not-main")
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    return box


# -- retries ----------------------------------------------------------------------------------


def test_retries_then_success(tmp_path: Path) -> None:
    flaky = Flaky(tmp_path / "flaky.jsonl", failures=2)

    @sterna.task(retries=2)
    def unreliable(x: int) -> int:
        return flaky(x)

    run = sterna.run(unreliable, x=1)
    assert run.outputs == 101
    assert run.status == "succeeded"
    assert flaky.calls == [1, 1, 1]
    record = run.nodes["unreliable"]
    assert record.status == "succeeded"
    assert record.error is None
    assert [a.number for a in record.attempts] == [1, 2, 3]
    first, second, third = record.attempts
    assert first.error is not None and "ValueError" in first.error
    assert "flaky failure 1" in first.error
    assert second.error is not None and "flaky failure 2" in second.error
    assert third.error is None
    assert first.end <= second.start <= second.end <= third.start
    for attempt in record.attempts:
        assert attempt.duration == pytest.approx(attempt.end - attempt.start)
    assert record.start <= first.start
    assert third.end <= record.end


def test_retries_exhausted(tmp_path: Path) -> None:
    flaky = Flaky(tmp_path / "flaky.jsonl", failures=2)

    @sterna.task(retries=1)
    def unreliable(x: int) -> int:
        return flaky(x)

    with pytest.raises(TaskFailedError) as info:
        sterna.run(unreliable, x=1)
    error = info.value
    assert type(error) is TaskFailedError
    assert flaky.calls == [1, 1]
    assert error.attempts == 2
    assert error.task == unreliable.name
    assert "2 attempts" in str(error)
    assert "flaky failure 2" in str(error)
    assert isinstance(error.__cause__, ValueError)
    assert str(error.__cause__) == "flaky failure 2"
    record = error.run.nodes["unreliable"]  # type: ignore[attr-defined]
    assert record.status == "failed"
    assert [a.number for a in record.attempts] == [1, 2]
    assert all(a.error is not None for a in record.attempts)
    assert record.error is not None and "flaky failure 2" in record.error


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_function_runs_retries_plus_one_times(retries: int, tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(retries=retries)
    def always_fails(x: int) -> int:
        calls.append(x)
        raise RuntimeError("nope")

    with pytest.raises(TaskFailedError) as info:
        sterna.run(always_fails, x=3)
    assert calls == [3] * (retries + 1)
    assert info.value.attempts == retries + 1
    assert len(info.value.run.nodes["always_fails"].attempts) == retries + 1  # type: ignore[attr-defined]


def test_retries_in_a_workflow_keep_downstream_running(tmp_path: Path) -> None:
    flaky = Flaky(tmp_path / "flaky.jsonl", failures=1)
    seen = Calls(tmp_path / "seen.jsonl")

    @sterna.task(retries=1)
    def unreliable(x: int) -> int:
        return flaky(x)

    @sterna.task
    def after(y: int) -> int:
        seen.append(y)
        return y * 2

    @sterna.workflow
    def wf(x: int) -> int:
        return after(y=unreliable(x=x))

    run = sterna.run(wf, x=1)
    assert run.outputs == 202
    assert seen == [101]
    assert flaky.calls == [1, 1]
    assert len(run.nodes["unreliable"].attempts) == 2
    assert len(run.nodes["after"].attempts) == 1


# -- timeouts ---------------------------------------------------------------------------------


def test_timeout_stops_the_task(tmp_path: Path) -> None:
    events = Calls(tmp_path / "events.jsonl")

    @sterna.task(timeout=0.3)
    def sleepy(x: int) -> int:
        events.append("started")
        try:
            time.sleep(5)
            events.append("after sleep")
        finally:
            events.append("exited")
        return x

    with pytest.raises(TaskTimeoutError) as info:
        sterna.run(sleepy, x=1)
    error = info.value
    assert isinstance(error, TaskFailedError)
    # the task's frame was unwound before the run returned: it was stopped, not abandoned
    assert events == ["started", "exited"]
    assert error.task == sleepy.name
    assert error.node == "sleepy"
    assert error.attempts == 1
    message = str(error)
    assert sleepy.name in message
    assert "timed out" in message
    assert "0.3" in message
    run = error.run  # type: ignore[attr-defined]
    assert run.status == "failed"
    record = run.nodes["sleepy"]
    assert record.status == "failed"
    assert len(record.attempts) == 1
    assert record.attempts[0].error is not None
    assert "timed out" in record.attempts[0].error


def test_timeout_with_timedelta(tmp_path: Path) -> None:
    events = Calls(tmp_path / "events.jsonl")

    @sterna.task(timeout=timedelta(milliseconds=300))
    def sleepy() -> None:
        time.sleep(5)
        events.append("after sleep")

    with pytest.raises(TaskTimeoutError) as info:
        sterna.run(sleepy)
    assert events == []
    assert "0.3" in str(info.value)


def test_timeout_is_not_swallowed_by_broad_except(tmp_path: Path) -> None:
    events = Calls(tmp_path / "events.jsonl")

    @sterna.task(timeout=0.3)
    def stubborn() -> int:
        try:
            time.sleep(5)
        except Exception:
            events.append("swallowed")
            return -1
        events.append("after sleep")
        return 0

    with pytest.raises(TaskTimeoutError):
        sterna.run(stubborn)
    assert events == []


def test_timeout_is_retried(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(timeout=0.3, retries=2)
    def slow_then_fast(x: int) -> int:
        calls.append(x)
        if len(calls) == 1:
            time.sleep(5)
        return x * 10

    run = sterna.run(slow_then_fast, x=4)
    assert run.outputs == 40
    assert calls == [4, 4]
    record = run.nodes["slow_then_fast"]
    assert record.status == "succeeded"
    assert len(record.attempts) == 2
    assert record.attempts[0].error is not None and "timed out" in record.attempts[0].error
    assert record.attempts[1].error is None


def test_timeout_every_attempt(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(timeout=0.2, retries=1)
    def always_slow() -> None:
        calls.append(1)
        time.sleep(5)
        calls.append(2)

    with pytest.raises(TaskTimeoutError) as info:
        sterna.run(always_slow)
    assert calls == [1, 1]
    assert info.value.attempts == 2
    assert "2 attempts" in str(info.value)


def test_timer_is_disarmed_and_handler_restored() -> None:
    before = signal.getsignal(signal.SIGALRM)

    @sterna.task(timeout=0.5)
    def fast() -> int:
        return 1

    @sterna.task(timeout=0.2)
    def slow() -> int:
        time.sleep(5)
        return 2

    assert sterna.run(fast).outputs == 1
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is before
    with pytest.raises(TaskTimeoutError):
        sterna.run(slow)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is before


def test_nested_run_keeps_the_outer_timeout(tmp_path: Path) -> None:
    events = Calls(tmp_path / "events.jsonl")

    @sterna.task(timeout=5)
    def inner(x: int) -> int:
        return x + 1

    @sterna.task(timeout=0.3)
    def outer(x: int) -> int:
        # serial: the inner run's timer is set in the very process whose timer it must keep
        y = sterna.run(inner, x=x, executor="serial").outputs
        events.append("inner done")
        time.sleep(5)
        events.append("after sleep")
        return y

    with pytest.raises(TaskTimeoutError) as info:
        sterna.run(outer, x=1)
    assert info.value.task == outer.name
    assert events == ["inner done"]


# The timer is the driver's own: only a task run in the driver could disturb it.
@pytest.mark.executors("serial")
def test_timer_set_by_the_caller_is_given_back() -> None:
    fired: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        fired.append(signum)

    @sterna.task(timeout=1)
    def quick() -> int:
        return 1

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 60)
    try:
        assert sterna.run(quick).outputs == 1
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert remaining > 0
        assert signal.getsignal(signal.SIGALRM) is handler
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert fired == []


# Off the main thread the driver abandons the task; the threading.Event is the driver's.
@pytest.mark.executors("serial")
def test_timeout_off_the_main_thread() -> None:
    release = threading.Event()
    events: list[str] = []

    @sterna.task(timeout=0.3)
    def waits(x: int) -> int:
        events.append("started")
        release.wait(10)
        events.append("after wait")
        return x

    try:
        box = _run_in_thread(waits, x=1)
        error = box.get("error")
        assert isinstance(error, TaskTimeoutError), box
        assert error.task == waits.name
        assert error.attempts == 1
        assert "timed out" in str(error)
        assert error.run.status == "failed"  # type: ignore[attr-defined]
        assert error.run.nodes["waits"].status == "failed"  # type: ignore[attr-defined]
        # off the main thread the task is abandoned: it had not got past its wait
        assert events == ["started"]
    finally:
        release.set()


# Off the main thread the driver abandons the task; the threading.Event is the driver's.
@pytest.mark.executors("serial")
def test_timeout_off_the_main_thread_with_broad_except() -> None:
    release = threading.Event()
    events: list[str] = []

    @sterna.task(timeout=0.3, retries=1)
    def stubborn() -> int:
        events.append("started")
        try:
            release.wait(10)
        except Exception:
            return -1
        return 0

    try:
        box = _run_in_thread(stubborn)
        error = box.get("error")
        assert isinstance(error, TaskTimeoutError), box
        assert error.attempts == 2
        assert events == ["started", "started"]
    finally:
        release.set()


# Workers run tasks in their own main thread: a timeout stops the task whatever thread started
# the run (in the driver, off the main thread, the task is abandoned: see the tests above).
@pytest.mark.executors("process", "ray")
def test_timeout_of_a_run_started_off_the_main_thread_stops_the_task_in_its_worker(
        tmp_path: Path) -> None:
    events = Calls(tmp_path / "events.jsonl")

    @sterna.task(timeout=0.3, retries=1)
    def stubborn(x: int) -> int:
        events.append("started")
        try:
            time.sleep(5)
            events.append("after sleep")
        except Exception:
            events.append("swallowed")
            return -1
        finally:
            events.append("exited")
        return x

    box = _run_in_thread(stubborn, x=1)
    error = box.get("error")
    assert isinstance(error, TaskTimeoutError), box
    assert error.task == stubborn.name
    assert error.attempts == 2
    assert "timed out" in str(error) and "0.3" in str(error)
    assert error.run.status == "failed"  # type: ignore[attr-defined]
    assert error.run.nodes["stubborn"].status == "failed"  # type: ignore[attr-defined]
    # each attempt was stopped inside its sleep and unwound, not abandoned or swallowed
    assert events == ["started", "exited", "started", "exited"]


def test_failure_off_the_main_thread_with_timeout() -> None:
    @sterna.task(timeout=5)
    def broken(x: int) -> int:
        raise KeyError(f"missing {x}")

    box = _run_in_thread(broken, x=7)
    error = box.get("error")
    assert isinstance(error, TaskFailedError), box
    assert not isinstance(error, TaskTimeoutError)
    assert isinstance(error.__cause__, KeyError)
    assert "def broken" in error.traceback or "raise KeyError" in error.traceback


def test_success_off_the_main_thread_with_timeout() -> None:
    @sterna.task(timeout=5)
    def quick(x: int) -> int:
        return x + 1

    box = _run_in_thread(quick, x=1)
    assert "error" not in box, box
    assert box["run"].outputs == 2


# -- what a failure carries -------------------------------------------------------------------


def _raising_line() -> int:
    """Line of the ``raise`` in ``_explode`` (first line is the decorator's)."""
    return _explode.fn.__code__.co_firstlineno + 3


@sterna.task
def _explode(table: pa.Table, n: int, label: str) -> int:
    """Fails on purpose (keep the raise right after this docstring)."""
    raise ZeroDivisionError(f"cannot split {label}")


def test_task_failed_error_details() -> None:
    table = pa.table({"a": list(range(10_000)), "b": [str(i) for i in range(10_000)]})
    with pytest.raises(TaskFailedError) as info:
        sterna.run(_explode, table=table, n=3, label="rows")
    error = info.value
    assert type(error) is TaskFailedError
    assert error.task == _explode.name
    assert error.node == "_explode"
    assert error.attempts == 1
    assert set(error.inputs) == {"table", "n", "label"}
    assert error.inputs["n"] == "3"
    assert error.inputs["label"] == "'rows'"
    summary = error.inputs["table"]
    assert "10,000 rows" in summary or "10000 rows" in summary
    assert "2 columns" in summary
    assert len(summary) < 100
    message = str(error)
    assert _explode.name in message
    assert "ZeroDivisionError" in message
    assert "cannot split rows" in message
    assert len(message) < 1000  # the table is summarised, not dumped
    assert isinstance(error.__cause__, ZeroDivisionError)
    assert str(error.__cause__) == "cannot split rows"


def test_task_failed_traceback_starts_at_the_task() -> None:
    with pytest.raises(TaskFailedError) as info:
        sterna.run(_explode, table=pa.table({"a": [1]}), n=1, label="x")
    text = info.value.traceback
    assert "ZeroDivisionError: cannot split x" in text
    frames = [line.strip() for line in text.splitlines() if line.strip().startswith("File ")]
    assert frames, text
    assert frames[0].startswith(f'File "{__file__}", line {_raising_line()}, in _explode')
    assert "engine.py" not in text


# A worker's exception arrives without its traceback object (the traceback travels as text).
@pytest.mark.executors("serial")
def test_task_failed_cause_carries_the_original_traceback() -> None:
    with pytest.raises(TaskFailedError) as info:
        sterna.run(_explode, table=pa.table({"a": [1]}), n=1, label="x")
    original = info.value.__cause__
    assert isinstance(original, ZeroDivisionError)
    last = traceback.extract_tb(original.__traceback__)[-1]
    assert last.name == "_explode"
    assert last.lineno == _raising_line()


def test_traceback_of_guarded_task_starts_at_the_task() -> None:
    @sterna.task(environment={"STERNA_TEST_FAIL": "1"}, timeout=5)
    def guarded_fail() -> int:
        raise OSError("guarded boom")

    with pytest.raises(TaskFailedError) as info:
        sterna.run(guarded_fail)
    text = info.value.traceback
    frames = [line.strip() for line in text.splitlines() if line.strip().startswith("File ")]
    assert frames[0].startswith(f'File "{__file__}"')
    assert frames[0].endswith("in guarded_fail")
    assert "guard.py" not in text
    assert "OSError: guarded boom" in text
    assert "STERNA_TEST_FAIL" not in os.environ


def test_failure_marks_nodes_failed_skipped_and_succeeded(tmp_path: Path) -> None:
    ran = Calls(tmp_path / "ran.jsonl")

    @sterna.task
    def source(x: int) -> int:
        ran.append("source")
        return x

    @sterna.task
    def side(x: int) -> int:
        ran.append("side")
        return x

    @sterna.task
    def boom(x: int) -> int:
        ran.append("boom")
        raise ValueError(f"bad value {x}")

    @sterna.task
    def downstream(x: int) -> int:
        ran.append("downstream")
        return x

    @sterna.task
    def last(x: int, y: int) -> int:
        ran.append("last")
        return x + y

    @sterna.workflow
    def wf(x: int) -> int:
        s = source(x=x)
        other = side(x=x)
        return last(x=downstream(x=boom(x=s)), y=other)

    with pytest.raises(TaskFailedError) as info:
        sterna.run(wf, x=5)
    error = info.value
    assert error.task == boom.name
    assert error.node == "boom"
    assert error.inputs == {"x": "5"}
    assert "downstream" not in ran and "last" not in ran
    run = error.run  # type: ignore[attr-defined]
    assert isinstance(run, sterna.Run)
    assert run.status == "failed"
    assert run.inputs == {"x": 5}
    assert set(run.nodes) == {"source", "side", "boom", "downstream", "last"}
    assert run.nodes["source"].status == "succeeded"
    assert run.nodes["boom"].status == "failed"
    assert run.nodes["boom"].error is not None and "bad value 5" in run.nodes["boom"].error
    assert run.nodes["downstream"].status == "skipped"
    assert run.nodes["downstream"].attempts == []
    assert run.nodes["last"].status == "skipped"
    assert run.nodes["last"].task == last.name
    # an independent node is succeeded if it ran before the failure, skipped otherwise
    assert run.nodes["side"].status == ("succeeded" if "side" in ran else "skipped")
    assert run.outputs_by_name == {}
    assert run.end >= run.start


def test_failure_inside_subworkflow_names_the_node() -> None:
    @sterna.task
    def inc(x: int) -> int:
        return x + 1

    @sterna.task
    def fail(x: int) -> int:
        raise RuntimeError(f"inner failure at {x}")

    @sterna.workflow
    def inner(x: int) -> int:
        return fail(x=inc(x=x))

    @sterna.workflow
    def outer(x: int) -> int:
        return inc(x=inner(x=x))

    with pytest.raises(TaskFailedError) as info:
        sterna.run(outer, x=1)
    error = info.value
    assert error.task == fail.name
    assert error.node == "inner.fail"
    assert "'inner.fail'" in str(error)
    run = error.run  # type: ignore[attr-defined]
    assert run.nodes["inner.inc"].status == "succeeded"
    assert run.nodes["inner.fail"].status == "failed"
    assert run.nodes["inc"].status == "skipped"


def test_calling_a_failing_workflow_raises_task_failed_error() -> None:
    @sterna.task
    def fail(x: int) -> int:
        raise ValueError("direct call")

    @sterna.workflow
    def wf(x: int) -> int:
        return fail(x=x)

    with pytest.raises(TaskFailedError, match="direct call"):
        wf(x=1)


def test_large_list_input_is_summarized() -> None:
    @sterna.task
    def fail(xs: list[int]) -> int:
        raise ValueError("no")

    with pytest.raises(TaskFailedError) as info:
        sterna.run(fail, xs=list(range(5000)))
    assert "5,000 items" in info.value.inputs["xs"] or "5000 items" in info.value.inputs["xs"]
    assert "4999" not in str(info.value)


# -- wrong output types -----------------------------------------------------------------------


def test_wrong_output_type_is_a_type_check_error_and_not_retried(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(retries=3)
    def liar(x: int) -> int:
        calls.append(x)
        return "not an int"  # type: ignore[return-value]

    with pytest.raises(TypeCheckError) as info:
        sterna.run(liar, x=1)
    error = info.value
    assert calls == [1]
    message = str(error)
    assert liar.name in message
    assert "output" in message
    assert "'o0'" in message
    assert "int" in message and "str" in message
    assert error.argument == "o0"
    assert error.expected == "int"
    assert error.got == "str"
    run = error.run  # type: ignore[attr-defined]
    assert run.status == "failed"
    record = run.nodes["liar"]
    assert record.status == "failed"
    assert len(record.attempts) == 1
    assert record.error is not None and "'o0'" in record.error


def test_wrong_namedtuple_field_type_names_the_field() -> None:
    from typing import NamedTuple

    class Pair(NamedTuple):
        total: int
        name: str

    @sterna.task
    def bad_pair() -> Pair:
        return Pair(1, 2)  # type: ignore[arg-type]

    @sterna.task
    def after(n: int) -> int:
        return n

    @sterna.workflow
    def wf() -> int:
        return after(n=bad_pair().total)

    with pytest.raises(TypeCheckError) as info:
        sterna.run(wf)
    message = str(info.value)
    assert bad_pair.name in message
    assert "'name'" in message
    assert info.value.argument == "name"
    run = info.value.run  # type: ignore[attr-defined]
    assert run.nodes["bad_pair"].status == "failed"
    assert run.nodes["after"].status == "skipped"


def test_wrong_tuple_shape_is_a_type_check_error() -> None:
    @sterna.task(retries=2)
    def short() -> tuple[int, int]:
        return (1,)  # type: ignore[return-value]

    with pytest.raises(TypeCheckError) as info:
        sterna.run(short)
    assert short.name in str(info.value)
    assert "2 values" in str(info.value)
    assert len(info.value.run.nodes["short"].attempts) == 1  # type: ignore[attr-defined]


def test_untyped_value_checked_at_the_consumer_input(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task
    def loose() -> Any:
        return "seven"

    @sterna.task
    def strict(n: int) -> int:
        calls.append(n)
        return n

    @sterna.workflow
    def wf() -> int:
        return strict(n=loose())

    with pytest.raises(TypeCheckError) as info:
        sterna.run(wf)
    message = str(info.value)
    assert strict.name in message
    assert "'n'" in message
    assert "int" in message and "str" in message
    assert calls == []
    run = info.value.run  # type: ignore[attr-defined]
    assert run.nodes["loose"].status == "succeeded"
    assert run.nodes["strict"].status == "failed"


# -- environment after failure ----------------------------------------------------------------


def test_environment_restored_after_failure_and_timeout() -> None:
    @sterna.task(environment={"STERNA_TEST_E": "1"})
    def env_fail() -> None:
        assert os.environ["STERNA_TEST_E"] == "1"
        raise ValueError("env fail")

    @sterna.task(environment={"STERNA_TEST_E": "2"}, timeout=0.2)
    def env_slow() -> None:
        time.sleep(5)

    with pytest.raises(TaskFailedError, match="env fail"):
        sterna.run(env_fail)
    assert "STERNA_TEST_E" not in os.environ
    with pytest.raises(TaskTimeoutError):
        sterna.run(env_slow)
    assert "STERNA_TEST_E" not in os.environ


# -- KeyboardInterrupt ------------------------------------------------------------------------


# A KeyboardInterrupt raised by a task interrupts the driver only when the task runs there.
@pytest.mark.executors("serial")
def test_keyboard_interrupt_propagates_and_is_not_retried() -> None:
    calls: list[str] = []

    @sterna.task(retries=3)
    def interrupted() -> int:
        calls.append("interrupted")
        raise KeyboardInterrupt

    @sterna.task
    def later(x: int) -> int:
        calls.append("later")
        return x

    @sterna.workflow
    def wf() -> int:
        return later(x=interrupted())

    with pytest.raises(KeyboardInterrupt):
        sterna.run(wf)
    assert calls == ["interrupted"]


# A KeyboardInterrupt raised by a task interrupts the driver only when the task runs there.
@pytest.mark.executors("serial")
def test_keyboard_interrupt_in_guarded_task() -> None:
    calls: list[int] = []
    before = signal.getsignal(signal.SIGALRM)

    @sterna.task(timeout=5, environment={"STERNA_TEST_K": "1"}, retries=2)
    def interrupted() -> None:
        calls.append(1)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sterna.run(interrupted)
    assert calls == [1]
    assert "STERNA_TEST_K" not in os.environ
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is before


# A KeyboardInterrupt raised by a task interrupts the driver only when the task runs there.
@pytest.mark.executors("serial")
def test_keyboard_interrupt_carries_the_interrupted_run() -> None:
    ran: list[str] = []

    @sterna.task
    def first() -> int:
        ran.append("first")
        return 1

    @sterna.task
    def interrupted(x: int) -> int:
        ran.append("interrupted")
        raise KeyboardInterrupt

    @sterna.task
    def later(x: int) -> int:
        ran.append("later")
        return x

    @sterna.workflow
    def wf() -> int:
        return later(x=interrupted(x=first()))

    with pytest.raises(KeyboardInterrupt) as info:
        sterna.run(wf)
    assert ran == ["first", "interrupted"]
    run = getattr(info.value, "run", None)
    assert isinstance(run, sterna.Run), "the interrupted Run is not reachable"
    assert run.status == "interrupted"
    assert run.nodes["first"].status == "succeeded"
    assert run.nodes["later"].status == "skipped"
    # the node that was running when interrupted ran: it is not "skipped"
    record = run.nodes["interrupted"]
    assert record.status in ("interrupted", "failed")
    assert len(record.attempts) == 1


def test_ctrl_c_in_the_driver_stops_the_running_task_and_keeps_the_run(tmp_path: Path) -> None:
    """SIGINT to the driver while a task runs (wherever it runs): the run ends, interrupted."""
    ran = Calls(tmp_path / "ran.jsonl")
    driver = os.getpid()

    @sterna.task
    def first() -> int:
        ran.append("first")
        return 1

    @sterna.task(retries=3)
    def interrupted(x: int) -> int:
        ran.append("interrupted")
        os.kill(driver, signal.SIGINT)  # Ctrl-C, as the terminal would send it to the driver
        time.sleep(5)
        ran.append("after sleep")
        return x

    @sterna.task
    def later(x: int) -> int:
        ran.append("later")
        return x

    @sterna.workflow
    def wf() -> int:
        return later(x=interrupted(x=first()))

    with pytest.raises(KeyboardInterrupt) as info:
        sterna.run(wf)
    # the running task was stopped (never got past its sleep) and not retried
    assert ran == ["first", "interrupted"]
    run = getattr(info.value, "run", None)
    assert isinstance(run, sterna.Run), "the interrupted Run is not reachable"
    assert run.status == "interrupted"
    assert run.nodes["first"].status == "succeeded"
    assert run.nodes["later"].status == "skipped"
    assert run.nodes["later"].attempts == []
    record = run.nodes["interrupted"]
    assert record.status == "interrupted"
    assert len(record.attempts) == 1
    assert record.attempts[0].error is not None
    assert "KeyboardInterrupt" in record.attempts[0].error


# -- errors all share the root ----------------------------------------------------------------


def test_failure_errors_are_sterna_errors() -> None:
    @sterna.task
    def fail() -> None:
        raise ValueError("x")

    with pytest.raises(SternaError):
        sterna.run(fail)
    assert issubclass(TaskTimeoutError, TaskFailedError)
