"""Shared fixtures: every test gets its own store home and a clean configuration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sterna.core import config


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("STERNA_PROJECT", "STERNA_DOMAIN", "STERNA_EXECUTOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STERNA_HOME", str(tmp_path / ".sterna"))
    config.reset()
    yield
    config.reset()


EXECUTORS = ("serial", "process", "ray")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests that use the ``executor`` fixture run once per executor (the contract suite).

    ``@pytest.mark.executors("serial")`` narrows a test to the executors it
    makes sense for (one that watches the driver's own memory, say).
    """
    if "executor" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("executors")
        names = marker.args if marker else EXECUTORS
        metafunc.parametrize("executor", names, indirect=True)


@pytest.fixture
def executor(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The executor every run of the test uses (through ``STERNA_EXECUTOR``)."""
    name: str = request.param
    if name == "ray":
        request.getfixturevalue("ray_instance")
    monkeypatch.setenv("STERNA_EXECUTOR", name)
    return name


@pytest.fixture(scope="session")
def ray_instance() -> Iterator[None]:
    """One local Ray for the whole session: two CPUs and one (fake) GPU."""
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False,
                 log_to_driver=True, configure_logging=False)
    yield
    ray.shutdown()
