"""``@task(...)`` parameters: flytekit's names, stored in ``task.config``, validated early."""

import math
import warnings
from datetime import timedelta
from typing import Any

import pytest

from sterna import (
    GPUAccelerator,
    Resources,
    SternaWarning,
    Task,
    TaskDefinitionError,
    task,
)
from sterna.core.taskconfig import TaskConfig


def _fetch(url: str, retries_seen: int = 0) -> str:
    """Fetch a URL (not really)."""
    return url.upper()


FETCH = f"{__name__}._fetch"


def _make(**params: Any) -> Task[..., str]:
    return task(**params)(_fetch)


def _rejected(**params: Any) -> str:
    """Decorate ``_fetch`` with ``params``; return the TaskDefinitionError message."""
    with pytest.raises(TaskDefinitionError) as info:
        _make(**params)
    return str(info.value)


# -- defaults and storage ------------------------------------------------------------


def test_plain_task_has_default_config() -> None:
    t = task(_fetch)
    assert t.config == TaskConfig()
    assert t.config.cache is False
    assert t.config.retries == 0
    assert t.config.timeout is None
    assert t.config.requests is None
    assert t.config.limits is None
    assert t.config.accelerator is None
    assert dict(t.config.environment) == {}
    assert t.config.container_image is None
    assert t.config.task_config is None
    assert t.config.deprecated == ""
    assert t.config.docs is None


def test_cache_parameters_are_stored() -> None:
    t = _make(cache=True, cache_version="v2", cache_serialize=True,
              cache_ignore_input_vars=("retries_seen",))
    assert t.config.cache is True
    assert t.config.cache_version == "v2"
    assert t.config.cache_serialize is True
    assert t.config.cache_ignore_input_vars == ("retries_seen",)


def test_cache_ignore_input_vars_list_is_stored_as_tuple() -> None:
    t = _make(cache=True, cache_ignore_input_vars=["url", "retries_seen"])
    assert t.config.cache_ignore_input_vars == ("url", "retries_seen")


def test_retries_is_stored() -> None:
    assert _make(retries=3).config.retries == 3


def test_timeout_in_seconds() -> None:
    assert _make(timeout=30).config.timeout == 30.0
    assert _make(timeout=0.5).config.timeout == 0.5


def test_timeout_as_timedelta() -> None:
    assert _make(timeout=timedelta(minutes=2)).config.timeout == 120.0
    assert _make(timeout=timedelta(milliseconds=250)).config.timeout == 0.25


def test_requests_and_limits_are_stored() -> None:
    requests = Resources(cpu="500m", mem="1Gi")
    limits = Resources(cpu="2", mem="2Gi")
    t = _make(requests=requests, limits=limits)
    assert t.config.requests == requests
    assert t.config.limits == limits


def test_resources_pairs_split_into_requests_and_limits() -> None:
    t = _make(resources=Resources(cpu=("1", "2"), mem=("1Gi", "4Gi"), gpu=1))
    assert t.config.requests == Resources(cpu="1", mem="1Gi", gpu=1)
    assert t.config.limits == Resources(cpu="2", mem="4Gi")
    assert t.config.requests is not None
    assert t.config.requests.amounts() == {"cpu": 1.0, "mem": 2**30, "gpu": 1.0}
    assert t.config.limits is not None
    assert t.config.limits.amounts() == {"cpu": 2.0, "mem": 4 * 2**30}


def test_resources_without_pairs_are_requests_only() -> None:
    t = _make(resources=Resources(cpu="1"))
    assert t.config.requests == Resources(cpu="1")
    assert t.config.limits is None


def test_accelerator_as_string() -> None:
    t = _make(accelerator="nvidia-tesla-t4")
    assert t.config.accelerator == GPUAccelerator("nvidia-tesla-t4")


def test_accelerator_as_gpu_accelerator() -> None:
    accel = GPUAccelerator("nvidia-a100")
    t = _make(accelerator=accel)
    assert t.config.accelerator == accel
    assert t.config.accelerator is not None
    assert t.config.accelerator.device == "nvidia-a100"


def test_accelerator_as_object_with_device_attribute() -> None:
    class ThirdPartyAccelerator:
        def __init__(self, device: str) -> None:
            self.device = device

    t = _make(accelerator=ThirdPartyAccelerator("nvidia-l4"))
    assert t.config.accelerator == GPUAccelerator("nvidia-l4")


def test_environment_is_stored_as_a_copy() -> None:
    env = {"MODE": "fast", "LEVEL": "3"}
    t = _make(environment=env)
    env["MODE"] = "changed"
    assert dict(t.config.environment) == {"MODE": "fast", "LEVEL": "3"}


def test_container_image_is_stored() -> None:
    assert _make(container_image="ghcr.io/acme/etl:1.2").config.container_image == (
        "ghcr.io/acme/etl:1.2")


def test_task_config_is_stored_as_given() -> None:
    plugin_config = object()
    assert _make(task_config=plugin_config).config.task_config is plugin_config


def test_docs_is_stored() -> None:
    assert _make(docs="Long description.").config.docs == "Long description."


def test_name_parameter() -> None:
    t = _make(name="etl.fetch")
    assert t.name == "etl.fetch"
    assert t.id.endswith("/etl.fetch")


def test_function_is_passed_positionally_with_parameters() -> None:
    t = task(_fetch, retries=2)  # type: ignore[call-overload]
    assert t.config.retries == 2
    assert t("a") == "A"


def test_config_is_frozen() -> None:
    t = _make(retries=1)
    with pytest.raises(AttributeError):
        t.config.retries = 5  # type: ignore[misc]


# -- deprecated ------------------------------------------------------------------------


def test_deprecated_is_stored_and_warns_once() -> None:
    t = _make(deprecated="use fetch_v2")
    assert t.config.deprecated == "use fetch_v2"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert t("x") == "X"
        assert t("y") == "Y"
        assert t("z") == "Z"
    ours = [w for w in caught if issubclass(w.category, SternaWarning)]
    assert len(ours) == 1
    message = str(ours[0].message)
    assert FETCH in message
    assert "use fetch_v2" in message


def test_deprecated_warning_is_a_sterna_warning() -> None:
    t = _make(deprecated="gone soon")
    with pytest.warns(SternaWarning, match="gone soon"):
        t("x")


def test_not_deprecated_does_not_warn() -> None:
    t = task(_fetch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t("x")
    assert not [w for w in caught if issubclass(w.category, SternaWarning)]


def test_each_deprecated_task_warns_once_on_its_own() -> None:
    first = _make(deprecated="first")
    second = _make(deprecated="second")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first("a")
        second("b")
        first("c")
        second("d")
    messages = [str(w.message) for w in caught if issubclass(w.category, SternaWarning)]
    assert len(messages) == 2
    assert any("first" in m for m in messages)
    assert any("second" in m for m in messages)


# -- invalid values -----------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, "yes", None], ids=["int", "str", "none"])
def test_cache_must_be_bool(value: object) -> None:
    message = _rejected(cache=value)
    assert FETCH in message
    assert "cache" in message


@pytest.mark.parametrize("value", [-1, 1.5, True, "3"], ids=["negative", "float", "bool", "str"])
def test_invalid_retries(value: object) -> None:
    message = _rejected(retries=value)
    assert FETCH in message
    assert "retries" in message
    assert repr(value) in message


@pytest.mark.parametrize(
    "value", ["10", True, -1, timedelta(seconds=-5), [1]],
    ids=["str", "bool", "negative", "negative-timedelta", "list"])
def test_invalid_timeout(value: object) -> None:
    message = _rejected(timeout=value)
    assert FETCH in message
    assert "timeout" in message


def test_nan_timeout_is_rejected() -> None:
    message = _rejected(timeout=math.nan)
    assert FETCH in message
    assert "timeout" in message


def test_cache_version_must_be_a_string() -> None:
    message = _rejected(cache=True, cache_version=2)
    assert FETCH in message
    assert "cache_version" in message


def test_cache_serialize_must_be_bool() -> None:
    message = _rejected(cache=True, cache_serialize="no")
    assert FETCH in message
    assert "cache_serialize" in message


@pytest.mark.parametrize(
    "params",
    [{"cache_version": "v1"}, {"cache_serialize": True},
     {"cache_ignore_input_vars": ("retries_seen",)},
     {"cache": False, "cache_version": "v1"}],
    ids=["cache_version", "cache_serialize", "cache_ignore_input_vars", "explicit-false"])
def test_cache_options_without_cache_are_rejected(params: dict[str, Any]) -> None:
    message = _rejected(**params)
    assert FETCH in message
    option = next(k for k in params if k != "cache")
    assert option in message
    assert "cache=True" in message


def test_cache_ignore_input_vars_naming_a_non_input_is_rejected() -> None:
    message = _rejected(cache=True, cache_ignore_input_vars=("uri",))
    assert FETCH in message
    assert "'uri'" in message
    assert "url" in message  # the inputs it does have are listed


def test_cache_ignore_input_vars_not_a_sequence_is_rejected() -> None:
    message = _rejected(cache=True, cache_ignore_input_vars=3)
    assert FETCH in message
    assert "cache_ignore_input_vars" in message


@pytest.mark.parametrize(
    "value", [{"A": 1}, {1: "a"}, ["A=1"], "A=1"], ids=["int-value", "int-key", "list", "str"])
def test_invalid_environment(value: object) -> None:
    message = _rejected(environment=value)
    assert FETCH in message
    assert "environment" in message


def test_invalid_container_image() -> None:
    message = _rejected(container_image=3)
    assert FETCH in message
    assert "container_image" in message


def test_invalid_deprecated() -> None:
    message = _rejected(deprecated=True)
    assert FETCH in message
    assert "deprecated" in message


def test_invalid_name() -> None:
    with pytest.raises(TaskDefinitionError) as info:
        _make(name=3)
    assert "name" in str(info.value)
    assert "3" in str(info.value)


@pytest.mark.parametrize("param", ["requests", "limits", "resources"])
def test_resources_parameters_must_be_resources(param: str) -> None:
    message = _rejected(**{param: {"cpu": "1"}})
    assert FETCH in message
    assert param in message
    assert "Resources" in message


def test_resources_with_requests_or_limits_is_rejected() -> None:
    message = _rejected(resources=Resources(cpu="1"), requests=Resources(mem="1Gi"))
    assert FETCH in message
    assert "resources" in message
    message = _rejected(resources=Resources(cpu="1"), limits=Resources(mem="1Gi"))
    assert FETCH in message


@pytest.mark.parametrize("value", [3, "", object()], ids=["int", "empty", "object"])
def test_invalid_accelerator_names_the_task(value: object) -> None:
    message = _rejected(accelerator=value)
    assert FETCH in message
    assert "accelerator" in message


# -- parameter names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wrong", "suggestion"),
    [("retry", "retries"), ("cache_versoin", "cache_version"), ("timout", "timeout"),
     ("enviroment", "environment"), ("request", "requests")])
def test_misspelt_parameter_suggests_the_right_one(wrong: str, suggestion: str) -> None:
    with pytest.raises(TaskDefinitionError) as info:
        task(**{wrong: 1})
    message = str(info.value)
    assert f"'{wrong}'" in message
    assert f"did you mean '{suggestion}'" in message


def test_misspelt_parameter_with_function_given_positionally() -> None:
    with pytest.raises(TaskDefinitionError) as info:
        task(_fetch, retyr=1)  # type: ignore[call-overload]
    assert "'retyr'" in str(info.value)
    assert "retries" in str(info.value)


def test_unknown_parameter_without_close_match() -> None:
    with pytest.raises(TaskDefinitionError) as info:
        task(zzqqxx=1)
    message = str(info.value)
    assert "'zzqqxx'" in message
    assert "did you mean" not in message
    assert "unknown" in message


@pytest.mark.parametrize(
    "name", ["interruptible", "secret_requests", "pod_template", "enable_deck"])
def test_unsupported_flytekit_parameter_says_so(name: str) -> None:
    with pytest.raises(TaskDefinitionError) as info:
        task(**{name: True})
    message = str(info.value)
    assert f"'{name}'" in message
    assert "not support" in message
    assert "did you mean" not in message
