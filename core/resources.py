"""Task resources: Kubernetes-style quantities, as in flytekit's ``Resources``.

``Resources(cpu="500m", mem="2Gi", gpu=1)`` keeps what the user wrote (for
display and registration) and exposes the parsed numbers the executors admit
tasks against: ``cpu`` in cores, ``mem`` and ``ephemeral_storage`` in bytes,
``gpu`` as a count. A value may also be a ``(request, limit)`` pair, as in
flytekit's ``resources=Resources(cpu=("1", "2"))``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Union

from .errors import ResourceError

Quantity = Union[str, int, float]
QuantitySpec = Union[Quantity, tuple[Quantity, Quantity], None]

_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1), "m": Decimal("0.001"),
    "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12, "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}
_QUANTITY = re.compile(
    r"^\+?(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)|[eE](?P<exp>[+-]?[0-9]+))?$"
)


def parse_quantity(value: Quantity, *, field: str) -> Decimal:
    """Parse a non-negative Kubernetes quantity ("500m", "2Gi", "1.5", 3) exactly."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ResourceError(
            f"Resources({field}=...): expected a quantity such as '500m', '2Gi' or 1.5, "
            f"got {type(value).__name__} {value!r}")
    text = str(value).strip()
    match = _QUANTITY.match(text)
    if match is None:
        raise ResourceError(
            f"Resources({field}={value!r}): not a valid quantity; expected a non-negative number "
            "with an optional suffix m, k, M, G, T, Ki, Mi, Gi, Ti, ... "
            "(e.g. '500m', '2Gi', '1.5')")
    try:
        number = Decimal(match["num"])
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise ResourceError(f"Resources({field}={value!r}): not a number") from exc
    if match["exp"] is not None:
        return number * (Decimal(10) ** int(match["exp"]))
    return number * _SUFFIXES[match["suffix"] or ""]


def _cores(value: Quantity, field: str) -> float:
    return float(parse_quantity(value, field=field))


def _bytes(value: Quantity, field: str) -> int:
    # Kubernetes rounds fractional bytes up; so do we.
    return int(parse_quantity(value, field=field).to_integral_value(rounding=ROUND_CEILING))


def _gpus(value: Quantity, field: str) -> float:
    amount = parse_quantity(value, field=field)
    if amount >= 1 and amount != amount.to_integral_value():
        raise ResourceError(
            f"Resources({field}={value!r}): a GPU count must be a whole number, "
            "or a fraction below 1 to share one GPU")
    return float(amount)


_PARSERS = {"cpu": _cores, "mem": _bytes, "gpu": _gpus, "ephemeral_storage": _bytes}


@dataclass(frozen=True)
class Resources:
    """Requested or limited compute for a task (flytekit-compatible).

    Each field is a quantity, ``None`` (not set), or a ``(request, limit)``
    pair. Parsing happens here, at decoration time, so a typo such as
    ``mem="2GB"`` fails where it is written, not when the task is scheduled.
    """

    cpu: QuantitySpec = None
    mem: QuantitySpec = None
    gpu: QuantitySpec = None
    ephemeral_storage: QuantitySpec = None

    def __post_init__(self) -> None:
        for name, spec in self.items():
            values = spec if isinstance(spec, tuple) else (spec,)
            if isinstance(spec, tuple) and len(spec) != 2:
                raise ResourceError(
                    f"Resources({name}={spec!r}): a pair must be (request, limit)")
            for value in values:
                _PARSERS[name](value, name)

    def items(self) -> list[tuple[str, QuantitySpec]]:
        """The fields that are set, as (name, spec) pairs."""
        return [(f.name, getattr(self, f.name)) for f in fields(self)
                if getattr(self, f.name) is not None]

    def amounts(self) -> dict[str, float]:
        """Parsed amounts of the set fields: cores, bytes, GPU count.

        A ``(request, limit)`` pair contributes its request.
        """
        out: dict[str, float] = {}
        for name, spec in self.items():
            value = spec[0] if isinstance(spec, tuple) else spec
            out[name] = _PARSERS[name](value, name)
        return out

    def split(self) -> tuple[Resources | None, Resources | None]:
        """Split pairs into (requests, limits); plain values count as requests."""
        requests: dict[str, Quantity] = {}
        limits: dict[str, Quantity] = {}
        for name, spec in self.items():
            if isinstance(spec, tuple):
                requests[name], limits[name] = spec
            else:
                requests[name] = spec
        return (Resources(**requests) if requests else None,
                Resources(**limits) if limits else None)


def check_within_limits(requests: Resources | None, limits: Resources | None) -> None:
    """Reject requests above their limits (Kubernetes refuses such pods too)."""
    if requests is None or limits is None:
        return
    limit_amounts = limits.amounts()
    for name, amount in requests.amounts().items():
        if name in limit_amounts and amount > limit_amounts[name]:
            raise ResourceError(
                f"requests {name}={getattr(requests, name)!r} is above "
                f"limits {name}={getattr(limits, name)!r}")


@dataclass(frozen=True)
class GPUAccelerator:
    """A GPU model a task must run on, e.g. ``GPUAccelerator("nvidia-tesla-t4")``.

    Mirrors flytekit's accelerator objects: the executors map ``device`` to a
    scheduler resource (Ray's accelerator type).
    """

    device: str

    def __post_init__(self) -> None:
        if not isinstance(self.device, str) or not self.device.strip():
            raise ResourceError(f"GPUAccelerator(device=...): expected a name, got {self.device!r}")


def as_accelerator(value: object) -> GPUAccelerator | None:
    """Accept a ``GPUAccelerator``, a device string, or an object with ``.device``."""
    if value is None or isinstance(value, GPUAccelerator):
        return value
    if isinstance(value, str):
        return GPUAccelerator(value)  # an empty name fails in GPUAccelerator itself
    device = getattr(value, "device", None) or getattr(value, "_device", None)
    if isinstance(device, str):
        return GPUAccelerator(device)
    raise ResourceError(
        f"accelerator=...: expected a device name such as 'nvidia-tesla-t4' or a "
        f"GPUAccelerator, got {type(value).__name__} {value!r}")
