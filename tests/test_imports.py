"""``import sterna`` stays light, and the public API is what it says it is."""

from __future__ import annotations

import json
import subprocess
import sys

import sterna

HEAVY = ("ray", "duckdb", "pyarrow", "typeguard", "xxhash", "click")


def _fresh_import_report() -> dict[str, object]:
    code = (
        "import json, sys, time\n"
        "t = time.perf_counter()\n"
        "import sterna\n"
        "elapsed = time.perf_counter() - t\n"
        f"print(json.dumps({{'elapsed': elapsed, 'loaded': [m for m in {HEAVY!r} "
        "if m in sys.modules]}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, cwd="/")
    return json.loads(out.stdout)


def test_import_sterna_loads_no_heavy_dependency() -> None:
    report = _fresh_import_report()
    assert report["loaded"] == []


def test_all_is_sorted_and_complete() -> None:
    assert sterna.__all__ == sorted(sterna.__all__)
    for name in sterna.__all__:
        assert hasattr(sterna, name), name
    public = {n for n in vars(sterna) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(sterna, n)).__name__ == "module"}
    assert public - modules - {"annotations"} <= set(sterna.__all__)


def test_every_error_derives_from_sterna_error() -> None:
    errors = [getattr(sterna, n) for n in sterna.__all__ if n.endswith("Error")]
    assert len(errors) >= 10
    for error in errors:
        assert issubclass(error, sterna.SternaError), error
