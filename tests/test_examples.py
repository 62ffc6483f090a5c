"""The parallel example runs as the README says: in worker processes, cached per item."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run_example(home: Path) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "parallel.py")],
                          capture_output=True, text=True, timeout=120, cwd=home.parent,
                          env={**os.environ, "STERNA_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_parallel_example_runs_in_processes_and_hits_every_item_the_second_time(
        tmp_path: Path) -> None:
    home = tmp_path / ".sterna"
    first = _run_example(home)
    assert "over 12 walks (0 from the cache)" in first and "on process" in first
    second = _run_example(home)
    assert "(12 from the cache)" in second
    assert first.split(" over ")[0] == second.split(" over ")[0]  # the same mean
