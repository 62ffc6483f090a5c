"""The workflow Graph: pure data, ordered by dependencies rather than by program order."""

import dataclasses

import pytest

import sterna
from sterna import WorkflowDefinitionError, task, workflow
from sterna.core.graph import (
    Const,
    DictOf,
    Graph,
    InputRef,
    ListOf,
    Node,
    NodeRef,
    binding_nodes,
)
from sterna.core.interface import Interface

CALLS: list[str] = []


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    CALLS.clear()


@task
def source(x: int) -> int:
    CALLS.append("source")
    return x


@task
def left(v: int) -> int:
    CALLS.append("left")
    return v + 1


@task
def right(v: int) -> int:
    CALLS.append("right")
    return v * 10


@task
def merge(a: int, b: int) -> int:
    CALLS.append("merge")
    return a + b


@task
def lonely() -> None:
    CALLS.append("lonely")


NO_IO = Interface({}, {}, "none")


def _is_topological(graph: Graph) -> bool:
    position = {node_id: i for i, node_id in enumerate(graph.order)}
    return all(position[dep] < position[node_id]
               for node_id in graph.nodes for dep in graph.dependencies(node_id))


@workflow
def diamond(x: int) -> int:
    s = source(x=x)
    return merge(a=left(v=s), b=right(v=s))


@workflow
def two_branches(x: int, y: int) -> tuple[int, int]:
    # program order interleaves the branches; only data edges order them
    a1 = left(v=x)
    b1 = right(v=y)
    a2 = left(v=a1)
    b2 = right(v=b1)
    return a2, b2


# -- pure data -----------------------------------------------------------------------------


def test_graph_is_immutable_data() -> None:
    graph = diamond.graph
    assert dataclasses.is_dataclass(graph)
    with pytest.raises(dataclasses.FrozenInstanceError):
        graph.order = ()  # type: ignore[misc]
    node = graph.nodes["merge"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.after = frozenset()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        NodeRef("a", "o0").node = "b"  # type: ignore[misc]


def test_bindings_are_hashable_values_compared_by_content() -> None:
    made = {InputRef("x"), InputRef("x"), NodeRef("a", "o0"), NodeRef("a", "o0"), Const(1),
            ListOf((NodeRef("a", "o0"), Const(2))), DictOf((("k", InputRef("x")),))}
    assert len(made) == 5
    assert NodeRef("a", "o0") != NodeRef("a", "o1")
    assert Const(1) != Const(2)


def test_diamond_graph_contents() -> None:
    graph = diamond.graph
    assert graph.name == diamond.name
    assert graph.interface is diamond.interface
    assert set(graph.nodes) == {"source", "left", "right", "merge"}
    assert graph.nodes["source"].bindings == {"x": InputRef("x")}
    assert graph.nodes["left"].bindings == {"v": NodeRef("source", "o0")}
    assert graph.nodes["right"].bindings == {"v": NodeRef("source", "o0")}
    assert graph.nodes["merge"].bindings == {
        "a": NodeRef("left", "o0"), "b": NodeRef("right", "o0")}
    assert graph.nodes["merge"].task is merge
    assert all(node.after == frozenset() for node in graph.nodes.values())
    assert graph.outputs == {"o0": NodeRef("merge", "o0")}
    for node_id, node in graph.nodes.items():
        assert node.id == node_id


# -- dependencies and order ----------------------------------------------------------------


def test_diamond_dependencies_and_order() -> None:
    graph = diamond.graph
    assert graph.dependencies("source") == frozenset()
    assert graph.dependencies("left") == {"source"}
    assert graph.dependencies("right") == {"source"}
    assert graph.dependencies("merge") == {"left", "right"}
    assert sorted(graph.order) == sorted(graph.nodes)
    assert graph.order[0] == "source"
    assert graph.order[-1] == "merge"
    assert _is_topological(graph)


def test_diamond_runs_and_records_nodes_in_dependency_order() -> None:
    run = sterna.run(diamond, x=2)
    assert run.outputs == (2 + 1) + 2 * 10
    assert list(run.nodes) == list(diamond.graph.order)
    assert CALLS[0] == "source"
    assert CALLS[-1] == "merge"
    assert sorted(CALLS) == ["left", "merge", "right", "source"]


def test_independent_nodes_have_no_edge_between_them() -> None:
    graph = two_branches.graph
    assert set(graph.nodes) == {"left", "right", "left-2", "right-2"}
    assert graph.dependencies("left") == frozenset()
    assert graph.dependencies("right") == frozenset()
    assert graph.dependencies("left-2") == {"left"}
    assert graph.dependencies("right-2") == {"right"}
    for a in ("left", "left-2"):
        for b in ("right", "right-2"):
            assert a not in graph.dependencies(b)
            assert b not in graph.dependencies(a)
    assert _is_topological(graph)
    assert two_branches(x=1, y=2) == (3, 200)


def test_unconnected_call_has_no_dependencies_but_still_runs() -> None:
    @workflow
    def wf(x: int) -> int:
        s = source(x=x)
        lonely()
        return left(v=s)

    assert wf.graph.dependencies("lonely") == frozenset()
    assert "lonely" not in wf.graph.dependencies("left")
    assert wf(x=1) == 2
    assert "lonely" in CALLS


def test_order_is_topological_for_a_larger_graph() -> None:
    @workflow
    def wide(x: int) -> int:
        late = merge(a=x, b=x)
        s = source(x=x)
        lefts = [left(v=s) for _ in range(3)]
        r = right(v=lefts[2])
        m = merge(a=lefts[0], b=r)
        r >> late  # late was called first in the body, but runs after r
        return merge(a=m, b=merge(a=lefts[1], b=late))

    graph = wide.graph
    assert graph.dependencies("merge") == {"right"}
    assert _is_topological(graph)
    assert graph.order.index("right") < graph.order.index("merge")
    assert len(graph.order) == len(set(graph.order)) == len(graph.nodes)
    # x=1: s=1, lefts=2, r=20, m=22, late=2, merge(2, 2)=4 -> 26
    assert wide(x=1) == 26


def test_list_and_dict_bindings_are_dependencies() -> None:
    @task
    def gather(xs: list[int], m: dict[str, int]) -> int:
        return sum(xs) + sum(m.values())

    @workflow
    def wf(x: int) -> int:
        return gather(xs=[left(v=x), 5], m={"r": right(v=x), "x": x})

    graph = wf.graph
    assert graph.dependencies("gather") == {"left", "right"}
    assert _is_topological(graph)
    assert wf(x=1) == 2 + 5 + 10 + 1


def test_binding_nodes_reads_nested_bindings() -> None:
    nested = ListOf((NodeRef("a", "o0"), DictOf((("k", NodeRef("b", "o1")),
                                                 ("c", Const(3)))), InputRef("x")))
    assert binding_nodes(nested) == {"a", "b"}
    assert binding_nodes(InputRef("x")) == set()
    assert binding_nodes(Const([1])) == set()
    assert binding_nodes(ListOf(())) == set()


# -- Graph.build ---------------------------------------------------------------------------


def test_build_from_hand_made_nodes() -> None:
    nodes = {
        "z": Node("z", lonely, {}, frozenset({"y"})),
        "y": Node("y", lonely, {}, frozenset({"x"})),
        "x": Node("x", lonely, {}),
    }
    graph = Graph.build("hand", NO_IO, nodes, {})
    assert graph.order == ("x", "y", "z")
    assert graph.dependencies("z") == {"y"}


def test_build_rejects_a_cycle() -> None:
    nodes = {
        "a": Node("a", left, {"v": NodeRef("c", "o0")}),
        "b": Node("b", left, {"v": NodeRef("a", "o0")}),
        "c": Node("c", lonely, {}, frozenset({"b"})),
    }
    with pytest.raises(WorkflowDefinitionError) as info:
        Graph.build("loopy", NO_IO, nodes, {})
    message = str(info.value)
    assert "workflow 'loopy'" in message
    assert "cycle" in message
    for node_id in ("a", "b", "c"):
        assert node_id in message


def test_build_rejects_a_self_loop() -> None:
    nodes = {"a": Node("a", lonely, {}, frozenset({"a"}))}
    with pytest.raises(WorkflowDefinitionError, match="cycle"):
        Graph.build("selfish", NO_IO, nodes, {})


def test_build_rejects_unknown_node_reference() -> None:
    nodes = {"a": Node("a", left, {"v": NodeRef("ghost", "o0")})}
    with pytest.raises(WorkflowDefinitionError) as info:
        Graph.build("haunted", NO_IO, nodes, {})
    message = str(info.value)
    assert "workflow 'haunted'" in message
    assert "'a'" in message
    assert "'ghost'" in message


# -- sorter --------------------------------------------------------------------------------


def test_sorter_gives_independent_branches_ready_together() -> None:
    sorter = two_branches.graph.sorter()
    assert set(sorter.get_ready()) == {"left", "right"}
    sorter.done("left")
    assert set(sorter.get_ready()) == {"left-2"}
    sorter.done("right")
    assert set(sorter.get_ready()) == {"right-2"}
    sorter.done("left-2", "right-2")
    assert not sorter.is_active()


def test_sorter_on_diamond_gives_ready_sets_in_waves() -> None:
    graph = diamond.graph
    sorter = graph.sorter()
    waves = []
    while sorter.is_active():
        ready = sorter.get_ready()
        waves.append(set(ready))
        sorter.done(*ready)
    assert waves == [{"source"}, {"left", "right"}, {"merge"}]
    # every call gives a fresh sorter
    assert set(graph.sorter().get_ready()) == {"source"}


def test_sorter_respects_rshift_edges() -> None:
    @workflow
    def ordered() -> None:
        b = lonely()
        a = lonely()
        a >> b

    graph = ordered.graph
    assert graph.dependencies("lonely") == {"lonely-2"}
    sorter = graph.sorter()
    assert set(sorter.get_ready()) == {"lonely-2"}
    sorter.done("lonely-2")
    assert set(sorter.get_ready()) == {"lonely"}
    assert graph.order == ("lonely-2", "lonely")


def test_task_as_graph_is_a_one_node_graph() -> None:
    graph = merge.as_graph()
    assert set(graph.nodes) == {"merge"}
    assert graph.nodes["merge"].bindings == {"a": InputRef("a"), "b": InputRef("b")}
    assert graph.outputs == {"o0": NodeRef("merge", "o0")}
    assert graph.order == ("merge",)
    assert sterna.run(merge, a=1, b=2).outputs == 3
