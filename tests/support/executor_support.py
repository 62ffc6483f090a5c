"""Helpers for tests that run on every executor.

A task running in a worker process or a Ray actor cannot append to a list in
the test's memory. ``Calls`` is a list kept in a file: a task appends to it
from wherever it runs, and the test reads it back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class Calls:
    """An append-only list in a file, shared by the test and its tasks in any process."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        Path(self.path).write_text("")

    def append(self, value: Any) -> None:
        line = json.dumps(value) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)  # one write: whole lines only
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def items(self) -> list[Any]:
        text = Path(self.path).read_text()
        return [json.loads(line) for line in text.splitlines() if line]

    def __len__(self) -> int:
        return len(self.items())

    def __getitem__(self, index: int) -> Any:
        return self.items()[index]

    def __contains__(self, value: object) -> bool:
        return value in self.items()

    def index(self, value: Any) -> int:
        """Position of the first ``value`` recorded (``ValueError`` if none)."""
        return self.items().index(value)

    def count(self, value: Any) -> int:
        """How many times ``value`` was recorded."""
        return self.items().count(value)

    def __iter__(self) -> Any:
        return iter(self.items())

    def __eq__(self, other: object) -> bool:
        return self.items() == other

    def __repr__(self) -> str:
        return f"Calls({self.items()!r})"
