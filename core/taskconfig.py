"""The settings of a task, validated once at decoration time.

Parameter names follow flytekit's ``@task`` so a flytekit example runs with
only its import line changed. A misspelt parameter is an error with a
suggestion, and a flytekit parameter sterna does not implement is named as
such rather than silently ignored.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from .errors import ResourceError, TaskDefinitionError, WorkflowDefinitionError
from .resources import GPUAccelerator, Resources, as_accelerator, check_within_limits

TASK_PARAMETERS = (
    "name", "cache", "cache_version", "cache_ignore_input_vars", "cache_serialize", "retries",
    "timeout", "requests", "limits", "resources", "accelerator", "environment",
    "container_image", "task_config", "deprecated", "docs",
)
FLYTEKIT_UNSUPPORTED = (
    "interruptible", "secret_requests", "execution_mode", "node_dependency_hints",
    "task_resolver", "pod_template", "pod_template_name", "enable_deck", "deck_fields",
    "pickle_untyped", "shared_memory", "labels", "annotations", "task_type",
)


@dataclass(frozen=True)
class TaskConfig:
    """Everything ``@task(...)`` accepts besides the function, normalised."""

    cache: bool = False
    cache_version: str = ""
    cache_ignore_input_vars: tuple[str, ...] = ()
    cache_serialize: bool = False
    retries: int = 0
    timeout: float | None = None
    requests: Resources | None = None
    limits: Resources | None = None
    accelerator: GPUAccelerator | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    container_image: str | None = None
    task_config: Any = None
    deprecated: str = ""
    docs: str | None = None


def check_parameter_names(params: Mapping[str, Any], *, decorator: str = "@task") -> None:
    """Reject unknown decorator parameters, suggesting the nearest known one."""
    error = TaskDefinitionError if decorator == "@task" else WorkflowDefinitionError
    known = TASK_PARAMETERS if decorator == "@task" else ("name", "docs")
    for name in params:
        if name in known:
            continue
        if name in FLYTEKIT_UNSUPPORTED or (decorator == "@workflow" and name in (
                "failure_policy", "on_failure", "interruptible", "default_options")):
            raise error(
                f"{decorator} parameter {name!r} is a flytekit parameter sterna does not support")
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise error(
            f"{decorator} got an unknown parameter {name!r}{hint} "
            f"(known: {', '.join(known)})")


def build_config(params: Mapping[str, Any], *, label: str, inputs: tuple[str, ...]) -> TaskConfig:
    """Validate and normalise ``@task`` parameters for the function ``label``."""
    def fail(message: str) -> TaskDefinitionError:
        return TaskDefinitionError(f"@task {label!r}: {message}")

    cache = _flag(params, "cache", fail)
    ignored = _ignored_inputs(params.get("cache_ignore_input_vars", ()), inputs, fail)
    for name in ("cache_version", "cache_serialize"):
        if params.get(name) and not cache:
            raise fail(f"{name} has no effect unless cache=True")
    if ignored and not cache:
        raise fail("cache_ignore_input_vars has no effect unless cache=True")
    version = params.get("cache_version", "")
    if not isinstance(version, str):
        raise fail(f"cache_version must be a string, got {version!r}")
    requests, limits = _resources(params, fail)
    return TaskConfig(
        cache=cache, cache_version=version, cache_ignore_input_vars=ignored,
        cache_serialize=_flag(params, "cache_serialize", fail),
        retries=_retries(params.get("retries", 0), fail),
        timeout=_timeout(params.get("timeout"), fail),
        requests=requests, limits=limits,
        accelerator=_accelerator(params.get("accelerator"), fail),
        environment=_environment(params.get("environment"), fail),
        container_image=_optional_str(params.get("container_image"), "container_image", fail),
        task_config=params.get("task_config"),
        deprecated=_optional_str(params.get("deprecated"), "deprecated", fail) or "",
        docs=None if params.get("docs") is None else str(params["docs"]),
    )


def _flag(params: Mapping[str, Any], name: str, fail: Any) -> bool:
    value = params.get(name, False)
    if not isinstance(value, bool):
        raise fail(f"{name} must be True or False, got {value!r}")
    return value


def _accelerator(value: Any, fail: Any) -> GPUAccelerator | None:
    try:
        return as_accelerator(value)
    except ResourceError as exc:
        raise fail(f"accelerator={value!r}: {exc}") from None


def _ignored_inputs(value: Any, inputs: tuple[str, ...], fail: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, str) for v in value):
        raise fail(f"cache_ignore_input_vars must be a tuple of input names, got {value!r}")
    names = tuple(value)
    for name in names:
        if name not in inputs:
            raise fail(f"cache_ignore_input_vars names {name!r}, which is not an input "
                       f"(inputs: {', '.join(inputs) or 'none'})")
    return names


def _retries(value: Any, fail: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise fail(f"retries must be a non-negative int, got {value!r}")
    return value


def _timeout(value: Any, fail: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise fail(f"timeout must be seconds or a timedelta, got {value!r}")
    if math.isnan(seconds) or seconds < 0:
        raise fail(f"timeout must be a non-negative number of seconds, got {value!r}")
    return seconds or None


def _resources(params: Mapping[str, Any], fail: Any) -> tuple[Resources | None, Resources | None]:
    requests, limits = params.get("requests"), params.get("limits")
    for name, value in (("requests", requests), ("limits", limits),
                        ("resources", params.get("resources"))):
        if value is not None and not isinstance(value, Resources):
            raise fail(f"{name} must be a Resources(...), got {type(value).__name__}")
    if params.get("resources") is not None:
        if requests is not None or limits is not None:
            raise fail("give either resources=... or requests=/limits=..., not both")
        requests, limits = params["resources"].split()
    try:
        check_within_limits(requests, limits)
    except ResourceError as exc:
        raise fail(str(exc)) from None
    return requests, limits


def _environment(value: Any, fail: Any) -> Mapping[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise fail(f"environment must be a dict of str to str, got {value!r}")
    return dict(value)


def _optional_str(value: Any, name: str, fail: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise fail(f"{name} must be a string, got {value!r}")
