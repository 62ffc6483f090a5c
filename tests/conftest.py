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
