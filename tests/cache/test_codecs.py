"""Canonical encodings and logical digests by sterna type: exact round trips (same value, same
types), digests that ignore dict order and agree across processes, codec prefixes that keep
digests of different codecs apart, union options that survive, and errors that say why."""

import dataclasses
import datetime
import decimal
import enum
import fractions
import json
import math
import os
import pickle
import re
import subprocess
import sys
import warnings
import zoneinfo
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import pyarrow as pa
import pytest
import xxhash

from sterna import Directory, File
from sterna.cache.codecs import (
    CODECS,
    DecodeError,
    EncodeError,
    codec_for,
    decode_json,
    decode_pickle,
    digest_value,
    encode_json,
    encode_pickle,
    from_builtin_typed,
    is_json_data,
    to_builtin,
)
from sterna.core.errors import SternaError, SternaWarning
from sterna.typesys.convert import from_builtin
from sterna.typesys.resolve import resolve
from sterna.typesys.types import SType

HEX32 = re.compile(r"[0-9a-f]{32}")


class Color(enum.Enum):
    RED = "red"
    GREEN = 2
    PAIR = (1, 2)  # not JSON data: travels by name


class Swapped(enum.Enum):
    """Names and values cross: decoding by name-or-value would pick the wrong member."""

    X = "Y"
    Y = "X"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Perm(enum.IntFlag):
    R = 4
    W = 2
    X = 1


@dataclass(frozen=True)
class Point:
    x: int
    y: float = 0.0


@dataclass(frozen=True)
class Point3(Point):
    z: int = 0


@dataclass
class Shape:
    name: str
    origin: Point
    corners: list[Point] = field(default_factory=list)
    created: datetime.date = datetime.date(2026, 1, 1)
    tags: dict[str, float] = field(default_factory=dict)
    color: Color | None = None
    when: datetime.datetime | None = None
    blob: bytes = b""
    span: datetime.timedelta = datetime.timedelta(0)
    kind: Literal["a", "b"] = "a"


@dataclass(slots=True)
class Slotted:
    a: int
    b: tuple[str, ...]


@dataclass
class Derived:
    """``__post_init__`` derives a field and a plain attribute."""

    items: list[int]
    total: int = field(init=False)

    def __post_init__(self) -> None:
        self.total = sum(self.items)
        self.index = {v: i for i, v in enumerate(self.items)}


@dataclass
class Doubling:
    """A ``__post_init__`` that is not idempotent: rerunning it must not change the value."""

    x: int

    def __post_init__(self) -> None:
        self.x *= 2


@dataclass
class Scaled:
    """A required ``InitVar``: the stored fields alone cannot call ``__init__``."""

    a: int
    scale: InitVar[int]

    def __post_init__(self, scale: int) -> None:
        self.a *= scale


class Opaque:
    """A class sterna has no type for (pickled)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return type(other) is Opaque and other.n == self.n

    def __hash__(self) -> int:
        return hash(self.n)


def stype(annotation: Any) -> SType:
    """Resolve an annotation, silencing the pickled-type warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SternaWarning)
        return resolve(annotation)


def assert_same(got: Any, want: Any, where: str = "value") -> None:
    """Equal, and of the same type all the way down (-0.0, NaN, tzinfo and fold included)."""
    assert type(got) is type(want), f"{where}: {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, float):
        if math.isnan(want):
            assert math.isnan(got), where
        else:
            assert got == want and math.copysign(1, got) == math.copysign(1, want), where
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, dict):
        assert sorted(map(repr, got)) == sorted(map(repr, want)), where
        for key, w in want.items():
            assert_same(next(k for k in got if k == key), key, f"{where} key {key!r}")
            assert_same(got[key], w, f"{where}[{key!r}]")
    elif dataclasses.is_dataclass(want):
        for f in dataclasses.fields(want):
            assert_same(getattr(got, f.name), getattr(want, f.name), f"{where}.{f.name}")
    elif isinstance(want, datetime.datetime):
        assert got == want and got.isoformat() == want.isoformat(), where
        assert got.tzinfo == want.tzinfo and got.fold == want.fold, where
    elif isinstance(want, pa.Table):
        assert got.equals(want, check_metadata=True), where
    else:
        assert got == want, where


PARIS = zoneinfo.ZoneInfo("Europe/Paris")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
IST = datetime.timezone(datetime.timedelta(hours=5, minutes=30))

SHAPE = Shape(
    "tri", Point(0, 0.5), [Point(1), Point(2, -0.0)], datetime.date(2025, 12, 31),
    {"w": 1.5, "h": math.inf}, Color.PAIR, datetime.datetime(2026, 3, 1, 9, 30, tzinfo=IST),
    b"\x00\xff", datetime.timedelta(days=-2, microseconds=7), "b")

ROUND_TRIPS: list[tuple[str, Any, Any]] = [
    ("int", int, 42),
    ("int-huge", int, 10**60),
    ("int-negative", int, -7),
    ("bool-in-int-slot", int, True),
    ("bool", bool, False),
    ("float", float, 0.1),
    ("float-negative-zero", float, -0.0),
    ("float-nan", float, math.nan),
    ("float-inf", float, -math.inf),
    ("float-tiny", float, 5e-324),
    ("str", str, "héllo \u2603 \U0001f600"),
    ("str-empty", str, ""),
    ("str-lone-surrogate", str, "a\ud800b"),
    ("bytes", bytes, bytes(range(256))),
    ("bytes-empty", bytes, b""),
    ("datetime-naive", datetime.datetime, datetime.datetime(2026, 1, 2, 3, 4, 5, 6)),
    ("datetime-offset", datetime.datetime, datetime.datetime(2026, 1, 2, 3, 4, tzinfo=IST)),
    ("datetime-utc", datetime.datetime,
     datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc)),
    ("datetime-zone", datetime.datetime, datetime.datetime(2026, 7, 1, 12, tzinfo=PARIS)),
    ("datetime-zone-fold", datetime.datetime,
     datetime.datetime(2026, 11, 1, 1, 30, tzinfo=NEW_YORK, fold=1)),
    ("datetime-named-offset", datetime.datetime, datetime.datetime(
        2026, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=1), "CET"))),
    ("date", datetime.date, datetime.date(1, 1, 1)),
    ("datetime-in-date-slot", datetime.date, datetime.datetime(2026, 5, 5, 5, 5)),
    ("timedelta", datetime.timedelta, datetime.timedelta(days=-1, seconds=5, microseconds=3)),
    ("timedelta-max", datetime.timedelta, datetime.timedelta.max),
    ("enum-str", Color, Color.RED),
    ("enum-int", Color, Color.GREEN),
    ("enum-tuple-value", Color, Color.PAIR),
    ("enum-crossed-names", Swapped, Swapped.Y),
    ("int-enum", Level, Level.HIGH),
    ("int-flag-composite", Perm, Perm.R | Perm.W),
    ("none", None, None),
    ("optional-none", int | None, None),
    ("optional-set", int | None, 3),
    ("union-float-int-keeps-int", Union[float, int], 1),
    ("union-float-int-keeps-float", Union[float, int], 1.0),
    ("union-int-bool-keeps-bool", Union[int, bool], True),
    ("union-str-int", Union[str, int], "1"),
    ("union-list-options", Union[list[int], list[float]], [1.5]),
    ("union-dataclasses", Union[Point, Shape], SHAPE),
    ("pipe-union", int | str | None, "x"),
    ("literal-str", Literal["a", "b"], "b"),
    ("literal-bool-not-int", Literal[1, True], True),
    ("literal-int-not-bool", Literal[True, 1], 1),
    ("literal-enum", Literal[Color.RED, Color.PAIR], Color.PAIR),
    ("literal-bytes", Literal[b"x", "x"], b"x"),
    ("literal-none", Literal[None, 0], None),
    ("list", list[int], [3, 1, 2]),
    ("list-float", list[float], [1.0, -0.0, math.inf]),
    ("list-nested", list[list[str]], [["a"], [], ["b", "c"]]),
    ("list-empty", list[Point], []),
    ("tuple", tuple[int, str, bytes], (1, "a", b"b")),
    ("tuple-variadic", tuple[Point, ...], (Point(1), Point(2, 2.5))),
    ("tuple-empty", tuple[()], ()),
    ("tuple-bare", tuple, (1, "a", None)),
    ("dict-of-lists-of-tuples", dict[str, list[tuple[int, str]]],
     {"b": [(1, "x"), (2, "y")], "a": []}),
    ("dict-tag-like-key", dict[str, int], {"$items": 1}),
    ("dict-bare-non-str-keys", dict, {1: "a", (1, 2): "b", None: [1], "1": 2.5}),
    ("dict-optional-values", dict[str, datetime.date | None],
     {"x": None, "y": datetime.date(2026, 2, 3)}),
    ("dataclass-frozen", Point, Point(1, 2.5)),
    ("dataclass-nested", Shape, SHAPE),
    ("dataclass-slots", Slotted, Slotted(1, ("a", "b"))),
    ("dataclass-subclass-in-base-slot", Point, Point3(1, 2.0, 3)),
    ("list-of-dataclasses", list[Shape], [SHAPE, Shape("sq", Point(5))]),
    ("any-json", Any, {"a": [1, 2.5, None, True, "s"], "b": {}}),
    ("any-scalar", Any, 1.0),
    ("any-tag-like-dict", Any, {"$pickle": "not a pickle"}),
    ("any-tag-like-any", Any, {"$any": 1}),
    ("list-any-mixed", list[Any], [1, (1, 2), Opaque(3), {"$any": 2}, fractions.Fraction(1, 3)]),
    ("dict-any-objects", dict[str, Any], {"o": Opaque(1), "d": decimal.Decimal("1.10")}),
    ("pickled-in-list", list[Opaque], [Opaque(1), Opaque(2)]),
    ("optional-opaque", Opaque | None, Opaque(5)),
]


@pytest.mark.parametrize(("annotation", "value"), [(a, v) for _, a, v in ROUND_TRIPS],
                         ids=[name for name, _, _ in ROUND_TRIPS])
def test_json_round_trip_is_exact(annotation: Any, value: Any) -> None:
    st = stype(annotation)
    assert codec_for(st) == "json"
    payload = encode_json(st, value)
    assert isinstance(payload, bytes)
    assert_same(decode_json(st, payload), value)
    assert_same(decode_json(st, memoryview(payload)), value)
    assert_same(from_builtin_typed(st, to_builtin(st, value)), value)
    # the builtin form really is JSON: it survives json.dumps/loads unchanged
    data = to_builtin(st, value)
    assert_same(from_builtin_typed(st, json.loads(json.dumps(data, allow_nan=True))), value)


@pytest.mark.parametrize(("annotation", "value"), [(a, v) for _, a, v in ROUND_TRIPS],
                         ids=[name for name, _, _ in ROUND_TRIPS])
def test_digest_is_stable_and_hex(annotation: Any, value: Any) -> None:
    st = stype(annotation)
    digest = digest_value(st, value)
    assert HEX32.fullmatch(digest)
    assert digest_value(st, value) == digest
    assert digest_value(st, decode_json(st, encode_json(st, value))) == digest


def test_encode_json_is_canonical_text() -> None:
    st = stype(dict[str, Any])
    one = {"b": [1.5, "é"], "a": 1, "c": {"y": None, "x": True}}
    two = {"c": {"x": True, "y": None}, "a": 1, "b": [1.5, "é"]}
    expected = '{"a":1,"b":[1.5,"é"],"c":{"x":true,"y":null}}'.encode()
    assert encode_json(st, one) == expected
    assert encode_json(st, two) == expected
    assert encode_json(stype(float), math.nan) == b"NaN"
    assert encode_json(stype(float), -0.0) == b"-0.0"
    assert encode_json(stype(list[float]), [math.inf, -math.inf]) == b"[Infinity,-Infinity]"
    assert encode_json(stype(float), 0.1) == b"0.1"


def test_tagged_forms() -> None:
    assert to_builtin(stype(bytes), b"\x00\x01") == {"$bytes": "AAE="}
    assert to_builtin(stype(datetime.timedelta), datetime.timedelta(1, 2, 3)) == {"$td": [1, 2, 3]}
    assert to_builtin(stype(datetime.datetime), datetime.datetime(2026, 1, 1, tzinfo=IST)) == (
        "2026-01-01T00:00:00+05:30")
    assert to_builtin(stype(Color), Color.RED) == "red"
    assert to_builtin(stype(Color), Color.PAIR) == {"$enum": "PAIR"}
    assert to_builtin(stype(Union[float, int]), 1) == {"$u": 1, "v": 1}
    assert to_builtin(stype(Literal["a", Color.RED]), Color.RED) == {"$lit": 1}
    assert to_builtin(stype(tuple[int, str]), (1, "a")) == [1, "a"]
    assert to_builtin(stype(Point), Point(1, 2)) == {"x": 1, "y": 2.0}
    assert to_builtin(stype(Any), [1, {"k": "v"}]) == [1, {"k": "v"}]


def test_from_builtin_typed_agrees_with_from_builtin_on_plain_data() -> None:
    cases: list[tuple[Any, Any]] = [
        (int, 3), (float, 2.5), (str, "s"), (bool, True), (list[int], [1, 2]),
        (dict[str, float], {"a": 1.5}), (Point, {"x": 1, "y": 2.0}), (Color, "red"),
        (datetime.date, "2026-01-31"), (datetime.datetime, "2026-01-31T12:00:00+01:00"),
        (Point | None, {"$u": 0, "v": {"x": 1, "y": 0.0}}),
    ]
    for annotation, data in cases:
        st = stype(annotation)
        plain = data["v"] if isinstance(data, dict) and "$u" in data else data
        assert_same(from_builtin_typed(st, data), from_builtin(st, plain))


# -- floats and coercion --------------------------------------------------------------------

def test_int_in_float_slot_digests_as_the_float() -> None:
    assert digest_value(stype(float), 1) == digest_value(stype(float), 1.0)
    assert digest_value(stype(list[float]), [1, 2.0]) == digest_value(stype(list[float]), [1.0, 2])
    assert digest_value(stype(Point), Point(1, 3)) == digest_value(stype(Point), Point(1, 3.0))
    assert digest_value(stype(dict[str, float]), {"a": 1}) == digest_value(
        stype(dict[str, float]), {"a": 1.0})
    assert_same(decode_json(stype(float), encode_json(stype(float), 7)), 7.0)


def test_optional_float_coerces_an_int_as_the_type_check_would() -> None:
    st = stype(float | None)
    assert_same(decode_json(st, encode_json(st, 2)), 2.0)
    assert digest_value(st, 2) == digest_value(st, 2.0)


def test_float_subclass_digests_as_plain_float() -> None:
    class MyFloat(float):
        pass

    assert digest_value(stype(float), MyFloat(2.5)) == digest_value(stype(float), 2.5)
    assert_same(decode_json(stype(float), encode_json(stype(float), MyFloat(2.5))), 2.5)


# -- digests --------------------------------------------------------------------------------

def test_dict_insertion_order_does_not_change_the_digest() -> None:
    st = stype(dict[str, list[tuple[int, str]]])
    forward = {"a": [(1, "x")], "b": [], "c": [(2, "y"), (3, "z")]}
    backward = dict(reversed(list(forward.items())))
    assert list(forward) != list(backward)
    assert digest_value(st, forward) == digest_value(st, backward)
    bare = stype(dict)
    mixed = {1: "a", (1, 2): "b", "1": "c", None: "d"}
    assert digest_value(bare, mixed) == digest_value(bare, dict(reversed(list(mixed.items()))))
    tags = {"x": 1.5, "y": 2.5}
    assert digest_value(stype(Shape), Shape("s", Point(1), tags=tags)) == digest_value(
        stype(Shape), Shape("s", Point(1), tags=dict(reversed(list(tags.items())))))


DIFFERENT: list[tuple[str, Any, Any, Any]] = [
    ("int", int, 1, 2),
    ("bool-vs-int-in-int-slot", int, True, 1),
    ("float-sign-of-zero", float, 0.0, -0.0),
    ("float-last-bit", float, 0.1, 0.1 + 2**-56),
    ("str-case", str, "a", "A"),
    ("bytes", bytes, b"\x00", b"\x00\x00"),
    ("list-order", list[int], [1, 2], [2, 1]),
    ("list-nesting", list[list[int]], [[1], [2]], [[1, 2]]),
    ("dict-value", dict[str, int], {"a": 1}, {"a": 2}),
    ("dict-key", dict[str, int], {"a": 1}, {"b": 1}),
    ("bare-dict-int-vs-str-key", dict, {1: 1}, {"1": 1}),
    ("tuple", tuple[int, ...], (1, 2), (1, 2, 3)),
    ("datetime-offset", datetime.datetime, datetime.datetime(2026, 1, 1, tzinfo=IST),
     datetime.datetime(2026, 1, 1)),
    ("datetime-same-instant-other-zone", datetime.datetime,
     datetime.datetime(2026, 1, 1, 12, tzinfo=datetime.timezone.utc),
     datetime.datetime(2026, 1, 1, 13, tzinfo=PARIS)),
    ("timedelta", datetime.timedelta, datetime.timedelta(microseconds=1), datetime.timedelta(0)),
    ("enum", Color, Color.RED, Color.GREEN),
    ("union-option", Union[float, int], 1, 1.0),
    ("optional", str | None, None, "None"),
    ("dataclass-field", Point, Point(1, 2.0), Point(1, 2.5)),
    ("nested-dataclass", Shape, SHAPE, dataclasses.replace(SHAPE, corners=[Point(1)])),
    ("any-int-vs-float", Any, 1, 1.0),
    ("any-tuple-vs-list", Any, (1, 2), [1, 2]),
    ("any-tag-escape", Any, {"$any": 1}, 1),
    ("pickled", Opaque, Opaque(1), Opaque(2)),
]


@pytest.mark.parametrize(("annotation", "a", "b"), [(t, a, b) for _, t, a, b in DIFFERENT],
                         ids=[name for name, _, _, _ in DIFFERENT])
def test_different_values_have_different_digests(annotation: Any, a: Any, b: Any) -> None:
    st = stype(annotation)
    assert digest_value(st, a) != digest_value(st, b)


def test_digest_recipes_per_codec(tmp_path: Path) -> None:
    """Each codec hashes under its own prefix, exactly as documented."""
    st = stype(dict[str, int])
    assert digest_value(st, {"a": 1}) == xxhash.xxh3_128_hexdigest(
        b"json\0" + encode_json(st, {"a": 1}))
    assert digest_value(stype(Opaque), Opaque(1)) == xxhash.xxh3_128_hexdigest(
        b"pickle\0" + encode_pickle(Opaque(1)))
    assert digest_value(stype(Any), (1, 2)) == xxhash.xxh3_128_hexdigest(
        b"pickle\0" + encode_pickle((1, 2)))
    path = tmp_path / "f.txt"
    path.write_bytes(b"content")
    assert digest_value(stype(File), File(path)) == xxhash.xxh3_128_hexdigest(
        b"file\0" + File(path).digest().encode())
    assert digest_value(stype(Directory), Directory(tmp_path)) == xxhash.xxh3_128_hexdigest(
        b"dir\0" + Directory(tmp_path).digest().encode())


def test_same_bytes_under_different_codecs_never_collide(tmp_path: Path) -> None:
    """The same underlying bytes give a different digest under every codec."""
    payload = encode_json(stype(str), "x")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(payload)
    as_file = File(tmp_path / "d" / "f")
    digests = {
        "json": digest_value(stype(str), "x"),
        "file": digest_value(stype(File), as_file),
        "dir": digest_value(stype(Directory), Directory(tmp_path / "d")),
        "pickle": xxhash.xxh3_128_hexdigest(b"pickle\0" + payload),
        "raw": xxhash.xxh3_128_hexdigest(payload),
    }
    assert as_file.digest() == digests["raw"]
    assert len(set(digests.values())) == len(digests), digests
    # a file whose bytes are exactly what the json codec hashes still differs
    (tmp_path / "g").write_bytes(b"json\0" + payload)
    assert digest_value(stype(File), File(tmp_path / "g")) != digests["json"]
    # a pickle-codec value and a json-codec value of the same Python object differ
    assert digest_value(stype(Any), [1, 2]) != digest_value(stype(Opaque), Opaque(1))
    assert digest_value(stype(Any), (1, 2)) != digest_value(stype(Any), [1, 2])


# -- unions ---------------------------------------------------------------------------------

def test_union_keeps_the_option_the_value_came_as() -> None:
    st = stype(Union[float, int])
    assert_same(decode_json(st, encode_json(st, 1)), 1)
    assert_same(decode_json(st, encode_json(st, 1.0)), 1.0)
    st = stype(Union[int, float])
    assert_same(decode_json(st, encode_json(st, 1.0)), 1.0)
    st = stype(Union[str, datetime.date])
    assert_same(decode_json(st, encode_json(st, "2026-01-01")), "2026-01-01")
    assert_same(decode_json(st, encode_json(st, datetime.date(2026, 1, 1))),
                datetime.date(2026, 1, 1))
    st = stype(Union[dict[str, int], Point])
    assert_same(decode_json(st, encode_json(st, {"x": 1, "y": 2})), {"x": 1, "y": 2})
    assert_same(decode_json(st, encode_json(st, Point(1, 2.0))), Point(1, 2.0))


def test_union_prefers_an_exact_option_over_a_coercing_one_inside_containers() -> None:
    st = stype(Union[list[float], list[int]])
    assert_same(decode_json(st, encode_json(st, [1, 2])), [1, 2])
    st = stype(Union[tuple[float, int], tuple[int, int]])
    assert_same(decode_json(st, encode_json(st, (1, 2))), (1, 2))
    st = stype(Union[tuple[int, float], str])
    assert to_builtin(st, (1, 2.0)) == {"$u": 0, "v": [1, 2.0]}


def test_union_of_file_and_str_keeps_the_str(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("a\n")
    st = stype(Union[File, str])
    assert_same(decode_json(st, encode_json(st, str(path))), str(path))
    back = decode_json(st, encode_json(st, File(path)))
    assert type(back) is File and back.path == str(path)


# -- Any --------------------------------------------------------------------------------------

def test_any_codec_is_decided_per_value() -> None:
    st = stype(Any)
    assert codec_for(st) == "json"
    assert codec_for(st, {"a": [1, None]}) == "json"
    assert codec_for(st, (1, 2)) == "pickle"
    assert codec_for(st, Opaque(1)) == "pickle"
    assert codec_for(st, {1: "int key"}) == "pickle"
    assert codec_for(st, [1, b"bytes"]) == "pickle"
    assert codec_for(st, Level.LOW) == "pickle"  # an int subclass would come back a plain int
    cycle: list[Any] = []
    cycle.append(cycle)
    assert codec_for(st, cycle) == "pickle"
    assert is_json_data([1, 2.5, "s", None, True, {"k": []}])
    assert not is_json_data({"k": (1,)})


def test_any_value_that_is_not_json_goes_through_pickle() -> None:
    st = stype(Any)
    value = {"when": datetime.date(2026, 1, 1), "n": (1, 2)}
    with pytest.raises(EncodeError, match=r"Any.*not JSON data.*pickle codec"):
        encode_json(st, value)
    assert decode_pickle(encode_pickle(value)) == value
    assert digest_value(st, value) == xxhash.xxh3_128_hexdigest(
        b"pickle\0" + encode_pickle(value))


def test_cyclic_any_value_round_trips_through_pickle() -> None:
    cycle: list[Any] = [1]
    cycle.append(cycle)
    back = decode_pickle(encode_pickle(cycle))
    assert back[0] == 1 and back[1] is back
    assert HEX32.fullmatch(digest_value(stype(Any), cycle))


# -- dataclasses ------------------------------------------------------------------------------

def test_dataclass_derived_attributes_exist_after_decoding() -> None:
    st = stype(Derived)
    back = decode_json(st, encode_json(st, Derived([3, 4])))
    assert_same(back, Derived([3, 4]))
    assert back.total == 7 and back.index == {3: 0, 4: 1}


def test_dataclass_post_init_does_not_run_twice_on_the_value() -> None:
    st = stype(Doubling)
    value = Doubling(1)
    assert value.x == 2
    assert_same(decode_json(st, encode_json(st, value)), value)


def test_dataclass_with_required_initvar_is_restored_field_by_field() -> None:
    st = stype(Scaled)
    value = Scaled(2, scale=3)
    assert encode_json(st, value) == b'{"a":6}'
    back = decode_json(st, encode_json(st, value))
    assert type(back) is Scaled and back.a == 6


def test_dataclass_subclass_in_a_base_slot_keeps_its_class_and_fields() -> None:
    st = stype(list[Point])
    back = decode_json(st, encode_json(st, [Point(1), Point3(1, 2.0, 3)]))
    assert [type(p) for p in back] == [Point, Point3]
    assert back[1].z == 3


# -- tables ---------------------------------------------------------------------------------

def make_table() -> pa.Table:
    return pa.table({"a": pa.array([1, None, 3], pa.int64()), "s": ["x", "y", None]},
                    metadata={b"k": b"v"})


def test_table_codec_and_digest_is_the_table_digest() -> None:
    tablehash = pytest.importorskip("sterna.cache.tablehash")
    st = stype(pa.Table)
    table = make_table()
    assert codec_for(st) == "arrow"
    assert digest_value(st, table) == tablehash.digest_table(table)
    rechunked = pa.concat_tables([table.slice(0, 1), table.slice(1)])
    assert rechunked.column(0).num_chunks == 2
    assert digest_value(st, rechunked) == digest_value(st, table)
    changed = pa.table({"a": pa.array([1, None, 4], pa.int64()), "s": ["x", "y", None]})
    assert digest_value(st, changed) != digest_value(st, table)
    rows = stype(list[dict[str, int | None]])
    assert digest_value(st, table) != digest_value(rows, [{"a": 1}, {"a": None}, {"a": 3}])


def test_tables_nested_in_json_values_round_trip() -> None:
    st = stype(dict[str, list[pa.Table]])
    value = {"t": [make_table(), pa.table({"x": pa.array([], pa.float32())})]}
    assert_same(decode_json(st, encode_json(st, value)), value)


def test_tables_nested_in_json_values_digest_by_content() -> None:
    pytest.importorskip("sterna.cache.tablehash")
    st = stype(list[pa.Table])
    table = make_table()
    rechunked = pa.concat_tables([table.slice(0, 2), table.slice(2)])
    assert encode_json(st, [table]) != b""
    assert digest_value(st, [table]) == digest_value(st, [rechunked])
    assert digest_value(st, [table]) != digest_value(st, [table.slice(1)])


# -- files and directories ------------------------------------------------------------------

def test_file_and_directory_codecs_digest_content_not_path(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "x.txt").write_text("same")
    assert codec_for(stype(File)) == "file"
    assert codec_for(stype(Directory)) == "dir"
    fst, dst = stype(File), stype(Directory)
    assert digest_value(fst, File(tmp_path / "a" / "x.txt")) == digest_value(
        fst, File(tmp_path / "b" / "x.txt"))
    assert digest_value(fst, str(tmp_path / "a" / "x.txt")) == digest_value(
        fst, File(tmp_path / "a" / "x.txt"))
    assert digest_value(dst, Directory(tmp_path / "a")) == digest_value(
        dst, Directory(tmp_path / "b"))
    before = digest_value(fst, File(tmp_path / "a" / "x.txt"))
    (tmp_path / "b" / "x.txt").write_text("other")
    assert digest_value(fst, File(tmp_path / "b" / "x.txt")) != before
    assert digest_value(dst, Directory(tmp_path / "b")) != digest_value(
        dst, Directory(tmp_path / "a"))


def test_files_nested_in_json_values_store_paths_and_digest_content(tmp_path: Path) -> None:
    one, two = tmp_path / "one.bin", tmp_path / "two.bin"
    one.write_bytes(b"\x01")
    two.write_bytes(b"\x01")
    st = stype(dict[str, File])
    back = decode_json(st, encode_json(st, {"f": File(one)}))
    assert type(back["f"]) is File and back["f"].path == str(one)
    assert digest_value(st, {"f": File(one)}) == digest_value(st, {"f": File(two)})
    two.write_bytes(b"\x02")
    assert digest_value(st, {"f": File(one)}) != digest_value(st, {"f": File(two)})


# -- pickle ---------------------------------------------------------------------------------

def test_pickle_codec_uses_protocol_5_and_accepts_memoryview() -> None:
    st = stype(Opaque)
    assert codec_for(st) == "pickle"
    payload = encode_pickle(Opaque(3))
    assert payload[:2] == b"\x80\x05"
    assert decode_pickle(memoryview(payload)) == Opaque(3)
    assert pickle.loads(payload) == Opaque(3)


# -- errors ---------------------------------------------------------------------------------

def test_unpicklable_any_value_raises_encode_error_naming_type_and_reason() -> None:
    with pytest.raises(EncodeError, match=r"type Any.*function.*neither JSON data nor picklable"):
        digest_value(stype(Any), lambda: 1)
    with pytest.raises(EncodeError, match=r"function.*neither JSON data nor picklable"):
        encode_pickle(lambda: 1)
    assert issubclass(EncodeError, SternaError)


def test_unpicklable_item_names_its_place() -> None:
    st = stype(list[Any])
    with pytest.raises(EncodeError) as info:
        encode_json(st, [1, (i for i in range(3))])
    message = str(info.value)
    assert "list[Any]" in message and "item 1" in message and "generator" in message
    assert info.value.stype == "list[Any]"
    assert info.value.path == ["item 1"]
    with pytest.raises(EncodeError, match=r"value of key 'tags' > item 0: a generator"):
        digest_value(stype(dict[str, list[Any]]), {"tags": [(i for i in [])]})
    with pytest.raises(EncodeError, match=r"key 'tags': a dict is neither JSON data nor pick"):
        digest_value(stype(dict[str, Any]), {"tags": {"f": (i for i in [])}})


def test_wrong_value_type_raises_encode_error() -> None:
    with pytest.raises(EncodeError, match=r"type int: expected int, got str 'x'"):
        encode_json(stype(int), "x")
    with pytest.raises(EncodeError, match=r"value of key 'p': expected Point, got str"):
        encode_json(stype(dict[str, Point]), {"p": "nope"})
    with pytest.raises(EncodeError, match=r"field 'origin': expected Point, got tuple"):
        to_builtin(stype(Shape), Shape("s", (1, 2)))  # type: ignore[arg-type]
    with pytest.raises(EncodeError, match=r"has 1 items, expected 2"):
        encode_json(stype(tuple[int, str]), (1,))
    with pytest.raises(EncodeError, match=r"'c' is not one of Literal\['a', 'b'\]"):
        encode_json(stype(Literal["a", "b"]), "c")
    with pytest.raises(EncodeError, match=r"int \| str.*float 1.5 matches none"):
        digest_value(stype(Union[int, str]), 1.5)
    with pytest.raises(EncodeError, match=r"expected None"):
        encode_json(stype(None), 0)
    with pytest.raises(EncodeError, match=r"expected a pyarrow.Table, got list"):
        encode_json(stype(pa.Table), [1])


def test_absurdly_deep_value_raises_encode_error_not_recursion_error() -> None:
    deep: list[Any] = []
    for _ in range(sys.getrecursionlimit()):
        deep = [deep]
    with pytest.raises(EncodeError, match=r"list\[list\[Any\]\] at item 0 > item 0.*[Rr]ecursion"):
        digest_value(stype(list[list[Any]]), [[deep]])


def test_missing_file_raises_encode_error(tmp_path: Path) -> None:
    with pytest.raises(EncodeError, match=r"File.*cannot read .*missing\.txt"):
        digest_value(stype(File), File(tmp_path / "missing.txt"))
    with pytest.raises(EncodeError, match=r"expected a Directory \(or a path\), got int"):
        digest_value(stype(Directory), 3)


def test_nan_and_infinities_are_encodable() -> None:
    st = stype(dict[str, float])
    value = {"nan": math.nan, "inf": math.inf, "ninf": -math.inf}
    assert_same(decode_json(st, encode_json(st, value)), value)
    assert digest_value(st, value) == digest_value(st, dict(value))


def test_decode_errors_are_value_errors_naming_the_type() -> None:
    cases: list[tuple[Any, bytes, str]] = [
        (int, b'"x"', r"type int"),
        (int, b"{", r"type int: not JSON"),
        (list[int], b'[1,"a"]', r"list\[int\] at item 1"),
        (Union[int, str], b"1", r"\$u object"),
        (Point, b'{"x":1,"y":2.0,"z":3}', r"Point has no field 'z'"),
        (Point, b'{"x":1}', r"missing field 'y'"),
        (bytes, b'{"$bytes":"%%%"}', r"base64"),
        (Color, b'"blue"', r"Color has no member of value 'blue'"),
        (Literal["a"], b'"b"', r"not one of"),
        (datetime.timedelta, b"3", r"\$td object"),
        (tuple[int, int], b"[1]", r"has 1 items, expected 2"),
        (pa.Table, b'{"$arrow":"AAAA"}', r"Arrow"),
        (Opaque, b'{"$pickle":"gAVLAS4="}', r"unpickled a value of class int, expected Opaque"),
        (Opaque, b'{"$pickle":"gAVL"}', r"cannot unpickle"),
    ]
    for annotation, payload, pattern in cases:
        st = stype(annotation)
        with pytest.raises(DecodeError, match=pattern) as info:
            decode_json(st, payload)
        assert isinstance(info.value, ValueError) and isinstance(info.value, SternaError)


def test_codecs_constant_and_codec_for_every_type() -> None:
    assert CODECS == ("json", "arrow", "pickle", "file", "dir")
    expected = {
        int: "json", float: "json", Point: "json", list[Opaque]: "json", File | None: "json",
        pa.Table: "arrow", Opaque: "pickle", File: "file", Directory: "dir", Any: "json",
    }
    for annotation, codec in expected.items():
        assert codec_for(stype(annotation)) == codec
        assert codec in CODECS


# -- across processes -----------------------------------------------------------------------

def cross_process_digests(reverse: bool) -> dict[str, str]:
    """Digests of a spread of values; ``reverse`` builds every dict in the other order."""

    def mapping(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
        return dict(reversed(pairs) if reverse else pairs)

    cases: dict[str, tuple[Any, Any]] = {
        "int": (int, 10**30), "float": (float, 0.1), "str": (str, "é\u2603"),
        "bytes": (bytes, b"\x00\xfe"), "nan": (float, math.nan),
        "dict": (dict[str, list[tuple[int, str]]],
                 mapping([("b", [(1, "x")]), ("a", []), ("c", [(2, "y")])])),
        "bare-dict": (dict, mapping([(1, "a"), ("1", "b"), ((1, 2), "c")])),
        "shape": (Shape, dataclasses.replace(SHAPE, tags=mapping([("w", 1.5), ("h", 2.0)]))),
        "zone": (datetime.datetime, datetime.datetime(2026, 7, 1, tzinfo=PARIS)),
        "union": (Union[float, int], 1),
        "any": (Any, mapping([("z", [1, None]), ("a", {"$pickle": 1})])),
        "any-pickled": (Any, frozenset({3, 1, 2})),
        "list-any": (list[Any], [decimal.Decimal("1.5"), fractions.Fraction(2, 3)]),
        "enum": (Color | None, Color.PAIR),
    }
    return {name: digest_value(stype(a), v) for name, (a, v) in cases.items()}


def test_digests_agree_across_processes() -> None:
    script = (
        "import importlib.util, json, sys\n"
        "spec = importlib.util.spec_from_file_location('codec_cases_copy', sys.argv[1])\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "sys.modules[spec.name] = module\n"
        "spec.loader.exec_module(module)\n"
        "print(json.dumps(module.cross_process_digests(reverse=True)))\n"
    )
    env = dict(os.environ, PYTHONHASHSEED="4242")
    done = subprocess.run([sys.executable, "-c", script, __file__], capture_output=True,
                          text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    ours = cross_process_digests(reverse=False)
    assert theirs == ours
    assert len(set(ours.values())) == len(ours)
