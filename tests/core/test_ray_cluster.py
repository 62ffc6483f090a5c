"""The Ray executor on Ray clusters of its own, each in a subprocess.

A simulated two-node cluster (``ray.cluster_utils.Cluster``: one node with an H100 and one GPU,
one CPU-only node) checks where tasks land; a head started with ``ray start --head`` runs a
workflow submitted with ``ray job submit`` and is joined with ``ray_address=``; and a process
that restarts Ray must use the new instance. Every Ray here lives under its own
``RAY_TMPDIR`` (so no other Ray on the machine sees or joins it) with its own auth token, and
is stopped by its process id, never with ``ray stop`` (which stops every Ray on the machine,
the test session's own included).
"""

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent  # the virtualenv's bin: python and the ray command
MARK = "STERNA-RESULT "
SCRIPT_TIMEOUT_S = 120  # a bound, never reached when things work
HANG_S = 10  # how long the cluster script waits for a run that should take a second or two
HAS_DASHBOARD = importlib.util.find_spec("aiohttp") is not None  # ray[default] is installed


# -- helpers ------------------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on the loopback interface."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def ray_env(ray_tmp: str, home: Path) -> dict[str, str]:
    """The environment of a Ray of our own: its own temp dir, token and store home."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "STERNA_EXECUTOR")}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", RAY_TMPDIR=ray_tmp,
               RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32),
               STERNA_HOME=str(home), PYTHONUNBUFFERED="1")
    return env


def kill_group(proc: subprocess.Popen[str]) -> None:
    """Kill what is left of the process group this test started (its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_bounded(args: list[str], env: dict[str, str], *, timeout: float,
                cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command in its own session; on timeout kill all of it and fail the test."""
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(args)} ran past {timeout:g} s\nstdout:\n{out[-3000:]}\n"
                    f"stderr:\n{err[-3000:]}")
    finally:
        kill_group(proc)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def result_of(done: subprocess.CompletedProcess[str]) -> Any:
    """The JSON a script printed after ``MARK``."""
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    pytest.fail(f"no result line (exit {done.returncode})\nstdout:\n{done.stdout[-3000:]}\n"
                f"stderr:\n{done.stderr[-5000:]}")


def short_tmp() -> str:
    """A short temp dir: Ray puts unix sockets under it (paths are limited to 107 bytes)."""
    return tempfile.mkdtemp(prefix="st-ray-", dir="/tmp" if os.path.isdir("/tmp") else None)


# -- a simulated two-node cluster, then a new Ray in the same process -----------------------------

CLUSTER_SCRIPT = """
import json, os, sys, threading, traceback

import ray
from ray.cluster_utils import Cluster

import sterna
from sterna import Resources

MARK, HANG_S, AGENT_PORTS = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])


def here() -> str:
    return ray.get_runtime_context().get_node_id()


@sterna.task(requests=Resources(cpu=2))
def on_cpus() -> str:
    return here()


@sterna.task(accelerator="nvidia-h100", requests=Resources(gpu=1))
def on_h100(after: str) -> tuple[str, str]:
    return here(), os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")


@sterna.workflow
def placed() -> tuple[str, str, str]:
    cpu_node = on_cpus()
    gpu_node, devices = on_h100(after=cpu_node)
    return cpu_node, gpu_node, devices


@sterna.task(accelerator="nvidia-tesla-a100")
def on_a100() -> str:
    return here()


@sterna.task(accelerator="nvidia-h100", environment={"STEP": "second"})
def on_h100_again() -> str:
    return here()


@sterna.task
def pid() -> int:
    return os.getpid()


def bounded(fn):
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = f"{type(exc).__name__}: {exc}"

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(HANG_S)
    return box or {"hung": True}


out = {}
try:
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "include_dashboard": False,
        "dashboard_agent_listen_port": AGENT_PORTS[0]})
    cluster.add_node(num_cpus=1, num_gpus=1, resources={"accelerator_type:H100": 1},
                     dashboard_agent_listen_port=AGENT_PORTS[1])
    ray.init(address=cluster.address)
    cluster.wait_for_nodes()
    nodes = [n for n in ray.nodes() if n["Alive"]]
    out["h100"] = [n["NodeID"] for n in nodes if "accelerator_type:H100" in n["Resources"]]
    out["cpu_only"] = [n["NodeID"] for n in nodes if n["Resources"].get("GPU", 0) == 0]
    out["placed"] = bounded(lambda: list(sterna.run(placed, executor="ray").outputs))
    out["before_restart"] = bounded(lambda: sterna.run(pid, executor="ray").outputs)
    try:
        sterna.run(on_a100, executor="ray")
        out["a100"] = {"value": "ran"}
    except Exception as exc:
        out["a100"] = {"error": f"{type(exc).__name__}: {exc}", "name": on_a100.name}
    out["again"] = bounded(lambda: sterna.run(on_h100_again, executor="ray").outputs)

    # Ray shut down and started again in this process: the same task must run on the new
    # instance (whose first job has the same id as the cluster's).
    first_job = ray.get_runtime_context().get_job_id()
    ray.shutdown()
    cluster.shutdown()
    ray.init(address="local", num_cpus=1, include_dashboard=False)
    out["restart"] = bounded(lambda: sterna.run(pid, executor="ray").outputs)
    out["restart"]["jobs"] = [first_job, ray.get_runtime_context().get_job_id()]
except BaseException:
    out["crash"] = traceback.format_exc()
finally:
    print(MARK + json.dumps(out), flush=True)
os._exit(0)  # what is left of Ray here goes with this process (the test kills its group)
"""


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Run the cluster script once; the tests below each check part of what it printed."""
    folder = tmp_path_factory.mktemp("cluster")
    script = folder / "cluster_script.py"
    script.write_text(textwrap.dedent(CLUSTER_SCRIPT))
    ray_tmp = short_tmp()
    try:
        done = run_bounded([sys.executable, str(script), MARK, str(HANG_S),
                            json.dumps(free_ports(2))],
                           ray_env(ray_tmp, folder / ".sterna"), timeout=SCRIPT_TIMEOUT_S)
        yield result_of(done)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


def part(cluster_run: dict[str, Any], name: str) -> Any:
    """One part of the cluster script's result (it stops at the first unexpected error)."""
    assert name in cluster_run, f"the cluster script stopped before {name!r}: {cluster_run}"
    return cluster_run[name]


def test_accelerator_task_runs_on_the_h100_node(cluster_run: dict[str, Any]) -> None:
    (h100,) = part(cluster_run, "h100")
    (cpu_only,) = part(cluster_run, "cpu_only")
    placed = part(cluster_run, "placed")
    assert "value" in placed, placed
    cpu_node, gpu_node, devices = placed["value"]
    assert gpu_node == h100
    assert devices.isdigit()  # one GPU id
    assert cpu_node == cpu_only  # the only node with two CPUs


def test_accelerator_no_node_offers_fails_naming_the_nodes(cluster_run: dict[str, Any]) -> None:
    a100 = part(cluster_run, "a100")
    assert "error" in a100, a100
    error = a100["error"]
    assert error.startswith("ResourceError: ")
    assert a100["name"] in error
    assert "accelerator_type:A100" in error
    assert "accelerator_type:H100" in error  # what the cluster does offer


def test_idle_actor_on_the_only_h100_node_makes_room(cluster_run: dict[str, Any]) -> None:
    """A new environment that needs the H100 node must not wait forever behind an idle actor.

    After the first workflow, an idle actor of another environment holds the H100 node's only
    CPU, while the cluster as a whole still has a free CPU.
    """
    (h100,) = part(cluster_run, "h100")
    again = part(cluster_run, "again")
    assert "hung" not in again, (
        f"a task needing the H100 node did not start within {HANG_S:g} s: the node's only CPU "
        "is held by an idle actor of another environment")
    assert again == {"value": h100}


def test_a_new_ray_session_in_the_same_process_is_used(cluster_run: dict[str, Any]) -> None:
    """After ray.shutdown() and ray.init(), a task that ran before runs on the new instance."""
    before = part(cluster_run, "before_restart")
    restart = part(cluster_run, "restart")
    assert "value" in before, before
    assert "value" in restart, f"the run after ray.shutdown() and ray.init() failed: {restart}"
    assert restart["value"] != before["value"]  # an actor of the new instance


# -- a head started with `ray start`, and `ray job submit` -----------------------------------------

PIPELINE = """
import json, sys

import ray

import sterna
from sterna import map_task


@sterna.task
def double(x: int) -> int:
    return 2 * x


@sterna.workflow
def pipeline(x: int) -> tuple[int, list[int]]:
    return double(x=x), map_task(double)(x=[1, 2, 3])


if __name__ == "__main__":
    run = sterna.run(pipeline, executor="ray", x=21)
    print("STERNA-RESULT " + json.dumps({
        "outputs": list(run.outputs), "executor": run.executor,
        "gcs": ray.get_runtime_context().gcs_address}), flush=True)
"""

PROBE = """
import json, sys

import ray

import sterna


@sterna.task
def one() -> int:
    return 1


run = sterna.run(one, executor="ray", ray_address=sys.argv[2] or None)
print(sys.argv[1] + json.dumps({"value": run.outputs,
                                "gcs": ray.get_runtime_context().gcs_address}), flush=True)
"""


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A head of our own (``ray start --head --block``), stopped by its process id."""
    ray_tmp = short_tmp()
    env = ray_env(ray_tmp, tmp_path_factory.mktemp("head") / ".sterna")
    names = ("port", "dashboard-port", "dashboard-agent-listen-port",
             "dashboard-agent-grpc-port", "runtime-env-agent-port", "metrics-export-port",
             "ray-client-server-port", "node-manager-port", "object-manager-port")
    ports = dict(zip(names, free_ports(len(names))))
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", "--num-cpus=2",
         "--disable-usage-stats", "--dashboard-host=127.0.0.1",
         f"--include-dashboard={str(HAS_DASHBOARD).lower()}",
         *(f"--{name}={port}" for name, port in ports.items())],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        dashboard = f"http://127.0.0.1:{ports['dashboard-port']}"
        address_file = Path(ray_tmp, "ray", "ray_current_cluster")
        deadline = time.monotonic() + 60
        while True:
            assert head.poll() is None, f"ray start --head exited with {head.returncode}"
            assert time.monotonic() < deadline, "the head never came up"
            try:
                if HAS_DASHBOARD:
                    urllib.request.urlopen(f"{dashboard}/api/version", timeout=2)
            except urllib.error.HTTPError:  # it answers (401 without the token)
                pass
            except OSError:
                time.sleep(0.2)
                continue
            if address_file.exists():
                break
            time.sleep(0.2)
        yield {"env": env, "dashboard": dashboard, "gcs": address_file.read_text().strip()}
    finally:
        head.send_signal(signal.SIGINT)  # --block stops its Ray processes on Ctrl-C
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(timeout=20)
        kill_group(head)
        head.wait()
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_job_submit_runs_a_workflow_on_the_cluster(
        tmp_path: Path, ray_head: dict[str, Any]) -> None:
    if not HAS_DASHBOARD:
        pytest.skip("ray job submit needs the dashboard: pip install 'ray[default]'")
    folder = tmp_path / "pipeline"
    folder.mkdir()
    (folder / "pipeline.py").write_text(textwrap.dedent(PIPELINE))

    done = run_bounded(
        [str(BIN / "ray"), "job", "submit", "--address", ray_head["dashboard"],
         "--working-dir", str(folder), "--", "python", "pipeline.py"],
        ray_head["env"], timeout=SCRIPT_TIMEOUT_S)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = result_of(done)
    assert result["outputs"] == [42, [2, 4, 6]]
    assert result["executor"] == "ray"
    assert result["gcs"] == ray_head["gcs"]  # it joined the head (through RAY_ADDRESS)


def test_ray_address_joins_the_head_and_no_address_starts_a_local_ray(
        tmp_path: Path, ray_head: dict[str, Any]) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent(PROBE))

    # The head is the latest cluster started under this RAY_TMPDIR, which a plain
    # ray.init() would join; without an address sterna starts a Ray of its own.
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(run_bounded, [sys.executable, str(probe), MARK, address],
                            ray_head["env"], timeout=SCRIPT_TIMEOUT_S)
                for address in (ray_head["gcs"], "")]
        joined, local = (result_of(run.result()) for run in runs)

    assert joined == {"value": 1, "gcs": ray_head["gcs"]}
    assert local["value"] == 1
    assert local["gcs"] != ray_head["gcs"]
