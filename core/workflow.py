"""``@workflow``: trace a function body once into a ``Graph``.

Tracing calls the body with promises for its inputs; each task call inside
adds a node and returns promises for its outputs. Wiring mistakes fail here,
at definition time: an output whose type cannot feed an input, control flow
on a promise, a cycle made with ``>>``. A subworkflow call is inlined (its
nodes are copied under a prefix), so the engine sees one flat DAG and can
overlap a subworkflow's branches with the rest of the run.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from sterna.typesys.check import check_value
from sterna.typesys.compat import assignable
from sterna.typesys.types import AnyT, DictT, ListT, SType

from .errors import EdgeTypeError, InputError, TypeCheckError, WorkflowDefinitionError
from .graph import Binding, Const, DictOf, Graph, InputRef, ListOf, Node, NodeRef
from .interface import Interface, bind_arguments, entity_name, interface_of
from .promise import NodeHandle, Outputs, Promise, active_builder, set_builder
from .taskconfig import check_parameter_names

if TYPE_CHECKING:
    from .engine import Run
    from .task import Task

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class _Draft:
    task: Task[..., Any]
    bindings: dict[str, Binding]
    after: set[str] = field(default_factory=set)


class GraphBuilder:
    """Collects the nodes of one workflow while its body is traced."""

    def __init__(self, name: str, interface: Interface) -> None:
        self.name = name
        self.label = f"workflow {name!r}"
        self.interface = interface
        self.nodes: dict[str, _Draft] = {}
        self._ids: set[str] = set()

    def input_promises(self) -> dict[str, Promise]:
        return {name: Promise(InputRef(name), p.stype, f"workflow input {name!r}", None)
                for name, p in self.interface.inputs.items()}

    def _new_id(self, base: str) -> str:
        node_id, n = base, 1
        while node_id in self._ids:
            n += 1
            node_id = f"{base}-{n}"
        self._ids.add(node_id)
        return node_id

    # -- calls --------------------------------------------------------------
    def add_task_call(self, task: Task[..., Any], args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
        task.warn_if_deprecated()
        owner = f"{self.label} calling {task.label}"
        values = _bind_call(task.interface, args, kwargs, owner)
        bindings = {name: self.bind(values[name], param.stype, owner, task.label, name)
                    for name, param in task.interface.inputs.items()}
        node_id = self._new_id(task.node_name)
        self.nodes[node_id] = _Draft(task, bindings)
        handle = NodeHandle(self, (node_id,), task.label)
        outputs = {name: Promise(NodeRef(node_id, name), stype,
                                 f"{task.label} output {name!r}", handle)
                   for name, stype in task.interface.outputs.items()}
        return _results(task.interface, outputs, handle)

    def add_workflow_call(self, wf: Workflow[..., Any], args: tuple[Any, ...],
                          kwargs: dict[str, Any]) -> Any:
        owner = f"{self.label} calling {wf.label}"
        values = _bind_call(wf.interface, args, kwargs, owner)
        inputs = {name: self.bind(values[name], param.stype, owner, wf.label, name)
                  for name, param in wf.interface.inputs.items()}
        prefix = self._new_id(wf.fn.__name__)

        def remap(binding: Binding) -> Binding:
            if isinstance(binding, InputRef):
                return inputs[binding.name]
            if isinstance(binding, NodeRef):
                return NodeRef(f"{prefix}.{binding.node}", binding.output)
            if isinstance(binding, ListOf):
                return ListOf(tuple(remap(b) for b in binding.items))
            if isinstance(binding, DictOf):
                return DictOf(tuple((k, remap(b)) for k, b in binding.items))
            return binding

        for node in wf.graph.nodes.values():
            node_id = f"{prefix}.{node.id}"
            self._ids.add(node_id)
            self.nodes[node_id] = _Draft(
                node.task, {k: remap(b) for k, b in node.bindings.items()},
                {f"{prefix}.{a}" for a in node.after})
        handle = NodeHandle(self, tuple(f"{prefix}.{n}" for n in wf.graph.nodes), wf.label)
        outputs = {name: Promise(remap(binding), wf.interface.outputs[name],
                                 f"{wf.label} output {name!r}", handle)
                   for name, binding in wf.graph.outputs.items()}
        return _results(wf.interface, outputs, handle)

    def order_after(self, first: NodeHandle, then: NodeHandle) -> None:
        """Record ``first >> then``."""
        if first._builder is not self or then._builder is not self:
            raise WorkflowDefinitionError(
                f"{self.label}: '>>' joins calls made in another workflow's body")
        for node_id in then._node_ids:
            self.nodes[node_id].after.update(first._node_ids)

    # -- bindings -----------------------------------------------------------
    def bind(self, value: Any, stype: SType, owner: str, callee: str, name: str,
             item: str = "") -> Binding:
        """Turn a value passed in the body into a binding, checking its type now.

        ``callee`` and ``name`` say what receives it (``task 'x' input 'rows'``);
        ``item`` locates it inside a list or dict of promises.
        """
        role = "output" if callee == self.label else "input"
        target = f"{callee} {role} {name!r}{f' ({item})' if item else ''}"
        if isinstance(value, Promise):
            return self._bind_promise(value, stype, target)
        if isinstance(value, (Outputs, NodeHandle)):
            raise WorkflowDefinitionError(
                f"{self.label}: {target} was given {value!r}, which is "
                f"{'several outputs; pass one of them (e.g. result.o0)' if isinstance(value, Outputs) else 'a call with no outputs'}")  # noqa: E501
        if _holds_promise(value):
            return self._bind_collection(value, stype, owner, callee, name, item)
        try:
            checked = check_value(stype, value, owner=owner, role=role, name=name)
        except TypeCheckError as exc:
            where = f" ({item})" if item else ""
            raise EdgeTypeError(f"{self.label}: {exc}{where}") from None
        return Const(checked)

    def _bind_promise(self, promise: Promise, stype: SType, target: str) -> Binding:
        binding = promise.binding
        handle = promise.handle
        if (handle is not None and handle._builder is not self) or (
                isinstance(binding, InputRef) and binding.name not in self.interface.inputs):
            raise WorkflowDefinitionError(
                f"{self.label}: {target} was given {promise.producer} from another workflow")
        if not assignable(promise.stype, stype):
            raise EdgeTypeError(
                f"{self.label}: {promise.producer} of type {promise.stype.describe()} cannot "
                f"feed {target} of type {stype.describe()}")
        return binding

    def _bind_collection(self, value: Any, stype: SType, owner: str, callee: str, name: str,
                         item: str) -> Binding:
        prefix = f"{item}, " if item else ""
        if isinstance(value, list) and isinstance(stype, (ListT, AnyT)):
            inner = stype.item if isinstance(stype, ListT) else stype
            return ListOf(tuple(self.bind(v, inner, owner, callee, name, f"{prefix}item {i}")
                                for i, v in enumerate(value)))
        if isinstance(value, dict) and isinstance(stype, (DictT, AnyT)):
            inner = stype.value if isinstance(stype, DictT) else stype
            if not all(isinstance(k, str) for k in value):
                raise EdgeTypeError(f"{self.label}: {callee} input {name!r} needs str keys")
            return DictOf(tuple(
                (k, self.bind(v, inner, owner, callee, name, f"{prefix}value of key {k!r}"))
                for k, v in value.items()))
        raise EdgeTypeError(
            f"{self.label}: {callee} input {name!r} of type {stype.describe()} was given a "
            f"{type(value).__name__} holding promises; only lists and dicts may hold promises")

    # -- finish -------------------------------------------------------------
    def finish(self, returned: Any) -> Graph:
        """Bind the body's return value to the declared outputs and build the graph."""
        interface = self.interface
        names = list(interface.outputs)
        if interface.output_kind == "none":
            if returned is not None and not isinstance(returned, NodeHandle):
                raise WorkflowDefinitionError(
                    f"{self.label} returns {returned!r} but declares no outputs; annotate its "
                    "return type")
            values: list[Any] = []
        elif interface.output_kind == "single":
            values = [returned]
        else:
            if not isinstance(returned, tuple) or len(returned) != len(names):
                raise WorkflowDefinitionError(
                    f"{self.label} must return {len(names)} values ({', '.join(names)}), "
                    f"got {returned!r}")
            values = list(returned)
        outputs = {name: self.bind(value, interface.outputs[name], self.label, self.label, name)
                   for name, value in zip(names, values)}
        nodes = {node_id: Node(node_id, d.task, d.bindings, frozenset(d.after))
                 for node_id, d in self.nodes.items()}
        return Graph.build(self.name, interface, nodes, outputs)


def _bind_call(interface: Interface, args: tuple[Any, ...], kwargs: dict[str, Any],
               owner: str) -> dict[str, Any]:
    """Bind a call's arguments; a missing or unknown one is a definition error here."""
    try:
        return bind_arguments(interface, args, kwargs, owner=owner)
    except InputError as exc:
        raise WorkflowDefinitionError(str(exc)) from None


def _results(interface: Interface, outputs: dict[str, Promise], handle: NodeHandle) -> Any:
    if interface.output_kind == "none":
        return handle
    if interface.output_kind == "single":
        return outputs["o0"]
    return Outputs(outputs, handle)


def _holds_promise(value: Any) -> bool:
    if isinstance(value, (Promise, Outputs, NodeHandle)):
        return True
    if isinstance(value, list):
        return any(_holds_promise(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_promise(v) for v in value.values())
    return False


class Workflow(Generic[P, R]):
    """A traced workflow: a ``Graph`` plus the function's name, docs and interface."""

    def __init__(self, fn: Callable[P, R], params: dict[str, Any]) -> None:
        check_parameter_names(params, decorator="@workflow")
        if not inspect.isfunction(fn):
            raise WorkflowDefinitionError(
                f"@workflow must decorate a function (def), got {fn!r}")
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name: str = entity_name(params, fn, "@workflow")
        self.docs = params.get("docs")
        self.label = f"workflow {self.name!r}"
        self.interface: Interface = interface_of(fn, kind="workflow")
        self.graph: Graph = self._trace()

    def _trace(self) -> Graph:
        builder = GraphBuilder(self.name, self.interface)
        previous = set_builder(builder)
        try:
            returned = self.fn(**builder.input_promises())  # type: ignore[arg-type]
        finally:
            set_builder(previous)
        return builder.finish(returned)

    def __get__(self, obj: Any, objtype: Any = None) -> Workflow[P, R]:
        return self  # see Task.__get__: keeps pydoc showing the signature

    def __repr__(self) -> str:
        return f"<workflow {self.name} ({self.interface.describe_inputs()})>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        builder = active_builder()
        if builder is not None:
            return builder.add_workflow_call(self, args, kwargs)  # type: ignore[no-any-return]
        return self.run(*args, **kwargs).outputs  # type: ignore[no-any-return]

    def run(self, *args: Any, executor: str | None = None, **kwargs: Any) -> Run:
        """Run the workflow and return the ``Run`` record (``sterna.run`` does the same)."""
        from .engine import run_graph

        inputs = bind_arguments(self.interface, args, kwargs, owner=self.label,
                                fill_defaults=False) if args else kwargs
        return run_graph(self.graph, inputs, executor=executor)


@overload
def workflow(fn: Callable[P, R], /) -> Workflow[P, R]: ...


@overload
def workflow(*, name: str | None = ..., docs: Any = ...
             ) -> Callable[[Callable[P, R]], Workflow[P, R]]: ...


def workflow(fn: Any = None, /, **params: Any) -> Any:
    """Make a function a workflow: ``@workflow`` or ``@workflow(name=...)``."""
    if fn is not None:
        return Workflow(fn, params)
    check_parameter_names(params, decorator="@workflow")
    return lambda f: Workflow(f, params)
