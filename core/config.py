"""Process-wide configuration: project, domain, store home, default executor.

Values come, in order of precedence, from ``sterna.configure(...)``, then the
environment (``STERNA_PROJECT``, ``STERNA_DOMAIN``, ``STERNA_HOME``,
``STERNA_EXECUTOR``), then defaults. The environment is read when a value is
asked for, not at import, so a test or a CLI flag that sets it late still wins.
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
) -> Config:
    """Set configuration for this process; arguments left out are unchanged.

    Project and domain name the namespace tasks register in (as in Flyte);
    ``home`` is the store root; ``executor`` the default for runs.
    """
    given = {"project": project, "domain": domain, "executor": executor,
             "home": os.fspath(home) if home is not None else None}
    for key, value in given.items():
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"configure({key}=...): expected a non-empty string, got {value!r}")
        if key == "executor":
            _check_executor(value, source="configure(executor=...)")
        _overrides[key] = value
    return current()


def reset() -> None:
    """Drop every ``configure()`` override (tests use this)."""
    _overrides.clear()


def _check_executor(name: str, *, source: str) -> None:
    if name not in EXECUTORS:
        raise ConfigError(f"{source}: unknown executor {name!r}; expected one of {EXECUTORS}")
