"""The installed ``sterna`` command and the quickstart script, each run as a real process."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "examples" / "quickstart.py"


def sterna_command() -> list[str]:
    """The console script on PATH, else the one beside this interpreter, else ``-m sterna.cli``."""
    found = shutil.which("sterna")
    if found:
        return [found]
    beside = Path(sys.executable).parent / ("sterna.exe" if os.name == "nt" else "sterna")
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    return [sys.executable, "-m", "sterna.cli"]


def test_sterna_run_quickstart_daily_report() -> None:
    done = subprocess.run(
        [*sterna_command(), "run", "examples/quickstart.py", "daily_report", "--days", "10"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Report(best_region='east', best_total=3150.0, rows_dropped=3)\n"
    assert "Traceback" not in done.stderr
    assert re.search(r"succeeded .*\(6 nodes\)", done.stderr), done.stderr


def test_python_runs_quickstart_as_a_script() -> None:
    done = subprocess.run([sys.executable, str(QUICKSTART)], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Report(best_region='west', best_total=7580.0, rows_dropped=9)"
    nodes = [line.split()[:2] for line in lines[1:]]
    assert sorted(nodes) == [
        ["clean", "succeeded"], ["count_rows", "succeeded"], ["count_rows-2", "succeeded"],
        ["load_sales", "succeeded"], ["report", "succeeded"], ["totals_by_region", "succeeded"],
    ]
    assert nodes[0][0] == "load_sales"
    assert nodes[-1][0] == "report"
