"""Map Python annotations to sterna types.

``resolve(annotation)`` is memoised: tasks resolve their interface once, at
decoration time. pyarrow is never imported here; an annotation can only be
``pa.Table`` if the user already imported pyarrow, so ``sys.modules`` tells.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import sys
import types
import typing
import warnings
from typing import Any

from sterna.core.errors import SternaWarning, UnsupportedTypeError

from .files import Directory, File
from .types import (
    AnyT,
    DataclassT,
    DictT,
    EnumT,
    FloatT,
    ListT,
    LiteralT,
    NoneT,
    PathT,
    PickleT,
    PlainT,
    SType,
    TableT,
    TupleT,
    UnionT,
)

_PLAIN = (int, str, bool, bytes, datetime.datetime, datetime.date, datetime.timedelta)
_cache: dict[tuple[object, str], SType] = {}
_warned: set[type] = set()
_resolving: set[type] = set()


def resolve(annotation: object) -> SType:
    """Return the sterna type of an annotation; raise ``UnsupportedTypeError`` if none."""
    # typing deems Union[int, str] == Union[str, int], but option order decides which
    # option takes a value first, so the key keeps the spelling too.
    key = (annotation, repr(annotation))
    try:
        return _cache[key]
    except KeyError:
        pass
    except TypeError:  # unhashable annotation (e.g. Annotated with a list)
        return _resolve(annotation)
    stype = _resolve(annotation)
    _cache[key] = stype
    return stype


def _resolve(annotation: object) -> SType:
    if annotation is Any or annotation is typing.Any:
        return AnyT(annotation)
    if annotation is None or annotation is type(None):
        return NoneT(annotation)
    if isinstance(annotation, (str, typing.ForwardRef)):
        raise UnsupportedTypeError(
            f"unresolved forward reference {annotation!r}: define or import the type "
            "in the module so its name can be resolved")
    origin = typing.get_origin(annotation)
    if origin is not None:
        return _resolve_generic(annotation, origin, typing.get_args(annotation))
    if annotation is float:
        return FloatT()
    if annotation in _PLAIN:
        return PlainT(annotation)  # type: ignore[arg-type]
    if annotation is list:
        return ListT(annotation, AnyT(Any))
    if annotation is dict:
        return DictT(annotation, AnyT(Any), AnyT(Any))
    if annotation is tuple:
        return TupleT(annotation, (AnyT(Any),), variadic=True)
    if isinstance(annotation, type):
        return _resolve_class(annotation)
    raise UnsupportedTypeError(f"{annotation!r} is not a type sterna can represent")


def _resolve_class(cls: type) -> SType:
    if cls is File or cls is Directory:
        return PathT(cls)
    if issubclass(cls, enum.Enum):
        return EnumT(cls)
    if dataclasses.is_dataclass(cls):
        return _resolve_dataclass(cls)
    pa = sys.modules.get("pyarrow")
    if pa is not None and cls is pa.Table:
        return TableT(cls, None)
    if cls not in _warned:
        _warned.add(cls)
        warnings.warn(
            f"type {cls.__module__}.{cls.__qualname__} has no sterna type; its values will be "
            "pickled (not portable across Python versions, and compared by pickled bytes)",
            SternaWarning, stacklevel=4)
    return PickleT(cls)


def _resolve_dataclass(cls: type) -> SType:
    if cls in _resolving:
        raise UnsupportedTypeError(f"dataclass {cls.__qualname__} refers to itself")
    _resolving.add(cls)
    try:
        try:
            hints = typing.get_type_hints(cls, include_extras=True)
        except Exception as exc:  # NameError for a forward reference nobody defined
            raise UnsupportedTypeError(
                f"dataclass {cls.__qualname__}: cannot resolve its field annotations: {exc}"
            ) from None
        fields = {}
        for field in dataclasses.fields(cls):
            try:
                fields[field.name] = resolve(hints[field.name])
            except UnsupportedTypeError as exc:
                raise UnsupportedTypeError(
                    f"dataclass {cls.__qualname__} field {field.name!r}: {exc}") from None
        return DataclassT(cls, fields)
    finally:
        _resolving.discard(cls)


def _resolve_generic(annotation: object, origin: object, args: tuple[Any, ...]) -> SType:
    if origin is typing.Annotated:
        return _resolve_annotated(annotation, args)
    if origin is typing.Union or origin is types.UnionType:
        return UnionT(annotation, tuple(resolve(a) for a in args))
    if origin is typing.Literal:
        return LiteralT(annotation, args)
    if origin is list:
        return ListT(annotation, resolve(args[0]) if args else AnyT(Any))
    if origin is dict:
        key = resolve(args[0]) if args else AnyT(Any)
        if not (isinstance(key, AnyT) or (isinstance(key, PlainT) and key.cls is str)):
            raise UnsupportedTypeError(
                f"{annotation!r}: dict keys must be str (values travel as JSON-like maps); "
                "use list[tuple[K, V]] for other keys")
        return DictT(annotation, key, resolve(args[1]) if len(args) > 1 else AnyT(Any))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return TupleT(annotation, (resolve(args[0]),), variadic=True)
        if args == ((),):
            return TupleT(annotation, (), variadic=False)
        return TupleT(annotation, tuple(resolve(a) for a in args), variadic=False)
    raise UnsupportedTypeError(
        f"{annotation!r} is not supported; use list, dict[str, T], tuple, Optional, Union, "
        "Literal, a dataclass, pa.Table, File or Directory")


def _resolve_annotated(annotation: object, args: tuple[Any, ...]) -> SType:
    base, *metadata = args
    pa = sys.modules.get("pyarrow")
    if pa is not None and base is pa.Table:
        schemas = [m for m in metadata if isinstance(m, pa.Schema)]
        if len(schemas) > 1:
            raise UnsupportedTypeError(f"{annotation!r}: give at most one pa.schema")
        return TableT(annotation, schemas[0] if schemas else None)
    return resolve(base)
