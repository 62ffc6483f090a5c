"""Edge compatibility: ``assignable(src, dst)`` says whether every src value fits dst.

Checked when a workflow is defined; the rules are a careful type checker's,
plus int -> float (coerced at run time) and untyped <-> typed tables.
"""

# Optional[...] is part of what is under test.
# ruff: noqa: UP045

import dataclasses
import datetime
import enum
from typing import Annotated, Any, Literal, Optional, Union

import pyarrow as pa
import pytest

import sterna
from sterna.typesys.compat import assignable
from sterna.typesys.resolve import resolve


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Size(enum.Enum):
    S = 1


@dataclasses.dataclass
class Base:
    x: int


@dataclasses.dataclass
class Child(Base):
    y: str = ""


@dataclasses.dataclass
class Unrelated:
    x: int


WIDE = pa.schema([pa.field("id", pa.int64(), nullable=False), ("name", pa.string()),
                  ("score", pa.float64())])
NARROW = pa.schema([pa.field("id", pa.int64(), nullable=False), ("name", pa.string())])
ID_NULLABLE = pa.schema([("id", pa.int64())])
ID_NOT_NULL = pa.schema([pa.field("id", pa.int64(), nullable=False)])
ID_STRING = pa.schema([pa.field("id", pa.string(), nullable=False)])
Wide = Annotated[pa.Table, WIDE]
Narrow = Annotated[pa.Table, NARROW]
IdNullable = Annotated[pa.Table, ID_NULLABLE]
IdNotNull = Annotated[pa.Table, ID_NOT_NULL]
IdString = Annotated[pa.Table, ID_STRING]


def ok(src: object, dst: object) -> bool:
    return assignable(resolve(src), resolve(dst))


def _ids(cases: list[tuple[object, object]]) -> list[str]:
    return [f"{resolve(a).describe()} -> {resolve(b).describe()}" for a, b in cases]


ALLOWED: list[tuple[object, object]] = [
    # numbers
    (int, float),
    (bool, int),
    (bool, float),
    # Optional / Union on the destination: any option will do
    (int, Optional[int]),
    (None, Optional[int]),
    (int, Union[str, int]),
    (int, Union[str, float]),
    (Optional[int], Optional[float]),
    # Union on the source: every option must fit
    (Union[int, str], Union[str, int, float]),
    (Union[int, bool], int),
    (Union[int, float], float),
    (int | None, float | None),
    # Literal
    (Literal["a", "b"], str),
    (Literal["a"], Literal["a", "b"]),
    (Literal["a", "b"], Literal["b", "a", "c"]),
    (Literal[1, 2], int),
    (Literal[Color.RED], Color),
    (Literal["a"], Optional[str]),
    (Optional[Literal["a"]], Optional[str]),
    # containers, element by element
    (list[int], list[int]),
    (list[int], list[float]),
    (list[list[int]], list[list[float]]),
    (list[Literal["x"]], list[str]),
    (list[int], list[Optional[int]]),
    (dict[str, int], dict[str, float]),
    (dict[str, list[Child]], dict[str, list[Base]]),
    (tuple[int, str], tuple[float, str]),
    (tuple[int, int], tuple[int, ...]),
    (tuple[int, bool], tuple[int, ...]),
    (tuple[int, ...], tuple[float, ...]),
    (tuple[()], tuple[int, ...]),
    (list, list[int]),
    (list[int], list),
    (dict, dict[str, int]),
    # dataclasses
    (Base, Base),
    (Child, Base),
    (Optional[Child], Optional[Base]),
    # tables: S -> S' only if S' is part of S; untyped on either side is checked at run time
    (pa.Table, pa.Table),
    (Wide, Narrow),
    (Wide, Wide),
    (Wide, IdNotNull),
    (IdNotNull, IdNullable),
    (pa.Table, Wide),
    (Wide, pa.Table),
    # files
    (sterna.File, sterna.File),
    (sterna.Directory, sterna.Directory),
    (sterna.File, Optional[sterna.File]),
    # Any, both ways
    (Any, int),
    (int, Any),
    (Any, Wide),
    (list[Any], list[int]),
    (list[int], list[Any]),
    (dict[str, Any], dict[str, Base]),
    # None
    (None, None),
    # others
    (Color, Color),
    (str, str),
    (bytes, bytes),
    (datetime.datetime, datetime.datetime),
    (datetime.datetime, datetime.date),
    (datetime.timedelta, datetime.timedelta),
]

REFUSED: list[tuple[object, object]] = [
    (float, int),
    (int, bool),
    (str, int),
    (int, str),
    (str, bytes),
    (Optional[int], int),
    (Optional[float], float),
    (Union[int, str], int),
    (Union[int, str], Union[int, float]),
    (int, Union[str, bytes]),
    (str, Literal["a"]),
    (Literal["a", "c"], Literal["a", "b"]),
    (Literal["a"], int),
    (Literal[1], str),
    (Literal[True], Literal[1]),
    (Literal[1], Literal[True]),
    (Literal[Color.RED], Size),
    (list[float], list[int]),
    (list[Optional[int]], list[int]),
    (list[str], list[int]),
    (list[int], tuple[int, ...]),
    (tuple[int, ...], list[int]),
    (dict[str, float], dict[str, int]),
    (dict[str, int], list[int]),
    (tuple[int, str], tuple[int, ...]),
    (tuple[int, ...], tuple[int, int]),
    (tuple[int, str], tuple[int, str, str]),
    (tuple[int, str, str], tuple[int, str]),
    (tuple[str, int], tuple[int, str]),
    (Base, Child),
    (Unrelated, Base),
    (Base, dict[str, Any]),
    (Narrow, Wide),
    (IdNullable, IdNotNull),
    (IdString, IdNotNull),
    (Narrow, IdString),
    (pa.Table, int),
    (sterna.File, sterna.Directory),
    (sterna.Directory, sterna.File),
    (str, sterna.File),
    (sterna.File, str),
    (None, int),
    (int, None),
    (Optional[int], None),
    (Color, str),
    (Color, Size),
    (datetime.date, datetime.datetime),
    (datetime.timedelta, float),
]


@pytest.mark.parametrize(("src", "dst"), ALLOWED, ids=_ids(ALLOWED))
def test_assignable(src: object, dst: object) -> None:
    assert ok(src, dst)


@pytest.mark.parametrize(("src", "dst"), REFUSED, ids=_ids(REFUSED))
def test_not_assignable(src: object, dst: object) -> None:
    assert not ok(src, dst)


SELF: list[object] = [
    int, float, str, bool, bytes, None, datetime.datetime, datetime.date, datetime.timedelta,
    Color, list[int], dict[str, list[float]], tuple[int, str], tuple[int, ...], tuple[()],
    Optional[int], Union[int, str], Literal["a", 1], Base, Any, pa.Table, Wide, sterna.File,
    sterna.Directory, list[Optional[Base]],
]


@pytest.mark.parametrize("annotation", SELF, ids=[resolve(a).describe() for a in SELF])
def test_every_type_is_assignable_to_itself(annotation: object) -> None:
    assert ok(annotation, annotation)


@pytest.mark.parametrize(("src", "dst"), [
    (Literal[1, 2], float),
    (Literal[1], Optional[float]),
])
def test_int_literal_feeds_float_like_int_does(src: object, dst: object) -> None:
    assert ok(int, dst)
    assert ok(src, dst)


def test_mixed_literal_feeds_union_covering_each_value() -> None:
    assert ok(Literal["a"], Union[str, int])
    assert ok(Literal[1], Union[str, int])
    assert ok(Literal["a", 1], Union[str, int])
    assert not ok(Literal["a", 1.5], Union[str, int])


def test_optional_relations_are_one_way() -> None:
    assert ok(int, Optional[int]) and not ok(Optional[int], int)
    assert ok(None, Optional[int]) and not ok(Optional[int], None)


def test_table_schema_subset_rule_is_directional() -> None:
    assert ok(Wide, Narrow)
    assert not ok(Narrow, Wide)
    assert ok(IdNotNull, IdNullable)
    assert not ok(IdNullable, IdNotNull)


# -- the rules at work on real workflows ----------------------------------------------------

def test_workflow_int_output_feeds_float_input_as_float() -> None:
    seen: list[type] = []

    @sterna.task(name="compat.make")
    def make(n: int) -> int:
        return n * 2

    @sterna.task(name="compat.use")
    def use(x: float) -> float:
        seen.append(type(x))
        return x / 4

    @sterna.workflow
    def pipeline(n: int = 1) -> float:
        return use(x=make(n=n))

    assert pipeline(n=3) == 1.5
    assert seen == [float]


def test_workflow_float_output_cannot_feed_int_input() -> None:
    @sterna.task(name="compat.ratio")
    def ratio(n: int) -> float:
        return n / 2

    @sterna.task(name="compat.count")
    def count(x: int) -> int:
        return x

    with pytest.raises(sterna.EdgeTypeError) as info:
        @sterna.workflow
        def pipeline(n: int = 1) -> int:
            return count(x=ratio(n=n))

    message = str(info.value)
    assert "task 'compat.ratio' output 'o0' of type float" in message
    assert "task 'compat.count' input 'x' of type int" in message
    assert isinstance(info.value, sterna.WorkflowDefinitionError)


def test_workflow_optional_output_cannot_feed_required_input() -> None:
    @sterna.task(name="compat.maybe")
    def maybe(n: int) -> Optional[int]:
        return n or None

    @sterna.task(name="compat.need")
    def need(x: int) -> int:
        return x

    with pytest.raises(sterna.EdgeTypeError, match=r"of type int \| None cannot feed"):
        @sterna.workflow
        def pipeline(n: int = 1) -> int:
            return need(x=maybe(n=n))


def test_workflow_table_schema_edges() -> None:
    @sterna.task(name="compat.load")
    def load(n: int) -> Narrow:
        return pa.Table.from_pylist([{"id": n, "name": "a"}], schema=NARROW)

    @sterna.task(name="compat.ids")
    def ids(rows: IdNotNull) -> int:
        return rows.num_rows

    @sterna.task(name="compat.scores")
    def scores(rows: Wide) -> int:
        return rows.num_rows

    @sterna.workflow
    def fine(n: int = 1) -> int:
        return ids(rows=load(n=n))

    assert fine(n=5) == 1

    with pytest.raises(sterna.EdgeTypeError) as info:
        @sterna.workflow
        def missing_column(n: int = 1) -> int:
            return scores(rows=load(n=n))

    assert "pa.Table[id: int64 not null, name: string] cannot feed" in str(info.value)
    assert "score: double" in str(info.value)
