"""Decoding the typed JSON form back into values of their sterna type.

The inverse of the encoders in ``codecs``; see that module for the format.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import pickle
import zoneinfo
from typing import Any

from sterna.typesys.convert import from_builtin
from sterna.typesys.types import (
    AnyT,
    DataclassT,
    DictT,
    EnumT,
    ListT,
    LiteralT,
    NoneT,
    PathT,
    PlainT,
    SType,
    TableT,
    TupleT,
    UnionT,
)

from .codec_base import (
    _UNSET,
    _at,
    _expect,
    _Fail,
    _fast_cls,
    _handler,
    _short,
)

# -- decoding -----------------------------------------------------------------------------------

def _parse(stype: SType, data: Any) -> Any:
    return _handler(_DECODERS, stype)(stype, data)


def _tag(data: Any, name: str, size: int = 1) -> Any:
    """The payload of a tag object ``{name: payload, ...}`` of ``size`` keys, else ``_UNSET``."""
    if type(data) is dict and len(data) == size and name in data:
        return data[name]
    return _UNSET


def _unb64(text: Any) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (TypeError, ValueError) as exc:
        raise _Fail(f"bad base64 payload ({exc})") from None


def _unpickle(payload: Any, cls: type = object) -> Any:
    data = _unb64(payload)
    try:
        value = pickle.loads(data)
    except Exception as exc:
        raise _Fail(f"cannot unpickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(value, cls):
        raise _Fail(f"unpickled a value of class {type(value).__qualname__}, expected "
                    f"{cls.__qualname__}")
    return value


def _delegate(stype: SType, data: Any) -> Any:
    """``typesys.convert.from_builtin``, for the cases where it is exact."""
    try:
        return from_builtin(stype, data)
    except ValueError as exc:
        raise _Fail(str(exc)) from None


def _dec_any(stype: AnyT, data: Any) -> Any:
    if (payload := _tag(data, "$pickle")) is not _UNSET:
        return _unpickle(payload)
    payload = _tag(data, "$any")
    return data if payload is _UNSET else payload


def _dec_plain(stype: PlainT, data: Any) -> Any:
    cls = stype.cls
    if (payload := _tag(data, "$pickle")) is not _UNSET:
        return _unpickle(payload, cls)
    if cls is int and isinstance(data, bool):
        return data
    if cls is bytes:
        if (payload := _tag(data, "$bytes")) is _UNSET:
            raise _Fail(f"expected a $bytes object, got {_short(data)}")
        return _unb64(payload)
    if cls is datetime.timedelta:
        parts = _tag(data, "$td")
        if not (type(parts) is list and len(parts) == 3 and all(type(p) is int for p in parts)):
            raise _Fail(f"expected a $td object, got {_short(data)}")
        return datetime.timedelta(days=parts[0], seconds=parts[1], microseconds=parts[2])
    if cls is datetime.datetime or cls is datetime.date:
        return _dec_datetime(cls, data)
    return _delegate(stype, data)


def _dec_datetime(cls: type, data: Any) -> Any:
    if (iso := _tag(data, "$dt", 3)) is not _UNSET:
        try:
            return datetime.datetime.fromisoformat(iso).replace(
                tzinfo=zoneinfo.ZoneInfo(data["tz"]), fold=data["fold"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _Fail(f"bad $dt object {_short(data)} ({exc})") from None
    if not isinstance(data, str):
        raise _Fail(f"expected an ISO {cls.__name__}, got {_short(data)}")
    if "T" in data:  # a datetime (possibly in a date slot)
        cls = datetime.datetime
    try:
        return cls.fromisoformat(data)
    except ValueError as exc:
        raise _Fail(str(exc)) from None


def _dec_enum(stype: EnumT, data: Any) -> Any:
    if (name := _tag(data, "$enum")) is not _UNSET:
        try:
            return stype.cls[name]
        except (KeyError, TypeError):
            raise _Fail(f"{stype.describe()} has no member {name!r}") from None
    try:
        return stype.cls(data)
    except (ValueError, TypeError):
        raise _Fail(f"{stype.describe()} has no member of value {_short(data)}") from None


def _dec_literal(stype: LiteralT, data: Any) -> Any:
    if (index := _tag(data, "$lit")) is not _UNSET:
        if type(index) is int and 0 <= index < len(stype.values):
            return stype.values[index]
        raise _Fail(f"bad $lit index {index!r}")
    for literal in stype.values:
        if type(literal) is type(data) and literal == data:
            return literal
    raise _Fail(f"{_short(data)} is not one of {stype.describe()}")


def _dec_list(stype: ListT, data: Any) -> list[Any]:
    _expect(data, list, "a list")
    fast = _fast_cls(stype.item)
    if fast is not None and all(type(v) is fast for v in data):
        return list(data)
    return [_at("item %d", i, _parse, stype.item, v) for i, v in enumerate(data)]


def _dec_tuple(stype: TupleT, data: Any) -> tuple[Any, ...]:
    _expect(data, list, "a list")
    if not stype.variadic and len(data) != len(stype.items):
        raise _Fail(f"has {len(data)} items, expected {len(stype.items)}")
    types = stype.items * len(data) if stype.variadic else stype.items
    return tuple(_at("item %d", i, _parse, t, v) for i, (t, v) in enumerate(zip(types, data)))


def _dec_dict(stype: DictT, data: Any) -> dict[Any, Any]:
    _expect(data, dict, "an object")
    pairs = _tag(data, "$items")
    if pairs is _UNSET:
        fast = _fast_cls(stype.value)
        if fast is not None and all(type(v) is fast for v in data.values()):
            return dict(data)
        pairs = data.items()
    elif not (type(pairs) is list and all(type(p) is list and len(p) == 2 for p in pairs)):
        raise _Fail("bad $items pairs")
    try:
        return {_at("key %r", k, _parse, stype.key_type, k):
                _at("value of key %r", k, _parse, stype.value, v) for k, v in pairs}
    except TypeError as exc:  # an unhashable key: not data this module wrote
        raise _Fail(f"bad $items key ({exc})") from None


def _dec_union(stype: UnionT, data: Any) -> Any:
    index = _tag(data, "$u", 2)
    if not (type(index) is int and 0 <= index < len(stype.options) and "v" in data):
        raise _Fail(f"expected a $u object naming one of {len(stype.options)} options, "
                    f"got {_short(data)}")
    option = stype.options[index]
    return _at("option %s", option.describe(), _parse, option, data["v"])


def _dec_dataclass(stype: DataclassT, data: Any) -> Any:
    if (payload := _tag(data, "$pickle")) is not _UNSET:
        return _unpickle(payload, stype.cls)
    _expect(data, dict, "an object")
    unknown = [k for k in data if k not in stype.fields]
    missing = [k for k in stype.fields if k not in data]
    if unknown or missing:
        problem = f"no field {unknown[0]!r}" if unknown else f"a missing field {missing[0]!r}"
        raise _Fail(f"{stype.describe()} has {problem}")
    values = {n: _at("field %r", n, _parse, t, data[n]) for n, t in stype.fields.items()}
    return _restore(stype.cls, values)


def _restore(cls: type, values: dict[str, Any]) -> Any:
    """Rebuild a dataclass with exactly these field values.

    ``__init__`` runs so that attributes ``__post_init__`` derives exist again;
    the fields are then set to the stored values, undoing any transformation,
    so the result equals what was stored. A class whose ``__init__`` cannot
    rebuild it (a required ``InitVar``, a check that no longer passes) is
    restored as pickle would do it: fields only.
    """
    init = {f.name: values[f.name] for f in dataclasses.fields(cls) if f.init}
    try:
        obj = cls(**init)
    except Exception:
        obj = cls.__new__(cls)
    for name, value in values.items():
        object.__setattr__(obj, name, value)
    return obj


def _dec_table(stype: TableT, data: Any) -> Any:
    if (payload := _tag(data, "$arrow")) is _UNSET:
        raise _Fail(f"expected an $arrow object, got {_short(data)}")
    import pyarrow as pa

    try:
        return pa.ipc.open_stream(pa.py_buffer(_unb64(payload))).read_all()
    except pa.ArrowException as exc:
        raise _Fail(f"bad Arrow payload ({exc})") from None


_DECODERS: dict[type, Any] = {
    AnyT: _dec_any, NoneT: _delegate, PlainT: _dec_plain, EnumT: _dec_enum,
    LiteralT: _dec_literal, ListT: _dec_list, TupleT: _dec_tuple, DictT: _dec_dict,
    UnionT: _dec_union, DataclassT: _dec_dataclass, TableT: _dec_table, PathT: _delegate,
}

