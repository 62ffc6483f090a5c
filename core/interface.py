"""A function's typed interface: named inputs (with defaults) and named outputs.

Built once at decoration time from the annotations, so every later step
(tracing, edge checks, run-time checks, the CLI) works from resolved sterna
types instead of re-reading annotations.
"""

from __future__ import annotations

import inspect
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sterna.typesys.check import check_value
from sterna.typesys.resolve import resolve
from sterna.typesys.types import SType, TupleT

from .errors import (
    DefinitionError,
    InputError,
    TaskDefinitionError,
    TypeCheckError,
    UnsupportedTypeError,
    WorkflowDefinitionError,
)


class _NoDefault:
    def __repr__(self) -> str:
        return "<required>"


NO_DEFAULT: Any = _NoDefault()


@dataclass(frozen=True)
class Param:
    """One input: its name, sterna type, and default (``NO_DEFAULT`` if required)."""

    name: str
    stype: SType
    default: Any = NO_DEFAULT

    @property
    def required(self) -> bool:
        return self.default is NO_DEFAULT


@dataclass(frozen=True)
class Interface:
    """Inputs and outputs of a task or workflow.

    ``output_kind`` says how outputs map to a Python return value: ``none``,
    ``single`` (output ``o0``), ``tuple`` (``o0``, ``o1``, ...) or
    ``namedtuple`` (the NamedTuple's field names).
    """

    inputs: dict[str, Param]
    outputs: dict[str, SType]
    output_kind: str
    namedtuple: type | None = None

    def pack(self, outputs: dict[str, Any]) -> Any:
        """Outputs by name -> the value a plain call of the function returns."""
        kind = self.output_kind
        if kind == "single":
            return outputs["o0"]
        if kind == "none":
            return None
        values = [outputs[name] for name in self.outputs]
        if kind == "namedtuple":
            assert self.namedtuple is not None
            return self.namedtuple(*values)
        return tuple(values)

    def unpack(self, value: Any, *, owner: str) -> dict[str, Any]:
        """A returned value -> outputs by name, checking the shape (not yet the types)."""
        kind = self.output_kind
        if kind == "single":
            return {"o0": value}
        if kind == "none":
            if value is not None:
                raise TypeCheckError(
                    f"{owner} returned {type(value).__name__} but declares no outputs; "
                    "annotate its return type", task=owner, argument="return",
                    expected="None", got=type(value).__name__)
            return {}
        names = list(self.outputs)
        if not isinstance(value, tuple) or len(value) != len(names):
            got = f"{len(value)}-tuple" if isinstance(value, tuple) else type(value).__name__
            raise TypeCheckError(
                f"{owner} must return a tuple of {len(names)} values ({', '.join(names)}), "
                f"got {got}", task=owner, argument="return",
                expected=f"{len(names)}-tuple", got=got)
        return dict(zip(names, value))

    def describe_inputs(self) -> str:
        return ", ".join(f"{p.name}: {p.stype.describe()}" for p in self.inputs.values())


def function_label(fn: Callable[..., Any]) -> str:
    """``module.qualname`` of a function, for messages."""
    return f"{default_module(fn)}.{fn.__qualname__}"


def default_module(fn: Callable[..., Any]) -> str:
    """The function's module name; for a script run as ``__main__``, its dotted file name.

    A file run as a script and the same file loaded by ``sterna run`` must give
    its tasks the same names, or their cache entries and versions would split.
    """
    module = fn.__module__
    if module != "__main__":
        return module
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return module_name_for(Path(main_file)) if main_file else module


def entity_name(params: dict[str, Any], fn: Callable[..., Any], decorator: str) -> str:
    """The ``name=`` given to a decorator, or ``module.function``."""
    if "name" not in params or params["name"] is None:
        return f"{default_module(fn)}.{fn.__name__}"
    name = params["name"]
    if not isinstance(name, str) or not name.strip():
        error = TaskDefinitionError if decorator == "@task" else WorkflowDefinitionError
        raise error(f"{decorator} {function_label(fn)!r}: name must be a non-empty string, "
                    f"got {name!r}")
    return name


def module_name_for(path: Path) -> str:
    """Dotted module name of a file, walking up through packages (``__init__.py``)."""
    path = path.resolve()
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").exists() and folder.parent != folder:
        parts.append(folder.name)
        folder = folder.parent
    return ".".join(reversed(parts))


def interface_of(fn: Callable[..., Any], *, kind: str = "task") -> Interface:
    """Build the interface of a task or workflow function, validating every parameter."""
    label = f"{kind} function {function_label(fn)!r}"
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:  # NameError for an unresolvable forward reference, mostly
        raise _error(label)(f"{label}: cannot resolve its annotations: {exc}") from None
    inputs = {}
    for param in inspect.signature(fn).parameters.values():
        inputs[param.name] = _param(param, hints, label)
    outputs, output_kind, namedtuple = _outputs(hints.get("return", None), "return" in hints, label)
    return Interface(inputs, outputs, output_kind, namedtuple)


def _error(label: str) -> type[DefinitionError]:
    return WorkflowDefinitionError if label.startswith("workflow") else TaskDefinitionError


def _param(param: inspect.Parameter, hints: dict[str, Any], label: str) -> Param:
    where = f"{label} parameter {param.name!r}"
    if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
        star = "*" if param.kind is param.VAR_POSITIONAL else "**"
        raise _error(where)(
            f"{where}: {star}{param.name} is not allowed; every input needs a name and a type")
    if param.name not in hints:
        raise _error(where)(f"{where} has no type annotation; annotate it, e.g. "
                                  f"'{param.name}: int'")
    stype = _resolve(hints[param.name], where)
    if param.default is param.empty:
        return Param(param.name, stype)
    _check_default(param, stype, where)
    return Param(param.name, stype, param.default)


def _check_default(param: inspect.Parameter, stype: SType, where: str) -> None:
    default = param.default
    try:
        hash(default)
    except TypeError:
        raise _error(where)(
            f"{where} has a mutable default {default!r} ({type(default).__name__}); it would be "
            "shared between calls. Use an immutable default (a tuple, None with Optional[...])"
        ) from None
    try:
        check_value(stype, default, owner=where.rsplit(" parameter", 1)[0], role="default for",
                    name=param.name)
    except TypeCheckError as exc:
        raise _error(where)(str(exc)) from None


def _resolve(annotation: Any, where: str) -> SType:
    try:
        return resolve(annotation)
    except UnsupportedTypeError as exc:
        raise UnsupportedTypeError(f"{where}: {exc}") from None


def _outputs(
    annotation: Any, annotated: bool, label: str,
) -> tuple[dict[str, SType], str, type | None]:
    if not annotated or annotation is None or annotation is type(None):
        return {}, "none", None
    where = f"{label} return annotation"
    if isinstance(annotation, type) and issubclass(annotation, tuple) and hasattr(
            annotation, "_fields"):
        hints = typing.get_type_hints(annotation, include_extras=True)
        missing = [f for f in annotation._fields if f not in hints]
        if missing:
            raise _error(where)(f"{where}: NamedTuple field {missing[0]!r} has no type")
        outputs = {f: _resolve(hints[f], f"{where} field {f!r}") for f in annotation._fields}
        return outputs, "namedtuple", annotation
    stype = _resolve(annotation, where)
    if isinstance(stype, TupleT) and not stype.variadic and stype.items:
        return {f"o{i}": item for i, item in enumerate(stype.items)}, "tuple", None
    return {"o0": stype}, "single", None


def bind_arguments(
    interface: Interface, args: tuple[Any, ...], kwargs: dict[str, Any], *, owner: str,
    fill_defaults: bool = True,
) -> dict[str, Any]:
    """Map positional and keyword arguments to input names, like ``Signature.bind``.

    Hand-rolled because it runs on every direct task call, where
    ``inspect.Signature.bind`` would cost more than the rest of the call.
    """
    inputs = interface.inputs
    if args:
        names = list(inputs)
        if len(args) > len(names):
            raise InputError(
                f"{owner} takes {len(names)} inputs ({', '.join(names)}) but "
                f"{len(args)} positional arguments were given")
        bound = dict(zip(names, args))
        for name in kwargs:
            if name in bound:
                raise InputError(f"{owner} got input {name!r} twice (positional and keyword)")
        bound.update(kwargs)
    else:
        bound = dict(kwargs)
    if len(bound) != len(inputs) or any(name not in inputs for name in bound):
        _fill(interface, bound, owner, fill_defaults)
    return bound


def _fill(interface: Interface, bound: dict[str, Any], owner: str, fill_defaults: bool) -> None:
    unknown = [name for name in bound if name not in interface.inputs]
    if unknown:
        raise InputError(
            f"{owner} has no input {unknown[0]!r}; its inputs are: "
            f"{interface.describe_inputs() or '(none)'}")
    for param in interface.inputs.values():
        if param.name in bound:
            continue
        if param.required:
            raise InputError(
                f"{owner} is missing required input {param.name!r} "
                f"({param.stype.describe()})")
        if fill_defaults:
            bound[param.name] = param.default
