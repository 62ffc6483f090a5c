"""Promises: what a task call returns while a workflow is being traced.

A ``@workflow`` body runs once, at definition time, with promises in place of
values. A promise knows which node produces it and its sterna type; it
refuses every operation that would need the value (``if``, ``for``,
arithmetic, comparisons, formatting) with a message that says what to do
instead, because silently evaluating such code at definition time would bake
one branch into the graph.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, NoReturn

from .errors import WorkflowDefinitionError

if TYPE_CHECKING:
    from sterna.typesys.types import SType

    from .workflow import GraphBuilder

_state = threading.local()


def active_builder() -> GraphBuilder | None:
    """The graph being traced in this thread, if any."""
    return getattr(_state, "builder", None)


def set_builder(builder: GraphBuilder | None) -> GraphBuilder | None:
    """Install ``builder`` as the active one; return the previous (for nesting)."""
    previous = getattr(_state, "builder", None)
    _state.builder = builder
    return previous


class NodeHandle:
    """The result of a call inside a workflow that can be ordered with ``>>``."""

    def __init__(self, builder: GraphBuilder, node_ids: tuple[str, ...], label: str) -> None:
        self._builder = builder
        self._node_ids = node_ids
        self._label = label

    def __rshift__(self, other: Any) -> Any:
        """``a >> b``: run b after a, though no data flows between them."""
        self._builder.order_after(_handle_of(self, "left"), _handle_of(other, "right"))
        return other

    def __repr__(self) -> str:
        return f"<call of {self._label}>"


def _handle_of(value: Any, side: str) -> NodeHandle:
    if isinstance(value, NodeHandle):
        handle: Any = value
    elif isinstance(value, Outputs):
        handle = value.__dict__["_handle"]
    else:
        handle = getattr(value, "handle", None) if isinstance(value, Promise) else None
    if not isinstance(handle, NodeHandle):
        raise WorkflowDefinitionError(
            f"'>>' needs task or workflow calls on both sides; the {side} side is "
            f"{value!r}")
    return handle


class Promise:
    """A future output of a node (or a workflow input) inside a workflow being traced."""

    __slots__ = ("binding", "handle", "producer", "stype")

    def __init__(self, binding: Any, stype: SType, producer: str,
                 handle: NodeHandle | None) -> None:
        self.binding = binding      # an InputRef or NodeRef
        self.stype = stype
        self.producer = producer    # "task 'etl.clean' output 'o0'" or "workflow input 'x'"
        self.handle = handle

    def __rshift__(self, other: Any) -> Any:
        if self.handle is None:
            _refuse(self, "'>>' on a workflow input", "order task calls, not inputs")
        return self.handle >> other

    def __repr__(self) -> str:
        return f"<promise of {self.producer}: {self.stype.describe()}>"

    def __bool__(self) -> NoReturn:
        _refuse(self, "'if' or a boolean test",
                "a workflow body runs once, when the workflow is defined, before any value "
                "exists; decide inside a task instead (pass the value to a task that branches)")

    def __iter__(self) -> NoReturn:
        _refuse(self, "iteration ('for', unpacking, list())",
                "the list does not exist yet when the workflow is defined; use map_task to run "
                "a task over each item, or pass the whole list to a task")

    def __len__(self) -> NoReturn:
        _refuse(self, "len()", "compute the length inside a task")

    def __getitem__(self, key: Any) -> NoReturn:
        _refuse(self, f"indexing ([{key!r}])", "index inside a task that takes the whole value")

    def __contains__(self, item: Any) -> NoReturn:
        _refuse(self, "'in'", "test membership inside a task")

    def __format__(self, spec: str) -> NoReturn:
        _refuse(self, "formatting (f-string or format())", "build the string inside a task")

    def __eq__(self, other: object) -> NoReturn:  # type: ignore[override]
        _refuse(self, "comparison", "compare inside a task")

    __hash__ = object.__hash__
    __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __eq__

    def __int__(self) -> NoReturn:
        _refuse(self, "conversion to a number", "convert inside a task")

    __float__ = __index__ = __int__

    def _arith(self, *_: Any) -> NoReturn:
        _refuse(self, "arithmetic", "do the arithmetic inside a task")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _arith
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _arith
    __pow__ = __rpow__ = __neg__ = __pos__ = __abs__ = __and__ = __or__ = __xor__ = _arith
    __invert__ = __lshift__ = __rlshift__ = __matmul__ = _arith


def _workflow_prefix() -> str:
    builder = active_builder()
    return f"{builder.label}: " if builder is not None else ""


def _refuse(promise: Promise, what: str, instead: str) -> NoReturn:
    raise WorkflowDefinitionError(
        f"{_workflow_prefix()}{what} on {promise.producer} is not possible in a workflow body: "
        f"{instead}")


class Outputs(tuple):  # type: ignore[type-arg]
    """Several outputs of one call: unpack it, index it, or read ``.o0`` / ``.name``."""

    def __new__(cls, promises: dict[str, Promise], handle: NodeHandle) -> Outputs:
        self = super().__new__(cls, promises.values())
        # Instance attributes win over tuple's own methods, so an output named
        # ``count`` or ``index`` is still reachable as ``result.count``.
        self.__dict__.update(promises)
        self.__dict__["_handle"] = handle
        self.__dict__["_names"] = tuple(promises)
        return self

    def __getattr__(self, name: str) -> Promise:
        names = self.__dict__.get("_names", ())
        raise AttributeError(
            f"this call has outputs {', '.join(names)}; there is no output {name!r}")

    def __rshift__(self, other: Any) -> Any:
        return self.__dict__["_handle"] >> other

    def __bool__(self) -> NoReturn:
        raise WorkflowDefinitionError(
            f"{_workflow_prefix()}a boolean test on task outputs is not possible in a workflow "
            "body: decide inside a task instead")
