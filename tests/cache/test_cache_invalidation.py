"""What invalidates a cached result: the automatic code version, across edits and processes.

Pipelines are real module files written into ``tmp_path``, imported, edited on disk and
imported again under the same module name (task names stay the same), as users do between
two runs. Tasks count their calls by appending a line to a file, which also works when the
pipeline runs in another process.
"""

import importlib
import json
import os
import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sterna
from sterna.cache.explain import NodeExplanation, explain_target

# One pipeline, with placeholders for the parts the tests edit.
PIPELINE = '''
import sys

import sterna

COUNTER = {counter!r}
SCALE = {scale}
{extra}

def helper(x: int) -> int:
    """Double it.{helper_doc}"""
    # {comment}
    return x * {factor}


def _count(name: str) -> None:
    with open(COUNTER, "a") as handle:
        handle.write(name + "\\n")


@sterna.task(cache=True{version})
def compute(x: int) -> int:
    """The cached step.{task_doc}"""
    _count("compute")
    return helper(x) + SCALE


@sterna.task(cache=True)
def finish(y: int) -> int:
    _count("finish")
    return y + 1


@sterna.workflow
def wf(x: int) -> int:
    return finish(y=compute(x=x))


if __name__ == "__main__":
    result = sterna.run(wf, x=int(sys.argv[1]))
    print(json.dumps({{"out": result.outputs,
                      "status": {{k: n.cache_status for k, n in result.nodes.items()}}}}))
'''

DEFAULTS = {"scale": 0, "extra": "import json", "helper_doc": "", "comment": "multiply",
            "factor": 2, "version": "", "task_doc": ""}


class Pipeline:
    """A pipeline module file under one fixed module name, rewritten and re-imported."""

    _clock = 1_700_000_000  # every write gets its own mtime, so no stale source is read

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        self.path = root / f"{name}.py"
        self.counter = root / f"{name}.calls"

    def write(self, **changes: Any) -> Path:
        values = {**DEFAULTS, **changes, "counter": str(self.counter)}
        self.path.write_text(textwrap.dedent(PIPELINE).format(**values))
        Pipeline._clock += 10
        os.utime(self.path, ns=(Pipeline._clock * 10**9, Pipeline._clock * 10**9))
        importlib.invalidate_caches()
        return self.path

    def load(self, **changes: Any) -> types.ModuleType:
        """Write the file with ``changes`` and import it afresh under the same module name."""
        self.write(**changes)
        sys.modules.pop(self.name, None)
        return importlib.import_module(self.name)

    def calls(self) -> list[str]:
        return self.counter.read_text().split() if self.counter.exists() else []


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             request: pytest.FixtureRequest) -> Iterator[Pipeline]:
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    name = "pipe_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:60]
    yield Pipeline(tmp_path, name)
    sys.modules.pop(name, None)


def _statuses(run: sterna.Run) -> dict[str, str]:
    return {node_id: record.cache_status for node_id, record in run.nodes.items()}


def _verdicts(explained: list[NodeExplanation]) -> dict[str, str]:
    return {e.node_id: e.status for e in explained}


def _by_node(explained: list[NodeExplanation]) -> dict[str, NodeExplanation]:
    return {e.node_id: e for e in explained}


# -- the automatic code version ---------------------------------------------------------------


def test_task_names_come_from_the_module(pipeline: Pipeline) -> None:
    module = pipeline.load()
    assert module.compute.name == f"{pipeline.name}.compute"


def test_editing_a_helper_the_task_calls_misses(pipeline: Pipeline) -> None:
    first = sterna.run(pipeline.load().wf, x=5)
    assert first.outputs == 11
    assert _statuses(sterna.run(pipeline.load().wf, x=5)) == {"compute": "hit", "finish": "hit"}
    assert pipeline.calls() == ["compute", "finish"]

    edited = sterna.run(pipeline.load(factor=3).wf, x=5)
    assert _statuses(edited) == {"compute": "miss", "finish": "miss"}
    assert edited.outputs == 16
    assert pipeline.calls() == ["compute", "finish", "compute", "finish"]


def test_importlib_reload_after_editing_a_helper_misses(pipeline: Pipeline) -> None:
    module = pipeline.load()
    sterna.run(module.wf, x=5)
    pipeline.write(factor=4)
    module = importlib.reload(module)
    reloaded = sterna.run(module.wf, x=5)
    assert reloaded.nodes["compute"].cache_status == "miss"
    assert reloaded.outputs == 21


@pytest.mark.parametrize("edit", [
    {"comment": "multiply by the factor, a reworded comment"},
    {"helper_doc": " Now with a longer docstring."},
    {"task_doc": " A reworded task docstring."},
])
def test_editing_only_comments_or_docstrings_still_hits(pipeline: Pipeline,
                                                        edit: dict[str, str]) -> None:
    first = sterna.run(pipeline.load().wf, x=5)
    edited = sterna.run(pipeline.load(**edit).wf, x=5)
    assert _statuses(edited) == {"compute": "hit", "finish": "hit"}
    assert edited.outputs == first.outputs
    assert pipeline.calls() == ["compute", "finish"]


def test_editing_a_module_constant_the_task_reads_misses(pipeline: Pipeline) -> None:
    assert sterna.run(pipeline.load(scale=0).wf, x=5).outputs == 11
    edited = sterna.run(pipeline.load(scale=7).wf, x=5)
    assert edited.nodes["compute"].cache_status == "miss"
    assert edited.outputs == 18


def test_editing_a_constant_the_task_does_not_read_still_hits(pipeline: Pipeline) -> None:
    sterna.run(pipeline.load(extra="import json\nUNUSED = 1").wf, x=5)
    edited = sterna.run(pipeline.load(extra="import json\nUNUSED = 2").wf, x=5)
    assert _statuses(edited) == {"compute": "hit", "finish": "hit"}


def test_a_given_cache_version_ignores_code_edits_until_bumped(pipeline: Pipeline) -> None:
    assert sterna.run(pipeline.load(version=', cache_version="v1"').wf, x=5).outputs == 11
    same = sterna.run(pipeline.load(version=', cache_version="v1"', factor=3).wf, x=5)
    assert same.nodes["compute"].cache_status == "hit"
    assert same.outputs == 11  # the helper changed, the declared version did not
    bumped = sterna.run(pipeline.load(version=', cache_version="v2"', factor=3).wf, x=5)
    assert bumped.nodes["compute"].cache_status == "miss"
    assert bumped.outputs == 16


# -- across processes -------------------------------------------------------------------------


def _sterna_command() -> list[str]:
    beside = Path(sys.executable).parent / "sterna"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    return [sys.executable, "-m", "sterna.cli.main"]


def _run_script(pipeline: Pipeline, x: int) -> dict[str, Any]:
    done = subprocess.run([sys.executable, str(pipeline.path), str(x)], cwd=pipeline.root,
                          env=dict(os.environ), capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _run_cli(pipeline: Pipeline, x: int) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*_sterna_command(), "run", str(pipeline.path), "wf", "--x", str(x)],
                          cwd=pipeline.root, env=dict(os.environ), capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done


def test_the_same_file_in_two_fresh_processes_hits_the_second_time(pipeline: Pipeline) -> None:
    pipeline.write()
    assert os.environ["STERNA_HOME"]
    first = _run_script(pipeline, 5)
    assert first == {"out": 11, "status": {"compute": "miss", "finish": "miss"}}
    second = _run_script(pipeline, 5)
    assert second == {"out": 11, "status": {"compute": "hit", "finish": "hit"}}
    assert pipeline.calls() == ["compute", "finish"]

    # The command line shares the entries made by `python file.py`.
    cli = _run_cli(pipeline, 5)
    assert cli.stdout == "11\n"
    assert "2 nodes, 2 cached" in cli.stderr
    assert pipeline.calls() == ["compute", "finish"]

    # And an edit of the helper is seen by a fresh process too.
    pipeline.write(factor=3)
    edited = _run_script(pipeline, 5)
    assert edited == {"out": 16, "status": {"compute": "miss", "finish": "miss"}}


def test_entries_made_by_the_command_line_hit_in_a_script_and_in_process(
        pipeline: Pipeline) -> None:
    pipeline.write()
    cli = _run_cli(pipeline, 4)
    assert cli.stdout == "9\n"
    assert "cached" not in cli.stderr
    assert _run_script(pipeline, 4) == {"out": 9, "status": {"compute": "hit", "finish": "hit"}}
    in_process = sterna.run(pipeline.load().wf, x=4)
    assert _statuses(in_process) == {"compute": "hit", "finish": "hit"}
    assert pipeline.calls() == ["compute", "finish"]


# -- explain ----------------------------------------------------------------------------------


def test_explain_after_a_run_says_every_cached_node_hits(pipeline: Pipeline) -> None:
    module = pipeline.load()
    run = sterna.run(module.wf, x=5)
    explained = explain_target(module.wf, {"x": 5})
    assert _verdicts(explained) == {"compute": "hit", "finish": "hit"}
    assert [e.node_id for e in explained] == ["compute", "finish"]
    by_node = _by_node(explained)
    for node_id in ("compute", "finish"):
        assert by_node[node_id].key == run.nodes[node_id].cache.key
        assert by_node[node_id].reasons == []
        assert by_node[node_id].task == f"{pipeline.name}.{node_id}"


def test_explain_names_a_changed_input_and_marks_downstream_as_depending(
        pipeline: Pipeline) -> None:
    module = pipeline.load()
    sterna.run(module.wf, x=5)
    explained = _by_node(explain_target(module.wf, {"x": 6}))
    assert explained["compute"].status == "miss"
    assert any("input 'x'" in reason for reason in explained["compute"].reasons), (
        explained["compute"].reasons)
    assert explained["finish"].status == "depends"
    assert any("'compute'" in reason for reason in explained["finish"].reasons)
    # explain only predicts: it runs nothing and stores nothing
    assert pipeline.calls() == ["compute", "finish"]
    assert _statuses(sterna.run(module.wf, x=5)) == {"compute": "hit", "finish": "hit"}


def test_explain_names_the_helper_whose_code_changed(pipeline: Pipeline) -> None:
    sterna.run(pipeline.load().wf, x=5)
    module = pipeline.load(factor=3)
    explained = _by_node(explain_target(module.wf, {"x": 5}))
    assert explained["compute"].status == "miss"
    assert f"code of function {pipeline.name}.helper changed" in explained["compute"].reasons
    assert not any("compute changed" in r for r in explained["compute"].reasons)
    assert explained["finish"].status == "depends"


def test_explain_names_a_changed_module_constant(pipeline: Pipeline) -> None:
    sterna.run(pipeline.load(scale=1).wf, x=5)
    module = pipeline.load(scale=2)
    explained = _by_node(explain_target(module.wf, {"x": 5}))
    assert explained["compute"].status == "miss"
    assert any(f"{pipeline.name}.SCALE" in r for r in explained["compute"].reasons), (
        explained["compute"].reasons)


def test_explain_of_an_uncached_task_and_of_a_fresh_store(tmp_path: Path) -> None:
    @sterna.task
    def plain(x: int) -> int:
        return x

    @sterna.task(cache=True)
    def cached(y: int) -> int:
        return y

    @sterna.workflow
    def wf(x: int) -> int:
        return cached(y=plain(x=x))

    explained = _by_node(explain_target(wf, {"x": 1}))
    assert explained["plain"].status == "not cached"
    assert explained["cached"].status == "depends"

    explained_task = explain_target(cached, {"y": 1})
    assert [e.status for e in explained_task] == ["miss"]
    assert explained_task[0].reasons == ["no earlier entry for this task"]


def test_explain_hits_after_changing_an_ignored_input() -> None:
    @sterna.task(cache=True, cache_ignore_input_vars=("note",))
    def step(x: int, note: str) -> int:
        return x

    sterna.run(step, x=1, note="first")
    assert [e.status for e in explain_target(step, {"x": 1, "note": "other"})] == ["hit"]
    assert [e.status for e in explain_target(step, {"x": 2, "note": "first"})] == ["miss"]


def test_explain_names_a_bumped_cache_version_not_the_code(pipeline: Pipeline) -> None:
    sterna.run(pipeline.load(version=', cache_version="v1"').wf, x=5)
    module = pipeline.load(version=', cache_version="v2"', factor=3)
    explained = _by_node(explain_target(module.wf, {"x": 5}))
    assert explained["compute"].status == "miss"
    reasons = explained["compute"].reasons
    # The code is not part of a key whose version is given: only the version changed.
    assert reasons == ["cache version changed (v1 -> v2)"]
