"""What encoding and decoding share: the errors, the failure carrier, small helpers.

Split from ``codecs`` so that the encoder (``codecs``) and the decoder
(``jsondecode``) can both use them without importing each other.
"""

from __future__ import annotations

from typing import Any

from sterna.core.errors import SternaError
from sterna.typesys.types import (
    FloatT,
    PlainT,
    SType,
)

CODECS = ("json", "arrow", "pickle", "file", "dir")

_SCALARS = (str, int, float, bool, type(None))
_UNSET: Any = object()


class EncodeError(SternaError):
    """A value cannot be encoded by its sterna type.

    ``stype`` is the type's description, ``reason`` why, ``path`` where in the
    value (``["item 2", "field 'x'"]``, outermost first).
    """

    def __init__(self, message: str, *, stype: str = "", reason: str = "",
                 path: list[str] | None = None) -> None:
        super().__init__(message)
        self.stype = stype
        self.reason = reason
        self.path = path or []


class DecodeError(SternaError, ValueError):
    """Stored data does not decode as the given sterna type (another type, or damaged)."""


class _Fail(Exception):
    """Internal: why encoding or decoding failed, and where (filled in on the way out)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []


def _error(kind: type[SternaError], stype: SType, exc: _Fail) -> SternaError:
    """The public error for an internal failure: the type, where in the value, and why."""
    where = f" at {' > '.join(exc.path)}" if exc.path else ""
    verb = "encode" if kind is EncodeError else "decode"
    message = f"cannot {verb} a value of type {stype.describe()}{where}: {exc.reason}"
    if kind is EncodeError:
        return EncodeError(message, stype=stype.describe(), reason=exc.reason, path=exc.path)
    return DecodeError(message)


# -- shared helpers -----------------------------------------------------------------------------

def _handler(table: dict[type, Any], stype: SType) -> Any:
    """The table's function for ``stype``'s class (or the nearest base class)."""
    for cls in type(stype).__mro__:
        handler = table.get(cls)
        if handler is not None:
            return handler
    raise _Fail(f"sterna type {type(stype).__name__} has no JSON form")


def _at(where: str, key: object, fn: Any, *args: Any) -> Any:
    """``fn(*args)``, adding ``where % key`` to the path of a failure (formatted only then)."""
    try:
        return fn(*args)
    except _Fail as exc:
        exc.path.insert(0, where % (key,))
        raise


def _expect(value: Any, kind: type | tuple[type, ...], what: str) -> None:
    if not isinstance(value, kind):
        raise _Fail(f"expected {what}, got {type(value).__qualname__} {_short(value)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fast_cls(stype: SType) -> type | None:
    """The exact class whose values are their own JSON form (lists of them skip the walk)."""
    if type(stype) is FloatT:
        return float
    if type(stype) is PlainT and stype.cls in (str, int, bool):
        return stype.cls
    return None


