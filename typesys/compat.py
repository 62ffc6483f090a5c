"""Static compatibility of workflow edges: can an output of type A feed an input of type B?

Checked when a workflow is defined, so a wiring mistake fails before any task
runs. The rules are those of a careful type checker, plus two conveniences
the engine makes good on at run time: ``int`` feeds ``float`` (coerced), and a
table without a declared schema feeds a table with one (checked on the value).
"""

from __future__ import annotations

from .types import (
    AnyT,
    DataclassT,
    DictT,
    FloatT,
    ListT,
    LiteralT,
    NoneT,
    PathT,
    PlainT,
    SType,
    TableT,
    TupleT,
    UnionT,
    schema_problem,
)


def assignable(src: SType, dst: SType) -> bool:
    """Whether every value of ``src`` is an acceptable value for ``dst``."""
    if isinstance(src, AnyT) or isinstance(dst, AnyT):
        return True
    if isinstance(src, LiteralT):
        return all(_literal_value_assignable(v, dst) for v in src.values)
    if isinstance(src, UnionT):
        return all(assignable(option, dst) for option in src.options)
    if isinstance(dst, UnionT):
        return any(assignable(src, option) for option in dst.options)
    return _same_kind_assignable(src, dst)


def _literal_value_assignable(value: object, dst: SType) -> bool:
    """Whether one literal value fits ``dst`` (each value may pick its own Union option)."""
    if isinstance(dst, AnyT):
        return True
    if isinstance(dst, UnionT):
        return any(_literal_value_assignable(value, option) for option in dst.options)
    if isinstance(dst, LiteralT):
        return any(value == w and type(value) is type(w) for w in dst.values)
    if isinstance(dst, FloatT):
        return isinstance(value, (int, float))
    if isinstance(dst, PlainT):
        return isinstance(value, dst.cls)
    if isinstance(dst, NoneT):
        return value is None
    return False


def _same_kind_assignable(src: SType, dst: SType) -> bool:
    if isinstance(src, NoneT) or isinstance(dst, NoneT):
        return isinstance(src, NoneT) and isinstance(dst, NoneT)
    if isinstance(dst, FloatT) and isinstance(src, PlainT):
        return issubclass(src.cls, (int, float))
    if isinstance(src, PlainT) and isinstance(dst, PlainT):
        return issubclass(src.cls, dst.cls)
    if isinstance(src, DataclassT) and isinstance(dst, DataclassT):
        return issubclass(src.cls, dst.cls)
    if isinstance(src, ListT) and isinstance(dst, ListT):
        return assignable(src.item, dst.item)
    if isinstance(src, DictT) and isinstance(dst, DictT):
        return assignable(src.key_type, dst.key_type) and assignable(src.value, dst.value)
    if isinstance(src, TupleT) and isinstance(dst, TupleT):
        return _tuple_assignable(src, dst)
    if isinstance(src, TableT) and isinstance(dst, TableT):
        if dst.schema is None or src.schema is None:
            return True
        return schema_problem(src.schema, dst.schema) is None
    if isinstance(src, PathT) and isinstance(dst, PathT):
        return src.cls is dst.cls
    return False


def _tuple_assignable(src: TupleT, dst: TupleT) -> bool:
    if dst.variadic:
        return all(assignable(item, dst.items[0]) for item in src.items)
    if src.variadic or len(src.items) != len(dst.items):
        return False
    return all(assignable(a, b) for a, b in zip(src.items, dst.items))
