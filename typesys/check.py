"""Run-time checks with messages a person can act on.

``check_value`` wraps ``SType.check`` and turns a mismatch into a
``TypeCheckError`` such as::

    task 'etl.clean' input 'rows': expected list[int], got list[int | str] (item 3: 'x')
"""

from __future__ import annotations

import re
import sys
from typing import Any

from sterna.core.errors import TypeCheckError

from .types import Mismatch, SType

_SCAN = 1000  # items looked at when describing a container's value type


def check_value(stype: SType, value: object, *, owner: str, role: str, name: str) -> Any:
    """Check (and coerce) ``value``; ``owner`` is e.g. "task 'etl.clean'", role "input"."""
    try:
        return stype.check(value)
    except Mismatch as exc:
        raise type_error(stype, value, exc, owner=owner, role=role, name=name) from None


def type_error(
    stype: SType, value: object, exc: Mismatch, *, owner: str, role: str, name: str,
) -> TypeCheckError:
    """Build the ``TypeCheckError`` for a failed check."""
    expected = stype.describe()
    got = describe_value(value)
    generic = exc.reason.startswith(("is not an instance", "did not match", "is not a "))
    reason = "" if generic else exc.reason
    if exc.path:
        where = ", ".join(exc.path)
        detail = f" ({where}: {summarize(exc.value)}{' ' + reason if reason else ''})"
    else:
        detail = f" ({reason})" if reason else ""
    message = f"{owner} {role} {name!r}: expected {expected}, got {got}{detail}"
    quoted = re.match(r"^(?:map )?task '(.+)'$", owner)
    return TypeCheckError(message, task=quoted.group(1) if quoted else owner, argument=name,
                          expected=expected, got=got)


def describe_value(value: object) -> str:
    """The type of a value as an annotation would write it: ``list[int | str]``."""
    if value is None:
        return "None"
    if isinstance(value, list):
        return f"list[{_union_of(value[:_SCAN])}]" if value else "list (empty)"
    if isinstance(value, dict):
        if not value:
            return "dict (empty)"
        keys = list(value)[:_SCAN]
        return f"dict[{_union_of(keys)}, {_union_of([value[k] for k in keys])}]"
    if isinstance(value, tuple) and type(value) is tuple:
        return f"tuple[{', '.join(describe_value(v) for v in value[:10])}]"
    pa = sys.modules.get("pyarrow")
    if pa is not None and isinstance(value, pa.Table):
        from .types import schema_text

        return f"pa.Table[{schema_text(value.schema)}]"
    cls = type(value)
    return cls.__name__ if cls.__module__ in ("builtins", "datetime") else cls.__qualname__


def _union_of(values: list[object]) -> str:
    seen: dict[str, None] = {}
    for v in values:
        seen.setdefault(describe_value(v), None)
    return " | ".join(seen)


def short_repr(value: object, limit: int = 60) -> str:
    """``repr`` cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def summarize(value: object) -> str:
    """A one-line summary of a value for logs and errors (tables are never dumped)."""
    pa = sys.modules.get("pyarrow")
    if pa is not None and isinstance(value, pa.Table):
        return f"pa.Table({value.num_rows:,} rows x {value.num_columns} columns)"
    if isinstance(value, (list, dict, tuple, set)) and len(value) > 8:
        return f"{type(value).__name__} of {len(value):,} items"
    return short_repr(value)
