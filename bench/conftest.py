"""Benchmarks write their store (journal, cache) under a temporary home, never ./.sterna."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sterna.core import config


@pytest.fixture(autouse=True, scope="session")
def _bench_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("sterna-home")
    config.configure(home=home)
    yield home
    config.reset()
