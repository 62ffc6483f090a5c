"""``@task``: a typed, configurable, independently callable unit of work.

A ``Task`` wraps a function without changing how it is called: outside a
workflow it runs directly (inputs and outputs type-checked, exceptions
raised as they are, so tasks unit-test like functions); inside a workflow
body being traced it records a node and returns promises. It keeps the
function's name, docstring and signature, and ``ParamSpec`` lets type
checkers see the original call signature.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from sterna.typesys.check import type_error
from sterna.typesys.types import Mismatch

from . import config
from .errors import SternaWarning, TaskDefinitionError
from .interface import Interface, bind_arguments, entity_name, interface_of
from .promise import active_builder
from .taskconfig import TaskConfig, build_config, check_parameter_names

if TYPE_CHECKING:
    from .graph import Graph

P = ParamSpec("P")
R = TypeVar("R")


class Task(Generic[P, R]):
    """A task definition: function, interface, configuration and name."""

    def __init__(self, fn: Callable[P, R], params: dict[str, Any]) -> None:
        if not inspect.isfunction(fn):
            raise TaskDefinitionError(f"@task must decorate a function (def), got {fn!r}")
        check_parameter_names(params)
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name: str = entity_name(params, fn, "@task")
        self.interface: Interface = interface_of(fn, kind="task")
        self.config: TaskConfig = build_config(
            params, label=self.name, inputs=tuple(self.interface.inputs))
        self.label = f"task {self.name!r}"
        self.node_name = fn.__name__  # node ids in a workflow start with it
        self._inputs = tuple((p.name, p.stype) for p in self.interface.inputs.values())
        self._outputs = tuple(self.interface.outputs.items())
        self._graph: Graph | None = None
        self._warned_deprecated = False

    # -- identity ---------------------------------------------------------
    @property
    def project(self) -> str:
        """Project the task registers in (from configuration, read when asked)."""
        return config.setting("project")

    @property
    def domain(self) -> str:
        """Domain the task registers in (from configuration, read when asked)."""
        return config.setting("domain")

    @property
    def id(self) -> str:
        """Fully qualified name: ``project/domain/name``."""
        return f"{self.project}/{self.domain}/{self.name}"

    def __repr__(self) -> str:
        return f"<task {self.name}{self.__signature_text()}>"

    def __signature_text(self) -> str:
        outs = ", ".join(f"{n}: {t.describe()}" for n, t in self._outputs) or "None"
        return f"({self.interface.describe_inputs()}) -> {outs}"

    def __get__(self, obj: Any, objtype: Any = None) -> Task[P, R]:
        # A task stored on a class stays a plain task (like a staticmethod); having
        # __get__ also makes pydoc document it as a routine, with its signature.
        return self

    # -- calling ----------------------------------------------------------
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        builder = active_builder()
        if builder is not None:
            return builder.add_task_call(self, args, kwargs)  # type: ignore[no-any-return]
        self.warn_if_deprecated()
        inputs = bind_arguments(self.interface, args, kwargs, owner=self.label)
        outputs = self.run_checked(inputs)
        return self.interface.pack(outputs)  # type: ignore[no-any-return]

    def run_checked(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Check inputs, call the function once, check and return outputs by name."""
        return self.check_outputs(self.fn(**self.check_inputs(inputs)))

    def check_inputs(self, inputs: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
        """Type-check (and coerce) every input but ``skip``; returns the dict to call with."""
        checks = self._inputs if not skip else [(n, t) for n, t in self._inputs if n not in skip]
        for name, stype in checks:
            value = inputs[name]
            try:
                checked = stype.check(value)
            except Mismatch as exc:
                raise type_error(stype, value, exc, owner=self.label, role="input",
                                 name=name) from None
            if checked is not value:
                inputs[name] = checked
        return inputs

    def check_outputs(self, value: Any) -> dict[str, Any]:
        """Split a return value into named outputs and type-check each."""
        outputs = self.interface.unpack(value, owner=self.label)
        for name, stype in self._outputs:
            out = outputs[name]
            try:
                checked = stype.check(out)
            except Mismatch as exc:
                raise type_error(stype, out, exc, owner=self.label, role="output",
                                 name=name) from None
            if checked is not out:
                outputs[name] = checked
        return outputs

    def warn_if_deprecated(self) -> None:
        """Warn once per task when it is deprecated (flytekit's ``deprecated=``)."""
        if self.config.deprecated and not self._warned_deprecated:
            self._warned_deprecated = True
            warnings.warn(f"{self.label} is deprecated: {self.config.deprecated}",
                          SternaWarning, stacklevel=3)

    def as_graph(self) -> Graph:
        """A one-node graph running this task, so ``sterna.run(task, ...)`` uses the engine."""
        if self._graph is None:
            from .graph import Graph, InputRef, Node, NodeRef

            node_id = self.node_name
            node = Node(node_id, self, {n: InputRef(n) for n in self.interface.inputs})
            outputs = {n: NodeRef(node_id, n) for n in self.interface.outputs}
            self._graph = Graph.build(self.name, self.interface, {node_id: node}, outputs,
                                      kind="task")
        return self._graph


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(
    *, name: str | None = ..., cache: bool = ..., cache_version: str = ...,
    cache_ignore_input_vars: tuple[str, ...] = ..., cache_serialize: bool = ...,
    retries: int = ..., timeout: Any = ..., requests: Any = ..., limits: Any = ...,
    resources: Any = ..., accelerator: Any = ..., environment: dict[str, str] | None = ...,
    container_image: str | None = ..., task_config: Any = ..., deprecated: str = ...,
    docs: Any = ...,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(fn: Any = None, /, **params: Any) -> Any:
    """Make a function a task: ``@task`` or ``@task(cache=True, retries=2, ...)``.

    Parameters follow flytekit's ``@task``; see ``TaskConfig`` for their meaning.
    """
    if fn is not None:
        return Task(fn, params)
    check_parameter_names(params)
    return lambda f: Task(f, params)
