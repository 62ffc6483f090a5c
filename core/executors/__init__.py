"""Executors: where calls run (in the driver, in worker processes, on Ray).

``executor_for`` builds (or reuses) the executor a run asks for. Worker pools
and Ray actors outlive a run, so a second run pays no start-up; they are
stopped when the process exits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..admission import Admission
    from .base import Executor


def executor_for(name: str, *, workers: int | None = None, ray_address: str | None = None,
                 ) -> tuple[Executor, Admission | None]:
    """The executor, and the admission its calls go through (None: the executor's own)."""
    from .. import config

    if name == "serial":
        from .serial import SerialExecutor

        return SerialExecutor(), None
    if name == "process":
        from ..admission import Admission, machine_capacity
        from .process import process_pool

        size = workers or config.workers_setting() or 0
        pool = process_pool(size)
        capacity = machine_capacity(cpus=config.setting("cpus"),
                                    memory=config.setting("memory"),
                                    gpus=config.setting("gpus"), workers=pool.size)
        return pool, Admission(capacity)
    from .ray import ray_executor

    return ray_executor(ray_address or config.setting("ray_address") or None), None
