"""Build typed values from JSON-like data and from text (the CLI's inputs).

``from_builtin(stype, data)`` turns what ``json.loads`` returns into the
value an annotation asks for: nested dataclasses, enums, dates, tuples.
``from_text(stype, text)`` parses one command-line argument. Both raise
``ValueError`` with a message that says where in the value the problem is.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import sys
from pathlib import Path
from typing import Any

from .types import (
    AnyT,
    DataclassT,
    DictT,
    EnumT,
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

_DURATION = re.compile(r"(?P<n>\d+(?:\.\d*)?)\s*(?P<unit>ms|d|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_NONE_WORDS = ("none", "null")


def from_text(stype: SType, text: str) -> Any:
    """Parse one command-line value by its sterna type."""
    if isinstance(stype, PlainT) and stype.cls is str:
        return text
    if isinstance(stype, NoneT):
        if text.lower() in _NONE_WORDS:
            return None
        raise ValueError(f"expected 'none', got {text!r}")
    if isinstance(stype, UnionT):
        return _union_from_text(stype, text)
    if isinstance(stype, LiteralT):
        for value in stype.values:
            if str(value) == text:
                return value
        raise ValueError(f"expected one of {', '.join(map(str, stype.values))}, got {text!r}")
    if isinstance(stype, TableT):
        return read_table(text)
    if isinstance(stype, PathT):
        return stype.cls(text)
    if isinstance(stype, EnumT):
        return _enum(stype.cls, text)
    if isinstance(stype, PlainT):
        return _plain_from_text(stype.cls, text)
    if isinstance(stype, AnyT):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"expected JSON for {stype.describe()}: {exc}") from None
    return from_builtin(stype, data)


def _union_from_text(stype: UnionT, text: str) -> Any:
    options = sorted(stype.options, key=lambda o: isinstance(o, PlainT) and o.cls is str)
    for option in options:
        try:
            return from_text(option, text)
        except ValueError:
            continue
    raise ValueError(f"expected {stype.describe()}, got {text!r}")


def _plain_from_text(cls: type, text: str) -> Any:
    if cls is bool:
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes", "y", "on"):
            return True
        if lowered in ("false", "0", "no", "n", "off"):
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    if cls in (int, float, datetime.datetime, datetime.date, datetime.timedelta, bytes):
        return _scalar(cls, text)
    raise ValueError(f"values of type {cls.__qualname__} cannot be given as text")


def _scalar(cls: type, value: Any) -> Any:
    try:
        if cls is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if cls is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if cls is datetime.datetime:
            return datetime.datetime.fromisoformat(value)
        if cls is datetime.date:
            return datetime.date.fromisoformat(value)
        if cls is datetime.timedelta:
            return parse_duration(value)
        if cls is bytes:
            return value.encode("utf-8") if isinstance(value, str) else bytes(value)
    except (TypeError, ValueError, OverflowError):
        pass
    raise ValueError(f"expected {_EXAMPLES.get(cls, cls.__name__)}, got {value!r}")


_EXAMPLES = {
    int: "an integer", float: "a number",
    datetime.datetime: "an ISO date-time such as 2026-01-31T12:00:00",
    datetime.date: "an ISO date such as 2026-01-31",
    datetime.timedelta: "a duration such as 90, 1.5, 90s, 1h30m or 2d",
}


def parse_duration(value: Any) -> datetime.timedelta:
    """Seconds (``90``, ``1.5``) or units (``90s``, ``1h30m``, ``2d``, ``250ms``)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _seconds(value, value)
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        parts = list(_DURATION.finditer(text))
        spelled = "".join(m.group(0) for m in parts).replace(" ", "")
        if not parts or spelled != text.replace(" ", ""):
            raise ValueError(f"not a duration: {value!r}") from None
        seconds = sum(float(m["n"]) * _UNITS[m["unit"]] for m in parts)
    return _seconds(seconds, value)


def _seconds(seconds: float, value: Any) -> datetime.timedelta:
    try:
        return datetime.timedelta(seconds=seconds)
    except (OverflowError, ValueError):
        raise ValueError(f"not a duration: {value!r} (out of range)") from None


def _enum(cls: Any, value: Any) -> Any:
    for member in cls:
        if value == member.name or _same(value, member.value) or (
                isinstance(value, str) and str(member.value) == value):
            return member
    names = ", ".join(m.name for m in cls)
    raise ValueError(f"expected one of {names} ({cls.__qualname__}), got {value!r}")


def read_table(path: str) -> Any:
    """Read a ``.parquet``, ``.csv``, ``.arrow``/``.feather`` or ``.ipc`` file as a pa.Table."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"no such file: {path!r}")
    suffix = file.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(file)
    if suffix == ".csv":
        import pyarrow.csv as pcsv

        return pcsv.read_csv(file)
    if suffix in (".arrow", ".feather", ".ipc"):
        import pyarrow.feather as feather

        return feather.read_table(file)
    raise ValueError(f"expected a .parquet, .csv or .arrow file for a table, got {path!r}")


def from_builtin(stype: SType, data: Any, where: str = "value") -> Any:
    """Convert JSON-like data (dicts, lists, strings, numbers) to a typed value."""
    if isinstance(stype, AnyT):
        return data
    if isinstance(stype, NoneT):
        if data is None:
            return None
        raise ValueError(f"{where}: expected null, got {data!r}")
    if isinstance(stype, UnionT):
        for option in stype.options:
            try:
                return from_builtin(option, data, where)
            except ValueError:
                continue
        raise ValueError(f"{where}: expected {stype.describe()}, got {data!r}")
    if isinstance(stype, ListT):
        return [from_builtin(stype.item, v, f"{where}[{i}]")
                for i, v in enumerate(_expect(data, list, where))]
    if isinstance(stype, DictT):
        return {k: from_builtin(stype.value, v, f"{where}[{k!r}]")
                for k, v in _expect(data, dict, where).items()}
    if isinstance(stype, TupleT):
        items = _expect(data, (list, tuple), where)
        types = stype.items * len(items) if stype.variadic else stype.items
        if len(types) != len(items):
            raise ValueError(f"{where}: expected {len(types)} items, got {len(items)}")
        return tuple(from_builtin(t, v, f"{where}[{i}]")
                     for i, (t, v) in enumerate(zip(types, items)))
    if isinstance(stype, DataclassT):
        return _dataclass(stype, _expect(data, dict, where), where)
    return _leaf_from_builtin(stype, data, where)


def _leaf_from_builtin(stype: SType, data: Any, where: str) -> Any:
    try:
        if isinstance(stype, LiteralT):
            for value in stype.values:
                if _same(data, value):
                    return value
            raise ValueError(f"expected one of {stype.describe()}")
        if isinstance(stype, EnumT):
            return _enum(stype.cls, data)
        if isinstance(stype, TableT):
            if isinstance(data, str):
                return read_table(data)
            return sys.modules["pyarrow"].Table.from_pylist(_expect(data, list, where))
        if isinstance(stype, PathT):
            return stype.cls(_expect(data, str, where))
        if isinstance(stype, PickleT):
            raise ValueError(f"values of type {stype.describe()} cannot be given as data")
        if isinstance(stype, PlainT):
            if stype.cls in (str, bool):
                return _expect(data, stype.cls, where)
            if stype.cls in (int, float) and not isinstance(data, (int, float)):
                raise ValueError(f"expected {_EXAMPLES[stype.cls]}, got {data!r}")
            return _scalar(stype.cls, data)
    except ValueError as exc:
        message = str(exc)
        raise ValueError(message if message.startswith(where) else f"{where}: {message}") from None
    raise ValueError(f"{where}: cannot build a {stype.describe()} from {data!r}")


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same type: ``True`` is not the literal ``1``."""
    return type(a) is type(b) and a == b


def _expect(data: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if isinstance(data, kind) and not (kind is not bool and isinstance(data, bool)):
        return data
    names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
    raise ValueError(f"{where}: expected {names}, got {data!r}")


def _dataclass(stype: DataclassT, data: dict[str, Any], where: str) -> Any:
    unknown = [k for k in data if k not in stype.fields]
    if unknown:
        raise ValueError(f"{where}: {stype.describe()} has no field {unknown[0]!r}")
    kwargs = {k: from_builtin(stype.fields[k], v, f"{where}.{k}") for k, v in data.items()}
    missing = [f.name for f in dataclasses.fields(stype.cls)
               if f.name not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"{where}: missing field {missing[0]!r} of {stype.describe()}")
    return stype.cls(**kwargs)
