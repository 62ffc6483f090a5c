"""Every CLI test forgets the pipeline modules it loaded, so tests stay independent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import EXAMPLES, forgetting_loaded_pipelines


@pytest.fixture(autouse=True)
def _forget_loaded_pipelines(tmp_path: Path) -> Iterator[None]:
    with forgetting_loaded_pipelines(tmp_path, EXAMPLES):
        yield
