"""Resource-aware admission: a task starts only when its requests fit what is free.

Each task's ``requests`` (cpu, mem, gpu) are counted against the machine's
capacity: cores, memory, and the GPUs found through ``CUDA_VISIBLE_DEVICES``
or ``nvidia-smi``, each overridable by configuration (``STERNA_CPUS``,
``STERNA_MEMORY``, ``STERNA_GPUS``). A task that sets no cpu request counts
one core, so a ``Resources(cpu=2)`` task never shares two cores with another.
A task that can never fit is refused before the run starts.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ResourceError
from .executors.base import Capacity
from .resources import parse_quantity

if TYPE_CHECKING:
    from .task import Task


@dataclass(frozen=True, slots=True)
class Request:
    """What one call of a task holds while it runs (``gpu`` may be a fraction, as on Ray)."""

    cpu: float
    mem: int
    gpu: float

    @property
    def whole_gpus(self) -> int:
        """GPUs taken on this machine: a fraction of a GPU still takes a whole one here."""
        return math.ceil(self.gpu)


@dataclass(frozen=True, slots=True)
class Grant:
    """Resources given to one running call (returned when it ends)."""

    request: Request
    gpus: tuple[int, ...]


def request_of(task: Task[..., Any]) -> Request:
    """A task's requests in numbers; an unset cpu request counts one core.

    Memoised on the task: admission asks for every call it dispatches, and
    parsing the quantities each time would put that on the engine's hot path.
    """
    known = task.__dict__.get("_request")
    if known is None:
        requests = task.config.requests
        amounts = requests.amounts() if requests is not None else {}
        known = Request(float(amounts.get("cpu", 1.0)), int(amounts.get("mem", 0)),
                        float(amounts.get("gpu", 0.0)))
        task.__dict__["_request"] = known
    return known  # type: ignore[no-any-return]


class Admission:
    """Counts what running calls hold against a capacity."""

    def __init__(self, capacity: Capacity) -> None:
        self.capacity = capacity
        self.cpu = capacity.cpu
        self.mem = capacity.mem
        self.gpus = list(capacity.gpus)

    def check(self, task: Task[..., Any]) -> None:
        """Raise ``ResourceError`` if the task could never run on this capacity."""
        need = request_of(task)
        have = self.capacity
        for what, wanted, total, shown in (
                ("cpu", need.cpu, have.cpu, f"{have.cpu:g} cores"),
                ("mem", need.mem, have.mem, f"{have.mem / 2**30:.1f} GiB"),
                ("gpu", need.whole_gpus, len(have.gpus), f"{len(have.gpus)} GPUs")):
            if wanted > total:
                raise ResourceError(
                    f"{task.label} requests {what}={_shown(what, wanted)} but this machine has "
                    f"{shown}; lower the request, or set the capacity (STERNA_CPUS, "
                    "STERNA_MEMORY, STERNA_GPUS) if it is detected wrongly")

    def take(self, task: Task[..., Any]) -> Grant | None:
        """Reserve the task's requests if they fit now; None if it must wait."""
        need = request_of(task)
        gpus = need.whole_gpus
        if need.cpu > self.cpu + 1e-9 or need.mem > self.mem or gpus > len(self.gpus):
            return None
        self.cpu -= need.cpu
        self.mem -= need.mem
        given = tuple(self.gpus[:gpus])
        del self.gpus[:gpus]
        return Grant(need, given)

    def give_back(self, grant: Grant) -> None:
        self.cpu += grant.request.cpu
        self.mem += grant.request.mem
        self.gpus.extend(grant.gpus)
        self.gpus.sort()


def _shown(what: str, amount: float) -> str:
    if what == "mem":
        return f"{amount / 2**30:.1f}GiB"
    return f"{amount:g}"


def machine_capacity(*, cpus: str = "", memory: str = "", gpus: str = "",
                     workers: int = 0) -> Capacity:
    """This machine's capacity, with configured values taking precedence.

    ``gpus`` is a count ("2") or a list of ids ("0,3"). With more workers
    than cores (for tasks that wait on I/O) the cpu capacity grows to match.
    """
    cpu = float(parse_quantity(cpus, field="cpus")) if cpus else float(cores())
    mem = int(parse_quantity(memory, field="memory")) if memory else _memory()
    return Capacity(max(cpu, float(workers)), mem, _gpu_ids(gpus))


def cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _memory() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def _gpu_ids(configured: str) -> tuple[int, ...]:
    """GPU ids: configured, else ``CUDA_VISIBLE_DEVICES``, else ``nvidia-smi -L``."""
    text = configured.strip() or os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if text:
        if "," not in text and text.isdigit() and configured.strip():
            return tuple(range(int(text)))  # a count: "2" means GPUs 0 and 1
        return tuple(int(part) for part in text.split(",") if part.strip().isdigit())
    if "CUDA_VISIBLE_DEVICES" in os.environ or shutil.which("nvidia-smi") is None:
        return ()
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                                 timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(range(sum(1 for line in listing.splitlines() if line.startswith("GPU "))))
