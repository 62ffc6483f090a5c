"""Whether a table's buffers live in a memory mapping of a given file (not in a copy)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def mapped_regions(path: str | os.PathLike[str]) -> list[tuple[int, int]]:
    """Address ranges of this process's mappings of ``path`` (from /proc/self/maps)."""
    target = os.path.realpath(path)
    regions = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5] == target:
            start, end = (int(part, 16) for part in fields[0].split("-"))
            regions.append((start, end))
    return regions


def assert_table_maps_file(table: Any, path: str | os.PathLike[str]) -> None:
    """Every column's data buffer points into a mapping of ``path``."""
    regions = mapped_regions(path)
    assert regions, f"{path} is not memory-mapped"
    for column in table.columns:
        for chunk in column.chunks:
            data = chunk.buffers()[1]
            assert any(start <= data.address < end for start, end in regions)
