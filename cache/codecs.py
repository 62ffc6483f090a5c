"""Canonical encodings and logical digests of values, by sterna type.

A value is stored with one of five codecs: ``json`` (everything structural),
``arrow`` (tables), ``pickle`` (classes sterna has no type for, and ``Any``
values that are not JSON data), ``file`` and ``dir`` (content on disk).

The JSON form is canonical (sorted keys, no spaces, floats by ``repr``) and
typed: decoding it with the same sterna type gives back an equal value of the
same type, so a cache hit returns what the task returned. Where plain JSON
would lose something, a tag object says what it holds: ``$bytes``, ``$td``
(timedelta), ``$dt`` (datetime in a named zone), ``$u`` (which option of a
union), ``$enum``/``$lit`` (members whose value is not JSON data), ``$items``
(dicts with non-str keys), ``$pickle``/``$arrow`` (values JSON cannot carry,
nested in a JSON value), ``$any`` (an ``Any`` dict that would look like a
tag). Tags are read only where the type says one may be, so user data never
turns into something else.

The logical digest (xxh3_128, 32 hex chars) is what cache keys and lineage
see: equal values of one type hash equal in every process, and each codec
hashes under its own prefix so values of different codecs never collide.
In a digest, nested tables, files and pickles enter by their own digests:
a file is its content, not its path.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import json
import os
import pickle
import sys
import zoneinfo
from typing import Any

import xxhash

from sterna.typesys.files import Directory, File
from sterna.typesys.types import (
    AnyT,
    DataclassT,
    DictT,
    EnumT,
    ListT,
    LiteralT,
    Mismatch,
    NoneT,
    PathT,
    PickleT,
    PlainT,
    SType,
    TableT,
    TupleT,
    UnionT,
)

from .codec_base import (
    _SCALARS,
    _UNSET,
    CODECS,
    DecodeError,
    EncodeError,
    _at,
    _error,
    _expect,
    _Fail,
    _fast_cls,
    _handler,
    _short,
)
from .jsondecode import _parse

# -- public API ---------------------------------------------------------------------------------

def codec_for(stype: SType, value: Any = _UNSET) -> str:
    """The codec that stores values of ``stype``.

    ``Any`` is decided per value: given ``value``, an ``Any`` value that is not
    JSON data (``is_json_data``) takes ``pickle``; without a value, ``json``.
    """
    if isinstance(stype, TableT):
        return "arrow"
    if isinstance(stype, PathT):
        return "file" if stype.cls is File else "dir"
    if isinstance(stype, PickleT):
        return "pickle"
    if isinstance(stype, AnyT) and value is not _UNSET and not is_json_data(value):
        return "pickle"
    return "json"


def is_json_data(value: Any) -> bool:
    """Whether ``value`` comes back from JSON equal and of the same types: exact
    str/int/float/bool/None, lists, and dicts with str keys, all the way down."""
    try:
        return _json_walk(value)
    except RecursionError:  # a cycle (or absurd depth): pickle copes with those
        return False


def _json_walk(value: Any) -> bool:
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is list:
        return all(map(_json_walk, value))
    if kind is dict:
        return all(type(k) is str for k in value) and all(map(_json_walk, value.values()))
    return False


def encode_json(stype: SType, value: Any) -> bytes:
    """Canonical JSON bytes of a typed value; ``EncodeError`` if it has none.

    An ``Any`` value that is not JSON data raises here: it belongs to the pickle
    codec, as ``codec_for(stype, value)`` says.
    """
    if isinstance(stype, AnyT) and not is_json_data(value):
        raise _error(EncodeError, stype, _Fail(
            f"a {type(value).__qualname__} is not JSON data; store it with the pickle codec"))
    return _dumps(stype, to_builtin(stype, value))


def to_builtin(stype: SType, value: Any) -> Any:
    """Typed value -> JSON-able data that ``from_builtin_typed`` turns back into it."""
    try:
        return _build(stype, value, False)
    except _Fail as exc:
        raise _error(EncodeError, stype, exc) from None
    except RecursionError:
        raise _error(EncodeError, stype, _Fail("nested too deeply")) from None


def from_builtin_typed(stype: SType, data: Any) -> Any:
    """Inverse of ``to_builtin``; ``DecodeError`` (a ``ValueError``) if data does not fit."""
    try:
        return _parse(stype, data)
    except _Fail as exc:
        raise _error(DecodeError, stype, exc) from None
    except RecursionError:
        raise _error(DecodeError, stype, _Fail("nested too deeply")) from None


def decode_json(stype: SType, payload: bytes | memoryview) -> Any:
    """The value of ``stype`` that ``encode_json`` wrote as ``payload``."""
    try:
        data = json.loads(str(payload, "utf-8", "surrogatepass"))
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
        raise _error(DecodeError, stype, _Fail(f"not JSON ({exc})")) from None
    return from_builtin_typed(stype, data)


def encode_pickle(value: Any) -> bytes:
    """Pickle (protocol 5); ``EncodeError`` names the value's class and pickle's reason."""
    try:
        return _pickled(value)
    except _Fail as exc:
        name = type(value).__qualname__
        raise EncodeError(f"cannot encode a value of class {name}: {exc.reason}",
                          stype=name, reason=exc.reason) from None


def decode_pickle(payload: bytes | memoryview) -> Any:
    """Unpickle bytes written by ``encode_pickle``."""
    return pickle.loads(payload)


def digest_value(stype: SType, value: Any) -> str:
    """Logical digest (32-char xxh3_128 hex) of a typed value, for cache keys and lineage.

    json: hash of ``b"json\\0"`` + canonical JSON (nested tables, files and
    pickles by their digests); arrow: ``digest_table``; file / dir: hash of
    ``b"file\\0"`` / ``b"dir\\0"`` + content digest; pickle: hash of
    ``b"pickle\\0"`` + pickled bytes.
    """
    codec = codec_for(stype, value)
    try:
        if codec == "json":
            return xxhash.xxh3_128_hexdigest(b"json\0" + _dumps(stype, _build(stype, value, True)))
        if codec == "pickle":
            return xxhash.xxh3_128_hexdigest(b"pickle\0" + _pickled(value))
        if codec == "arrow":
            return _table_digest(value)
        content = _path_digest(stype, value)  # type: ignore[arg-type]
    except _Fail as exc:
        raise _error(EncodeError, stype, exc) from None
    except RecursionError:
        raise _error(EncodeError, stype, _Fail("nested too deeply")) from None
    return xxhash.xxh3_128_hexdigest(codec.encode() + b"\0" + content.encode())


def _dumps(stype: SType, data: Any) -> bytes:
    try:
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=True)
    except (TypeError, ValueError, RecursionError) as exc:  # e.g. an int past 4300 digits
        raise _error(EncodeError, stype, _Fail(f"not JSON-encodable ({exc})")) from None
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate is a legal str


def _pickled(value: Any) -> bytes:
    try:
        return pickle.dumps(value, protocol=5)
    except Exception as exc:  # pickling runs user code (__reduce__): anything can come
        raise _Fail(f"a {type(value).__qualname__} is neither JSON data nor picklable "
                    f"({type(exc).__name__}: {exc})") from None


# -- encoding -----------------------------------------------------------------------------------

def _build(stype: SType, value: Any, digest: bool) -> Any:
    """JSON data for ``value``; with ``digest``, nested blobs enter by their digests."""
    return _handler(_ENCODERS, stype)(stype, value, digest)


def _enc_any(stype: AnyT, value: Any, digest: bool) -> Any:
    if not is_json_data(value):
        return _pickle_tag(value, digest)
    if type(value) is dict and len(value) == 1 and next(iter(value)) in ("$pickle", "$any"):
        return {"$any": value}  # user data that would read as a tag
    return value


def _pickle_tag(value: Any, digest: bool) -> dict[str, str]:
    data = _pickled(value)
    if digest:
        return {"$pickle": xxhash.xxh3_128_hexdigest(data)}
    return {"$pickle": base64.b64encode(data).decode("ascii")}


def _enc_none(stype: NoneT, value: Any, digest: bool) -> None:
    _expect(value, type(None), "None")


def _enc_plain(stype: PlainT, value: Any, digest: bool) -> Any:
    """Scalars by class; ``PickleT`` (and any other plain class) as a nested pickle."""
    cls = stype.cls
    if cls is float:
        _expect(value, (float, int), "float")
        return float(value)  # an int (or a float subclass) becomes the float it equals
    _expect(value, cls, stype.describe())
    if isinstance(stype, PickleT):
        return _pickle_tag(value, digest)
    if cls is str or cls is bool:
        return value
    if cls is int:
        return value if isinstance(value, bool) else int(value)  # a bool stays what came
    if cls is bytes:
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if cls is datetime.datetime or isinstance(value, datetime.datetime):
        return _enc_datetime(value, digest)  # a datetime in a date slot stays whole
    if cls is datetime.date:
        return value.isoformat()
    if cls is datetime.timedelta:
        return {"$td": [value.days, value.seconds, value.microseconds]}
    return _pickle_tag(value, digest)


def _enc_datetime(value: datetime.datetime, digest: bool) -> Any:
    """ISO text with its UTC offset; a ``ZoneInfo`` zone keeps its name and fold."""
    tz = value.tzinfo
    if tz is None or (type(tz) is datetime.timezone
                      and tz.tzname(None) == datetime.timezone(tz.utcoffset(None)).tzname(None)):
        return value.isoformat()
    if isinstance(tz, zoneinfo.ZoneInfo) and tz.key:
        return {"$dt": value.replace(tzinfo=None, fold=0).isoformat(), "tz": tz.key,
                "fold": value.fold}
    return _pickle_tag(value, digest)  # another tzinfo class (or a named offset): exact


def _enc_enum(stype: EnumT, value: Any, digest: bool) -> Any:
    """The member's value when that is JSON data that finds the member again, else its name."""
    _expect(value, stype.cls, stype.describe())
    raw = value.value
    if type(raw) in _SCALARS and raw == raw:
        try:
            if stype.cls(raw) == value:
                return raw
        except ValueError:
            pass
    return {"$enum": value.name}


def _enc_literal(stype: LiteralT, value: Any, digest: bool) -> Any:
    matches = [i for i, v in enumerate(stype.values) if v == value]
    exact = [i for i in matches if type(stype.values[i]) is type(value)]
    if not matches:
        raise _Fail(f"{_short(value)} is not one of {stype.describe()}")
    literal = stype.values[(exact or matches)[0]]
    if type(literal) in _SCALARS and literal == literal:
        return literal
    return {"$lit": (exact or matches)[0]}


def _enc_list(stype: ListT, value: Any, digest: bool) -> list[Any]:
    _expect(value, list, "list")
    fast = _fast_cls(stype.item)
    if fast is not None and all(type(v) is fast for v in value):
        return list(value)
    return [_at("item %d", i, _build, stype.item, v, digest) for i, v in enumerate(value)]


def _enc_tuple(stype: TupleT, value: Any, digest: bool) -> list[Any]:
    _expect(value, tuple, "tuple")
    if not stype.variadic and len(value) != len(stype.items):
        raise _Fail(f"has {len(value)} items, expected {len(stype.items)}")
    types = stype.items * len(value) if stype.variadic else stype.items
    return [_at("item %d", i, _build, t, v, digest) for i, (t, v) in enumerate(zip(types, value))]


def _enc_dict(stype: DictT, value: Any, digest: bool) -> Any:
    """A JSON object; non-str keys (a bare ``dict``) as ``$items`` pairs sorted by key."""
    _expect(value, dict, "dict")
    if all(isinstance(k, str) for k in value) and not (len(value) == 1 and "$items" in value):
        fast = _fast_cls(stype.value)
        if fast is not None and all(type(v) is fast for v in value.values()):
            return {str.__str__(k): v for k, v in value.items()}
        return {str.__str__(k): _at("value of key %r", k, _build, stype.value, v, digest)
                for k, v in value.items()}
    pairs = [[_at("key %r", k, _build, stype.key_type, k, digest),
              _at("value of key %r", k, _build, stype.value, v, digest)] for k, v in value.items()]
    pairs.sort(key=lambda pair: json.dumps(pair[0], sort_keys=True))
    return {"$items": pairs}


def _enc_union(stype: UnionT, value: Any, digest: bool) -> dict[str, Any]:
    """``{"$u": i, "v": ...}``: the first option that takes the value unchanged, else the
    first that takes it at all (with the coercion the type check would apply)."""
    chosen: tuple[int, Any] | None = None
    for index, option in enumerate(stype.options):
        if isinstance(option, TableT) and "pyarrow" not in sys.modules:
            continue  # no table can exist, and TableT.check would look pyarrow up
        try:
            checked = option.check(value)
        except Mismatch:
            continue
        if _unchanged(checked, value):
            chosen = (index, value)
            break
        if chosen is None:
            chosen = (index, checked)
    if chosen is None:
        raise _Fail(f"{type(value).__qualname__} {_short(value)} matches none of the options")
    index, value = chosen
    option = stype.options[index]
    return {"$u": index, "v": _at("option %s", option.describe(), _build, option, value, digest)}


def _unchanged(checked: Any, value: Any) -> bool:
    """Whether a type check returned the value itself, up to containers it rebuilt."""
    if checked is value:
        return True
    if type(checked) is not type(value):
        return False
    if isinstance(value, (list, tuple)):
        return len(checked) == len(value) and all(map(_unchanged, checked, value))
    if isinstance(value, dict):
        return checked.keys() == value.keys() and all(
            _unchanged(checked[k], v) for k, v in value.items())
    if dataclasses.is_dataclass(value):
        return all(_unchanged(getattr(checked, f.name), getattr(value, f.name))
                   for f in dataclasses.fields(value))
    return False


def _enc_dataclass(stype: DataclassT, value: Any, digest: bool) -> Any:
    _expect(value, stype.cls, stype.describe())
    if type(value) is not stype.cls:  # a subclass may carry more fields: keep it whole
        return _pickle_tag(value, digest)
    return {name: _at("field %r", name, _build, ftype, getattr(value, name), digest)
            for name, ftype in stype.fields.items()}


def _enc_table(stype: TableT, value: Any, digest: bool) -> dict[str, str]:
    if digest:
        return {"$arrow": _table_digest(value)}
    pa = _pyarrow_for(value)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, value.schema) as writer:
        writer.write_table(value)
    return {"$arrow": base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii")}


def _pyarrow_for(value: Any) -> Any:
    pa = sys.modules.get("pyarrow")  # a table exists only if pyarrow is imported already
    if pa is None or not isinstance(value, pa.Table):
        raise _Fail(f"expected a pyarrow.Table, got {type(value).__qualname__}")
    return pa


def _table_digest(value: Any) -> str:
    _pyarrow_for(value)
    from .tablehash import digest_table

    return digest_table(value)


def _path_value(stype: PathT, value: Any) -> File | Directory:
    if isinstance(value, stype.cls):
        return value
    if isinstance(value, (File, Directory)) or not isinstance(value, (str, os.PathLike)):
        raise _Fail(f"expected a {stype.describe()} (or a path), got {type(value).__qualname__}")
    return stype.cls(value)


def _path_digest(stype: PathT, value: Any) -> str:
    path = _path_value(stype, value)
    try:
        return path.digest()
    except OSError as exc:
        raise _Fail(f"cannot read {path.path!r} ({exc.strerror or exc})") from None


def _enc_path(stype: PathT, value: Any, digest: bool) -> Any:
    """The path when stored (a reference, not a copy); the content digest when hashed."""
    if digest:
        return {"$" + codec_for(stype): _path_digest(stype, value)}
    return _path_value(stype, value).path


_ENCODERS: dict[type, Any] = {
    AnyT: _enc_any, NoneT: _enc_none, PlainT: _enc_plain, EnumT: _enc_enum,
    LiteralT: _enc_literal, ListT: _enc_list, TupleT: _enc_tuple, DictT: _enc_dict,
    UnionT: _enc_union, DataclassT: _enc_dataclass, TableT: _enc_table, PathT: _enc_path,
}


__all__ = [
    "CODECS",
    "DecodeError",
    "EncodeError",
    "codec_for",
    "decode_json",
    "decode_pickle",
    "digest_value",
    "encode_json",
    "encode_pickle",
    "from_builtin_typed",
    "is_json_data",
    "to_builtin",
]
