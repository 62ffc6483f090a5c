"""``explain`` on map nodes: per-item hits and the reasons of the first misses."""

import sterna
from sterna import map_task
from sterna.cache.explain import explain_target


@sterna.task(cache=True)
def square(x: int) -> int:
    return x * x


@sterna.task
def total(xs: list[int]) -> int:
    return sum(xs)


@sterna.task
def numbers(n: int) -> list[int]:
    return list(range(n))


@sterna.workflow
def mapped(xs: list[int]) -> int:
    return total(xs=map_task(square)(x=xs))


@sterna.workflow
def mapped_upstream(n: int) -> list[int]:
    return map_task(square)(x=numbers(n=n))


def _by_node(target: object, **given: object) -> dict[str, object]:
    return {e.node_id: e for e in explain_target(target, given)}


def test_a_map_whose_items_all_ran_would_hit() -> None:
    sterna.run(mapped, xs=[1, 2, 3])
    entry = _by_node(mapped, xs=[1, 2, 3])["map_square"]
    assert entry.status == "hit"
    assert entry.reasons == ["all 3 items hit"]


def test_a_map_names_the_items_that_would_miss_and_why() -> None:
    sterna.run(mapped, xs=[1, 2, 3])
    entry = _by_node(mapped, xs=[1, 2, 4, 5])["map_square"]
    assert entry.status == "miss"
    assert entry.reasons[0] == "2 of 4 items miss"
    assert entry.reasons[1].startswith("item 2: input 'x' changed")
    assert entry.reasons[2].startswith("item 3: input 'x' changed")


def test_a_map_over_an_upstream_result_depends_on_it() -> None:
    entry = _by_node(mapped_upstream, n=3)["map_square"]
    assert entry.status == "depends"
    assert "'numbers'" in entry.reasons[0]
