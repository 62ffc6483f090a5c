"""``Resources``: Kubernetes quantities, pairs, amounts, split, and limits at ``@task`` time."""

import dataclasses
import math

import pytest

from sterna import (
    DefinitionError,
    GPUAccelerator,
    ResourceError,
    Resources,
    TaskDefinitionError,
    task,
)


def _work(n: int) -> int:
    return n


WORK = f"{__name__}._work"


# -- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "cores"),
    [("500m", 0.5), ("1.5", 1.5), (3, 3.0), (0.25, 0.25), ("2", 2.0), ("1e3", 1000.0),
     ("1E3", 1000.0), ("1e-3", 0.001), ("1k", 1000.0), ("250m", 0.25), ("0", 0.0),
     (".5", 0.5)])
def test_cpu_quantities(value: object, cores: float) -> None:
    amount = Resources(cpu=value).amounts()["cpu"]  # type: ignore[arg-type]
    assert amount == pytest.approx(cores)


@pytest.mark.parametrize(
    ("value", "size"),
    [("2Gi", 2 * 2**30), ("1Mi", 2**20), ("1M", 10**6), ("1k", 1000), ("1Ki", 1024),
     ("1e3", 1000), ("1G", 10**9), ("1Ti", 2**40), (3, 3), ("512", 512), ("1.5Gi", 3 * 2**29)])
def test_memory_quantities_in_bytes(value: object, size: int) -> None:
    amount = Resources(mem=value).amounts()["mem"]  # type: ignore[arg-type]
    assert amount == size
    assert isinstance(amount, int)


def test_fractional_bytes_round_up() -> None:
    assert Resources(mem="1.5").amounts()["mem"] == 2
    assert Resources(mem="100m").amounts()["mem"] == 1


def test_ephemeral_storage_in_bytes() -> None:
    assert Resources(ephemeral_storage="10Gi").amounts() == {"ephemeral_storage": 10 * 2**30}


@pytest.mark.parametrize(
    ("value", "count"), [(1, 1.0), ("2", 2.0), ("0.5", 0.5), ("250m", 0.25), (4, 4.0)])
def test_gpu_counts(value: object, count: float) -> None:
    assert Resources(gpu=value).amounts()["gpu"] == count  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["1.5", 2.5, "1500m"], ids=["str", "float", "milli"])
def test_fractional_gpu_of_one_or_more_is_rejected(value: object) -> None:
    with pytest.raises(ResourceError) as info:
        Resources(gpu=value)  # type: ignore[arg-type]
    message = str(info.value)
    assert "gpu" in message
    assert repr(value) in message


@pytest.mark.parametrize(
    ("field", "value"),
    [("mem", "2GB"), ("cpu", "-1"), ("cpu", "abc"), ("cpu", ""), ("mem", "1 Gi"),
     ("mem", "Gi"), ("mem", "1gi"), ("cpu", "1.2.3"), ("cpu", -1), ("mem", "1KB"),
     ("ephemeral_storage", "ten"), ("gpu", "one")])
def test_malformed_quantity_names_field_and_value(field: str, value: object) -> None:
    with pytest.raises(ResourceError) as info:
        Resources(**{field: value})  # type: ignore[arg-type]
    message = str(info.value)
    assert field in message
    assert repr(value) in message


@pytest.mark.parametrize(
    "value", [True, False, [1], {"cpu": 1}, object()],
    ids=["true", "false", "list", "dict", "object"])
def test_non_quantity_types_are_rejected(value: object) -> None:
    with pytest.raises(ResourceError) as info:
        Resources(cpu=value)  # type: ignore[arg-type]
    message = str(info.value)
    assert "cpu" in message
    assert type(value).__name__ in message


@pytest.mark.parametrize("value", [math.inf, math.nan], ids=["inf", "nan"])
def test_non_finite_floats_are_rejected(value: float) -> None:
    with pytest.raises(ResourceError) as info:
        Resources(cpu=value)
    assert "cpu" in str(info.value)


def test_resource_error_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError):
        Resources(mem="2GB")


# -- pairs -----------------------------------------------------------------------------------


def test_pair_amounts_use_the_request() -> None:
    res = Resources(cpu=("500m", "2"), mem=("1Gi", "2Gi"), gpu=(1, 2))
    assert res.amounts() == {"cpu": 0.5, "mem": 2**30, "gpu": 1.0}


@pytest.mark.parametrize(
    ("field", "pair", "bad"),
    [("cpu", (None, "1"), None), ("cpu", ("1", None), None), ("mem", ("1Gi", "2GB"), "2GB"),
     ("cpu", (True, "1"), True), ("gpu", ("1", "1.5"), "1.5")])
def test_bad_value_inside_a_pair_is_rejected(field: str, pair: tuple[object, object],
                                              bad: object) -> None:
    with pytest.raises(ResourceError) as info:
        Resources(**{field: pair})  # type: ignore[arg-type]
    message = str(info.value)
    assert field in message
    assert repr(bad) in message


@pytest.mark.parametrize("pair", [("1",), ("1", "2", "3"), ()], ids=["one", "three", "empty"])
def test_pair_must_have_two_items(pair: tuple[object, ...]) -> None:
    with pytest.raises(ResourceError) as info:
        Resources(cpu=pair)  # type: ignore[arg-type]
    assert "cpu" in str(info.value)


# -- amounts / split / items ------------------------------------------------------------------


def test_amounts_only_lists_fields_that_are_set() -> None:
    assert Resources().amounts() == {}
    assert Resources(mem="1Gi").amounts() == {"mem": 2**30}


def test_items_lists_set_fields_as_written() -> None:
    res = Resources(cpu="500m", gpu=(1, 2))
    assert res.items() == [("cpu", "500m"), ("gpu", (1, 2))]


def test_split_pairs_into_requests_and_limits() -> None:
    requests, limits = Resources(cpu=("1", "2"), mem="1Gi", gpu=(1, 1)).split()
    assert requests == Resources(cpu="1", mem="1Gi", gpu=1)
    assert limits == Resources(cpu="2", gpu=1)


def test_split_without_pairs_gives_requests_only() -> None:
    res = Resources(cpu="1", mem="2Gi")
    requests, limits = res.split()
    assert requests == res
    assert limits is None


def test_split_of_empty_resources() -> None:
    assert Resources().split() == (None, None)


def test_split_keeps_the_values_as_written() -> None:
    requests, limits = Resources(mem=("512Mi", "1Gi")).split()
    assert requests is not None
    assert limits is not None
    assert requests.mem == "512Mi"
    assert limits.mem == "1Gi"


# -- frozen / hashable ---------------------------------------------------------------------


def test_resources_is_frozen() -> None:
    res = Resources(cpu="1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.cpu = "2"  # type: ignore[misc]
    assert res.cpu == "1"


def test_resources_is_hashable_and_compares_by_value() -> None:
    a = Resources(cpu=("1", "2"), mem="1Gi")
    b = Resources(cpu=("1", "2"), mem="1Gi")
    c = Resources(cpu=("1", "3"), mem="1Gi")
    assert a == b
    assert hash(a) == hash(b)
    assert a != c
    assert len({a, b, c}) == 2
    assert {a: "x"}[b] == "x"


# -- requests vs limits at @task time ------------------------------------------------------


@pytest.mark.parametrize(
    ("requests", "limits", "field"),
    [(Resources(cpu="2"), Resources(cpu="1"), "cpu"),
     (Resources(cpu="1500m"), Resources(cpu="1"), "cpu"),
     (Resources(mem="1Gi"), Resources(mem="1G"), "mem"),
     (Resources(mem="2Gi"), Resources(mem="1000Mi"), "mem"),
     (Resources(gpu=2), Resources(gpu=1), "gpu"),
     (Resources(ephemeral_storage="2Gi"), Resources(ephemeral_storage="1Gi"),
      "ephemeral_storage")],
    ids=["cpu", "cpu-milli", "mem-binary-vs-decimal", "mem", "gpu", "storage"])
def test_requests_above_limits_rejected_at_task_time(
    requests: Resources, limits: Resources, field: str,
) -> None:
    with pytest.raises(TaskDefinitionError) as info:
        task(requests=requests, limits=limits)(_work)
    message = str(info.value)
    assert WORK in message
    assert field in message
    assert repr(getattr(requests, field)) in message
    assert repr(getattr(limits, field)) in message


def test_pair_with_request_above_limit_rejected_at_task_time() -> None:
    res = Resources(cpu=("4", "2"))
    with pytest.raises(TaskDefinitionError) as info:
        task(resources=res)(_work)
    message = str(info.value)
    assert WORK in message
    assert "cpu" in message
    assert "'4'" in message
    assert "'2'" in message


def test_requests_equal_to_or_below_limits_are_accepted() -> None:
    t = task(requests=Resources(cpu="1", mem="1Gi"),
             limits=Resources(cpu="1000m", mem="2Gi"))(_work)
    assert t.config.requests == Resources(cpu="1", mem="1Gi")
    assert t.config.limits == Resources(cpu="1000m", mem="2Gi")
    assert t(3) == 3


def test_limits_on_other_fields_do_not_conflict() -> None:
    t = task(requests=Resources(cpu="8"), limits=Resources(mem="1Gi"))(_work)
    assert t.config.requests == Resources(cpu="8")
    assert t.config.limits == Resources(mem="1Gi")


# -- GPUAccelerator ----------------------------------------------------------------------------


def test_gpu_accelerator_keeps_its_device() -> None:
    accel = GPUAccelerator("nvidia-tesla-t4")
    assert accel.device == "nvidia-tesla-t4"
    assert accel == GPUAccelerator("nvidia-tesla-t4")
    assert hash(accel) == hash(GPUAccelerator("nvidia-tesla-t4"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        accel.device = "other"  # type: ignore[misc]


@pytest.mark.parametrize("device", ["", "   ", 3, None], ids=["empty", "blank", "int", "none"])
def test_gpu_accelerator_needs_a_name(device: object) -> None:
    with pytest.raises(ResourceError) as info:
        GPUAccelerator(device)  # type: ignore[arg-type]
    assert "device" in str(info.value)
