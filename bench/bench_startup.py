"""Start-up cost: ``import sterna`` and a whole process running a one-task workflow."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

ONE_TASK = """
import sterna

@sterna.task
def hello(name: str) -> str:
    return "hello " + name

@sterna.workflow
def wf(name: str = "world") -> str:
    return hello(name=name)

assert wf() == "hello world"
"""


def _python(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/")


@pytest.mark.benchmark(group="startup", min_rounds=5)
def test_bare_python_process(benchmark: Any) -> None:
    benchmark.pedantic(_python, args=("pass",), rounds=10, warmup_rounds=1)


@pytest.mark.benchmark(group="startup", min_rounds=5)
def test_import_sterna_process(benchmark: Any) -> None:
    benchmark.pedantic(_python, args=("import sterna",), rounds=10, warmup_rounds=1)


@pytest.mark.benchmark(group="startup", min_rounds=5)
def test_one_task_workflow_process(benchmark: Any) -> None:
    benchmark.pedantic(_python, args=(ONE_TASK,), rounds=10, warmup_rounds=1)
