"""Sterna types: what an annotation means to the engine.

Each ``SType`` knows how to describe itself and how to check (and, for
``int`` -> ``float``, coerce) a value at run time. Plain classes take an
``isinstance`` fast path (typeguard costs ~2 us a call, too much per task);
generic containers are checked by typeguard with every item inspected; types
typeguard cannot see into (dataclass fields, table schemas, files) are
checked structurally here so a wrong value deep inside is still caught.
"""

from __future__ import annotations

import copy
import os
import sys
from typing import Any

from .files import Directory, File


class Mismatch(Exception):
    """A value failed a type check (internal; turned into ``TypeCheckError``).

    ``path`` runs from the outer value inward (``["item 3", "field 'x'"]``)
    and ``value`` is the offending inner value.
    """

    def __init__(self, reason: str, value: object, path: list[str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.value = value
        self.path = path or []


_typeguard: Any = None


def typeguard_check(value: object, annotation: object) -> None:
    """Check ``value`` against ``annotation`` with typeguard, every item included."""
    global _typeguard
    if _typeguard is None:
        import typeguard

        _typeguard = typeguard
    try:
        _typeguard.check_type(
            value, annotation,
            collection_check_strategy=_typeguard.CollectionCheckStrategy.ALL_ITEMS)
    except _typeguard.TypeCheckError as exc:
        path = list(reversed(list(exc._path)[:-1]))
        raise Mismatch(str(exc.args[0]), _walk(value, path), path) from None


def _walk(value: object, path: list[str]) -> object:
    """Follow typeguard's path elements ("item 3", "value of key 'a'") into a value."""
    import ast

    for element in path:
        try:
            if element.startswith("item "):
                value = value[int(element[5:])]  # type: ignore[index]
            elif element.startswith("value of key "):
                value = value[ast.literal_eval(element[13:])]  # type: ignore[index]
            elif element.startswith("key "):
                value = ast.literal_eval(element[4:])
                break
            else:
                break
        except (LookupError, ValueError, TypeError, SyntaxError):
            break
    return value


class SType:
    """Base of all sterna types. ``annotation`` is the Python annotation it came from."""

    deep = False  # True when typeguard alone cannot check it (fields, schemas, files)

    def __init__(self, annotation: object) -> None:
        self.annotation = annotation

    def describe(self) -> str:
        raise NotImplementedError

    def key(self) -> tuple[object, ...]:
        """Identity for equality: two types with equal keys are the same type."""
        return (type(self).__name__, self.describe())

    def check(self, value: object) -> Any:
        """Return ``value`` (possibly coerced) or raise ``Mismatch``."""
        typeguard_check(value, self.annotation)
        return value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SType) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        return f"<sterna type {self.describe()}>"


class AnyT(SType):
    def describe(self) -> str:
        return "Any"

    def check(self, value: object) -> Any:
        return value


class NoneT(SType):
    def describe(self) -> str:
        return "None"

    def check(self, value: object) -> Any:
        if value is None:
            return value
        raise Mismatch("is not None", value)


def _class_name(cls: type) -> str:
    if cls.__module__ in ("builtins", "datetime"):
        return cls.__name__
    return cls.__qualname__


class PlainT(SType):
    """A plain class checked with ``isinstance``: primitives, enums, pickled classes."""

    def __init__(self, cls: type) -> None:
        super().__init__(cls)
        self.cls = cls

    def describe(self) -> str:
        return _class_name(self.cls)

    def key(self) -> tuple[object, ...]:
        return (type(self).__name__, self.cls)

    def check(self, value: object) -> Any:
        if isinstance(value, self.cls):
            return value
        raise Mismatch(f"is not an instance of {self.describe()}", value)


class FloatT(PlainT):
    """``float``: an ``int`` is accepted and coerced, as on an int -> float edge.

    ``deep`` so that containers check their items here rather than with
    typeguard (which accepts ints for floats but leaves them ints): a
    ``list[float]`` then holds only floats, whatever fed it.
    """

    deep = True

    def __init__(self) -> None:
        super().__init__(float)

    def check(self, value: object) -> Any:
        if isinstance(value, float):
            return value
        if isinstance(value, int):
            return float(value)
        raise Mismatch("is not an instance of float", value)


class EnumT(PlainT):
    """An ``Enum`` subclass; values travel as members."""


class PickleT(PlainT):
    """Any other class: checked by ``isinstance``, stored pickled (with a warning)."""


class LiteralT(SType):
    def __init__(self, annotation: object, values: tuple[object, ...]) -> None:
        super().__init__(annotation)
        self.values = values

    def describe(self) -> str:
        return f"Literal[{', '.join(repr(v) for v in self.values)}]"

    def key(self) -> tuple[object, ...]:
        return ("LiteralT", tuple((type(v), v) for v in self.values))


class ListT(SType):
    def __init__(self, annotation: object, item: SType) -> None:
        super().__init__(annotation)
        self.item = item
        self.deep = item.deep

    def describe(self) -> str:
        return f"list[{self.item.describe()}]"

    def key(self) -> tuple[object, ...]:
        return ("ListT", self.item.key())

    def check(self, value: object) -> Any:
        if not self.deep:
            typeguard_check(value, self.annotation)
            return value
        if not isinstance(value, list):
            raise Mismatch("is not a list", value)
        out = [_at(self.item, v, f"item {i}") for i, v in enumerate(value)]
        return value if all(a is b for a, b in zip(out, value)) else out


class DictT(SType):
    """``dict[str, T]`` (a bare ``dict`` has ``Any`` keys)."""

    def __init__(self, annotation: object, key_type: SType, value: SType) -> None:
        super().__init__(annotation)
        self.key_type = key_type
        self.value = value
        self.deep = value.deep

    def describe(self) -> str:
        return f"dict[{self.key_type.describe()}, {self.value.describe()}]"

    def key(self) -> tuple[object, ...]:
        return ("DictT", self.key_type.key(), self.value.key())

    def check(self, value: object) -> Any:
        if not self.deep:
            typeguard_check(value, self.annotation)
            return value
        if not isinstance(value, dict):
            raise Mismatch("is not a dict", value)
        for k in value:
            _at(self.key_type, k, f"key {k!r}")
        out = {k: _at(self.value, v, f"value of key {k!r}") for k, v in value.items()}
        return value if all(out[k] is v for k, v in value.items()) else out


class TupleT(SType):
    """``tuple[A, B]`` or, with ``variadic``, ``tuple[A, ...]``."""

    def __init__(self, annotation: object, items: tuple[SType, ...], variadic: bool) -> None:
        super().__init__(annotation)
        self.items = items
        self.variadic = variadic
        self.deep = any(i.deep for i in items)

    def describe(self) -> str:
        if self.variadic:
            return f"tuple[{self.items[0].describe()}, ...]"
        return f"tuple[{', '.join(i.describe() for i in self.items) or '()'}]"

    def key(self) -> tuple[object, ...]:
        return ("TupleT", self.variadic, tuple(i.key() for i in self.items))

    def check(self, value: object) -> Any:
        if not self.deep:
            typeguard_check(value, self.annotation)
            return value
        if not isinstance(value, tuple):
            raise Mismatch("is not a tuple", value)
        if not self.variadic and len(value) != len(self.items):
            raise Mismatch(f"has {len(value)} items, expected {len(self.items)}", value)
        types = self.items * len(value) if self.variadic else self.items
        return tuple(_at(t, v, f"item {i}") for i, (t, v) in enumerate(zip(types, value)))


class UnionT(SType):
    """``Union[...]``, ``Optional[T]`` and ``X | Y``: the first option that accepts wins."""

    def __init__(self, annotation: object, options: tuple[SType, ...]) -> None:
        super().__init__(annotation)
        self.options = options
        self.deep = any(o.deep for o in options)

    def describe(self) -> str:
        return " | ".join(o.describe() for o in self.options)

    def key(self) -> tuple[object, ...]:
        return ("UnionT", frozenset(o.key() for o in self.options))

    def check(self, value: object) -> Any:
        failures = []
        for option in self.options:
            try:
                return option.check(value)
            except Mismatch as exc:
                failures.append((option, exc))
        others = [exc for option, exc in failures if not isinstance(option, NoneT)]
        if value is not None and len(others) == 1:
            raise others[0]  # Optional[T]: T's own mismatch says more (e.g. which item)
        raise Mismatch(f"did not match any of {self.describe()}", value)


class DataclassT(SType):
    """A dataclass; every field is checked against its own annotation."""

    deep = True

    def __init__(self, cls: type, fields: dict[str, SType]) -> None:
        super().__init__(cls)
        self.cls = cls
        self.fields = fields

    def describe(self) -> str:
        return _class_name(self.cls)

    def key(self) -> tuple[object, ...]:
        return ("DataclassT", self.cls)

    def check(self, value: object) -> Any:
        if not isinstance(value, self.cls):
            raise Mismatch(f"is not an instance of {self.describe()}", value)
        changed = {}
        for name, ftype in self.fields.items():
            current = getattr(value, name)
            checked = _at(ftype, current, f"field {name!r}")
            if checked is not current:
                changed[name] = checked
        if not changed:
            return value
        value = copy.copy(value)  # never alter the caller's object, frozen or not
        for name, checked in changed.items():
            object.__setattr__(value, name, checked)
        return value


class TableT(SType):
    """``pyarrow.Table``, optionally with a declared schema its values must contain."""

    def __init__(self, annotation: object, schema: Any | None) -> None:
        super().__init__(annotation)
        self.schema = schema
        self.deep = schema is not None

    def describe(self) -> str:
        if self.schema is None:
            return "pa.Table"
        return f"pa.Table[{schema_text(self.schema)}]"

    def key(self) -> tuple[object, ...]:
        return ("TableT", None if self.schema is None else schema_text(self.schema))

    def check(self, value: object) -> Any:
        pa = sys.modules["pyarrow"]
        if not isinstance(value, pa.Table):
            raise Mismatch("is not a pyarrow.Table", value)
        if self.schema is not None:
            problem = schema_problem(value.schema, self.schema)
            if problem:
                raise Mismatch(problem, value)
        return value


def schema_text(schema: Any) -> str:
    """``a: int64, b: string`` for a pyarrow schema."""
    return ", ".join(f"{f.name}: {f.type}{'' if f.nullable else ' not null'}" for f in schema)


def schema_problem(actual: Any, declared: Any) -> str | None:
    """Why ``actual`` does not provide every field of ``declared``, or None if it does."""
    for field in declared:
        index = actual.get_field_index(field.name)
        if index < 0:
            return f"has no column {field.name!r} (expected {field.type})"
        found = actual.field(index)
        if not found.type.equals(field.type):
            return f"has column {field.name!r} of type {found.type}, expected {field.type}"
        if found.nullable and not field.nullable:
            return f"has nullable column {field.name!r}, expected not null"
    return None


class PathT(SType):
    """``File`` or ``Directory``; a ``str``/``PathLike`` value is wrapped, and must exist."""

    deep = True

    def __init__(self, cls: type[File] | type[Directory]) -> None:
        super().__init__(cls)
        self.cls = cls

    def describe(self) -> str:
        return self.cls.__name__

    def key(self) -> tuple[object, ...]:
        return ("PathT", self.cls.__name__)

    def check(self, value: object) -> Any:
        if not isinstance(value, self.cls):
            if isinstance(value, (File, Directory)) or not isinstance(value, (str, os.PathLike)):
                raise Mismatch(f"is not a {self.describe()} (or a path)", value)
            value = self.cls(value)
        if not value.exists():
            kind = "file" if self.cls is File else "directory"
            raise Mismatch(f"names {value.path!r}, which is not an existing {kind}", value)
        return value


def _at(stype: SType, value: object, element: str) -> Any:
    """Check an inner value, prefixing its position to any mismatch path."""
    try:
        return stype.check(value)
    except Mismatch as exc:
        exc.path.insert(0, element)
        raise
