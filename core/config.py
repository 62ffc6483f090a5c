"""Process-wide configuration: project, domain, store home, executor and capacity.

Values come, in order of precedence, from ``sterna.configure(...)``, then the
environment (``STERNA_PROJECT``, ``STERNA_DOMAIN``, ``STERNA_HOME``,
``STERNA_EXECUTOR``, ``STERNA_WORKERS``, ``STERNA_CPUS``, ``STERNA_MEMORY``,
``STERNA_GPUS``, ``STERNA_RAY_ADDRESS``, ``STERNA_BLOBS``), then defaults. The
environment is read when a value is asked for, not at import, so a test or a
CLI flag that sets it late still wins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

EXECUTORS = ("serial", "process", "ray")

_DEFAULTS = {
    "project": "default",
    "domain": "development",
    "home": ".sterna",
    "executor": "serial",
    "workers": "",  # worker processes of the process executor (default: one per core)
    "cpus": "",  # capacity the process executor admits tasks against (default: detected)
    "memory": "",
    "gpus": "",  # a count ("2") or GPU ids ("0,3"); default: CUDA_VISIBLE_DEVICES, nvidia-smi
    "ray_address": "",  # a Ray cluster to join (default: RAY_ADDRESS, else a local instance)
    "blobs": "",  # where values are stored: a folder or a URI such as s3://bucket/prefix
}
_ENV = {key: f"STERNA_{key.upper()}" for key in _DEFAULTS}
_overrides: dict[str, str] = {}


@dataclass(frozen=True)
class Config:
    """A snapshot of the effective configuration."""

    project: str
    domain: str
    home: Path
    executor: str


def setting(key: str) -> str:
    """Return one effective setting (override, then environment, then default)."""
    if key in _overrides:
        return _overrides[key]
    return os.environ.get(_ENV[key]) or _DEFAULTS[key]


def current() -> Config:
    """Return the effective configuration, validating it."""
    executor = setting("executor")
    _check_executor(executor, source=_ENV["executor"])
    return Config(
        project=setting("project"),
        domain=setting("domain"),
        home=Path(setting("home")),
        executor=executor,
    )


def configure(
    *, project: str | None = None, domain: str | None = None,
    home: str | os.PathLike[str] | None = None, executor: str | None = None,
    workers: int | None = None, cpus: float | str | None = None, memory: str | None = None,
    gpus: int | str | None = None, ray_address: str | None = None, blobs: str | None = None,
) -> Config:
    """Set configuration for this process; arguments left out are unchanged.

    Project and domain name the namespace tasks register in (as in Flyte);
    ``home`` is the store root; ``executor`` the default for runs. ``workers``
    sizes the process executor's pool; ``cpus``, ``memory`` (``"16Gi"``) and
    ``gpus`` (a count, or ids ``"0,3"``) override the capacity it detects;
    ``ray_address`` names a Ray cluster to join; ``blobs`` moves stored values
    to a folder or filesystem URI (``s3://bucket/prefix``) every worker can reach.
    """
    given = {"project": project, "domain": domain, "executor": executor,
             "home": os.fspath(home) if home is not None else None, "memory": memory,
             "ray_address": ray_address, "blobs": blobs}
    numbers = {"workers": workers, "cpus": cpus, "gpus": gpus}
    for key, number in numbers.items():
        if number is None:
            continue
        if isinstance(number, bool) or not isinstance(number, (int, float, str)):
            raise ConfigError(f"configure({key}=...): expected a number, got {number!r}")
        given[key] = str(number)
    for key, value in given.items():
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"configure({key}=...): expected a non-empty string, got {value!r}")
        if key == "executor":
            _check_executor(value, source="configure(executor=...)")
        _overrides[key] = value
    workers_setting()
    return current()


def workers_setting() -> int | None:
    """The configured pool size, or None for the default (one worker per core)."""
    text = setting("workers").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"workers: expected a positive whole number, got {text!r} "
                          f"(from configure(workers=...) or {_ENV['workers']})")
    return int(text)


def snapshot() -> dict[str, str]:
    """Every effective setting, to apply in a worker (a run started inside a task sees them)."""
    return {key: setting(key) for key in _DEFAULTS}


def apply(settings: dict[str, str]) -> None:
    """Make ``settings`` this process's configuration (a worker, before each call)."""
    _overrides.clear()
    _overrides.update(settings)


def reset() -> None:
    """Drop every ``configure()`` override (tests use this)."""
    _overrides.clear()


def _check_executor(name: str, *, source: str) -> None:
    if name not in EXECUTORS:
        raise ConfigError(f"{source}: unknown executor {name!r}; expected one of {EXECUTORS}")
