"""resolve(): every supported annotation maps to the right sterna type and description.

Unsupported annotations fail with ``UnsupportedTypeError`` and a message that
says what is wrong; any other class falls back to a pickled value with a
``SternaWarning`` emitted once per type.
"""

# Optional[...] and typing.List/Dict are what these tests are about.
# ruff: noqa: UP006, UP045

import dataclasses
import datetime
import enum
import typing
import warnings
from typing import Annotated, Any, Literal, Optional, TypeVar, Union

import pyarrow as pa
import pytest

import sterna
from sterna.typesys.resolve import resolve
from sterna.typesys.types import (
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


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Point:
    x: float
    y: float


@dataclasses.dataclass
class Segment:
    start: Point
    end: Point
    label: Optional[str]
    tags: dict[str, list[int]]


@dataclasses.dataclass
class TreeNode:
    value: int
    children: list["TreeNode"]


@dataclasses.dataclass
class DanglingRef:
    value: "NotDefinedAnywhere"  # type: ignore[name-defined]  # noqa: F821


@dataclasses.dataclass
class BadKeys:
    ok: int
    counts: dict[int, str]


SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), ("name", pa.string())])
T = TypeVar("T")


RESOLVED: list[tuple[object, type[SType], str]] = [
    (int, PlainT, "int"),
    (float, FloatT, "float"),
    (str, PlainT, "str"),
    (bool, PlainT, "bool"),
    (bytes, PlainT, "bytes"),
    (None, NoneT, "None"),
    (type(None), NoneT, "None"),
    (datetime.datetime, PlainT, "datetime"),
    (datetime.date, PlainT, "date"),
    (datetime.timedelta, PlainT, "timedelta"),
    (Color, EnumT, "Color"),
    (list[int], ListT, "list[int]"),
    (typing.List[str], ListT, "list[str]"),
    (list, ListT, "list[Any]"),
    (list[list[float]], ListT, "list[list[float]]"),
    (dict[str, int], DictT, "dict[str, int]"),
    (typing.Dict[str, float], DictT, "dict[str, float]"),
    (dict[str, list[Point]], DictT, "dict[str, list[Point]]"),
    (dict, DictT, "dict[Any, Any]"),
    (tuple[int, str], TupleT, "tuple[int, str]"),
    (tuple[int, ...], TupleT, "tuple[int, ...]"),
    (tuple[()], TupleT, "tuple[()]"),
    (tuple, TupleT, "tuple[Any, ...]"),
    (Optional[int], UnionT, "int | None"),
    (Union[int, str], UnionT, "int | str"),
    (int | str | None, UnionT, "int | str | None"),
    (Union[float, list[str]], UnionT, "float | list[str]"),
    (Literal["a", "b"], LiteralT, "Literal['a', 'b']"),
    (Literal[1, True], LiteralT, "Literal[1, True]"),
    (Literal[Color.RED], LiteralT, "Literal[<Color.RED: 'red'>]"),
    (Point, DataclassT, "Point"),
    (Segment, DataclassT, "Segment"),
    (Optional[Point], UnionT, "Point | None"),
    (Any, AnyT, "Any"),
    (list[Any], ListT, "list[Any]"),
    (pa.Table, TableT, "pa.Table"),
    (Annotated[pa.Table, SCHEMA], TableT, "pa.Table[id: int64 not null, name: string]"),
    (Annotated[pa.Table, "just a note"], TableT, "pa.Table"),
    (list[Annotated[pa.Table, SCHEMA]], ListT, "list[pa.Table[id: int64 not null, name: string]]"),
    (sterna.File, PathT, "File"),
    (sterna.Directory, PathT, "Directory"),
    (list[sterna.File], ListT, "list[File]"),
    (Annotated[int, "metadata"], PlainT, "int"),
]


@pytest.mark.parametrize(("annotation", "kind", "text"), RESOLVED, ids=[r[2] for r in RESOLVED])
def test_resolve_gives_kind_and_description(
    annotation: object, kind: type[SType], text: str,
) -> None:
    stype = resolve(annotation)
    assert type(stype) is kind
    assert stype.describe() == text
    assert repr(stype) == f"<sterna type {text}>"


def test_plain_types_keep_their_class() -> None:
    for cls in (int, str, bool, bytes, datetime.datetime, datetime.date, datetime.timedelta):
        stype = resolve(cls)
        assert isinstance(stype, PlainT)
        assert stype.cls is cls
    assert resolve(float).cls is float
    enum_type = resolve(Color)
    assert isinstance(enum_type, EnumT)
    assert enum_type.cls is Color


def test_container_parts_are_resolved() -> None:
    listed = resolve(list[Optional[int]])
    assert isinstance(listed, ListT)
    assert isinstance(listed.item, UnionT)
    assert [type(o) for o in listed.item.options] == [PlainT, NoneT]

    mapped = resolve(dict[str, float])
    assert isinstance(mapped, DictT)
    assert isinstance(mapped.key_type, PlainT) and mapped.key_type.cls is str
    assert isinstance(mapped.value, FloatT)

    fixed = resolve(tuple[int, str, float])
    assert isinstance(fixed, TupleT)
    assert not fixed.variadic
    assert [i.describe() for i in fixed.items] == ["int", "str", "float"]

    variadic = resolve(tuple[bytes, ...])
    assert isinstance(variadic, TupleT)
    assert variadic.variadic
    assert [i.describe() for i in variadic.items] == ["bytes"]

    empty = resolve(tuple[()])
    assert isinstance(empty, TupleT)
    assert empty.items == () and not empty.variadic


def test_literal_keeps_its_values() -> None:
    stype = resolve(Literal["x", 2, Color.BLUE])
    assert isinstance(stype, LiteralT)
    assert stype.values == ("x", 2, Color.BLUE)


def test_dataclass_fields_are_resolved_deeply() -> None:
    stype = resolve(Segment)
    assert isinstance(stype, DataclassT)
    assert stype.cls is Segment
    assert list(stype.fields) == ["start", "end", "label", "tags"]
    assert isinstance(stype.fields["start"], DataclassT)
    assert stype.fields["start"].cls is Point
    assert isinstance(stype.fields["start"].fields["x"], FloatT)
    assert stype.fields["label"].describe() == "str | None"
    assert stype.fields["tags"].describe() == "dict[str, list[int]]"
    assert stype.deep


def test_table_schema_is_kept() -> None:
    typed = resolve(Annotated[pa.Table, SCHEMA])
    assert isinstance(typed, TableT)
    assert typed.schema is not None and typed.schema.equals(SCHEMA)
    assert typed.deep
    untyped = resolve(pa.Table)
    assert isinstance(untyped, TableT)
    assert untyped.schema is None


def test_path_types_know_their_class() -> None:
    file_type = resolve(sterna.File)
    dir_type = resolve(sterna.Directory)
    assert isinstance(file_type, PathT) and file_type.cls is sterna.File
    assert isinstance(dir_type, PathT) and dir_type.cls is sterna.Directory
    assert file_type != dir_type


def test_resolve_is_memoised() -> None:
    assert resolve(list[dict[str, int]]) is resolve(list[dict[str, int]])
    assert resolve(Segment) is resolve(Segment)


def test_union_order_is_kept_whatever_was_resolved_before() -> None:
    """typing says Union[A, B] == Union[B, A]; the memo must not hand back the other order."""

    class Alpha:
        pass

    class Beta:
        pass

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sterna.SternaWarning)
        a, b = Alpha.__qualname__, Beta.__qualname__
        assert resolve(Union[Beta, Alpha]).describe() == f"{b} | {a}"
        assert resolve(Union[Alpha, Beta]).describe() == f"{a} | {b}"


def test_literal_order_is_kept_whatever_was_resolved_before() -> None:
    assert resolve(Literal["order-b", "order-a"]).describe() == "Literal['order-b', 'order-a']"
    assert resolve(Literal["order-a", "order-b"]).describe() == "Literal['order-a', 'order-b']"


def test_unhashable_annotated_metadata_still_resolves() -> None:
    annotation = Annotated[int, ["unhashable", "metadata"]]
    with pytest.raises(TypeError):
        hash(annotation)
    assert resolve(annotation).describe() == "int"


@pytest.mark.parametrize(("left", "right"), [
    (Optional[int], int | None),
    (Optional[int], Union[None, int]),
    (Union[int, str], Union[str, int]),
    (list[int], typing.List[int]),
    (Annotated[pa.Table, SCHEMA], Annotated[pa.Table, SCHEMA, "doc"]),
    (float, Annotated[float, "unit: m"]),
])
def test_equivalent_annotations_give_equal_types(left: object, right: object) -> None:
    assert resolve(left) == resolve(right)
    assert hash(resolve(left)) == hash(resolve(right))


@pytest.mark.parametrize(("left", "right"), [
    (int, float),
    (int, bool),
    (list[int], list[str]),
    (tuple[int, ...], tuple[int]),
    (Literal[1], Literal[True]),
    (Optional[int], int),
    (pa.Table, Annotated[pa.Table, SCHEMA]),
    (sterna.File, sterna.Directory),
    (dict[str, int], dict[str, float]),
])
def test_different_annotations_give_different_types(left: object, right: object) -> None:
    assert resolve(left) != resolve(right)


def test_container_types_of_distinct_same_named_classes_differ() -> None:
    """``key()`` promises: equal keys mean the same type; list[A] and list[B] are not."""
    other_point = dataclasses.make_dataclass("Point", [("x", float), ("y", float)])
    assert other_point is not Point
    assert resolve(other_point).describe() == resolve(Point).describe() == "Point"
    assert resolve(other_point) != resolve(Point)
    assert resolve(list[other_point]) != resolve(list[Point])
    assert resolve(dict[str, other_point]) != resolve(dict[str, Point])
    assert resolve(Optional[other_point]) != resolve(Optional[Point])


# -- unsupported annotations ---------------------------------------------------------------

UNSUPPORTED: list[tuple[object, str]] = [
    (dict[int, str], "dict keys must be str"),
    (dict[float, int], "dict keys must be str"),
    (set[int], "set[int] is not supported"),
    (frozenset[str], "frozenset[str] is not supported"),
    (T, "~T is not a type sterna can represent"),
    (typing.Callable[[int], int], "Callable[[int], int] is not supported"),
    (typing.Callable, "Callable is not supported"),
    ("NotDefinedAnywhere", "unresolved forward reference 'NotDefinedAnywhere'"),
    (typing.ForwardRef("Missing"), "unresolved forward reference ForwardRef('Missing')"),
    (list[dict[int, str]], "dict keys must be str"),
    (Optional[set[int]], "set[int] is not supported"),
    (dict[str, T], "~T is not a type sterna can represent"),
    (Annotated[pa.Table, SCHEMA, SCHEMA], "give at most one pa.schema"),
    (42, "42 is not a type sterna can represent"),
]


@pytest.mark.parametrize(("annotation", "fragment"), UNSUPPORTED,
                         ids=[f"{i}-{f[:24]}" for i, (_, f) in enumerate(UNSUPPORTED)])
def test_unsupported_annotations_raise(annotation: object, fragment: str) -> None:
    with pytest.raises(sterna.UnsupportedTypeError) as info:
        resolve(annotation)
    assert fragment in str(info.value)


def test_unsupported_type_error_is_a_definition_error() -> None:
    with pytest.raises(sterna.DefinitionError):
        resolve(set[int])
    with pytest.raises(sterna.SternaError):
        resolve(dict[int, int])


def test_dict_key_message_suggests_an_alternative() -> None:
    with pytest.raises(sterna.UnsupportedTypeError, match=r"use list\[tuple\[K, V\]\]"):
        resolve(dict[int, str])


def test_unsupported_message_lists_supported_kinds() -> None:
    with pytest.raises(sterna.UnsupportedTypeError) as info:
        resolve(set[int])
    for kind in ("list", "dict[str, T]", "Optional", "Literal", "dataclass", "pa.Table", "File"):
        assert kind in str(info.value)


def test_dataclass_with_unsupported_field_names_class_and_field() -> None:
    with pytest.raises(sterna.UnsupportedTypeError) as info:
        resolve(BadKeys)
    message = str(info.value)
    assert "dataclass BadKeys field 'counts'" in message
    assert "dict keys must be str" in message


def test_dataclass_with_unresolved_forward_ref_raises_unsupported() -> None:
    with pytest.raises(sterna.UnsupportedTypeError) as info:
        resolve(DanglingRef)
    assert "DanglingRef" in str(info.value)
    assert "NotDefinedAnywhere" in str(info.value)


def test_self_referential_dataclass_is_rejected_and_state_recovers() -> None:
    with pytest.raises(sterna.UnsupportedTypeError, match="TreeNode refers to itself"):
        resolve(TreeNode)
    # a failed resolution leaves nothing behind: a second try fails the same way
    with pytest.raises(sterna.UnsupportedTypeError, match="TreeNode refers to itself"):
        resolve(TreeNode)
    assert isinstance(resolve(Point), DataclassT)


# -- unsupported annotations on real tasks ---------------------------------------------------

def test_task_with_unsupported_input_names_function_and_parameter() -> None:
    with pytest.raises(sterna.UnsupportedTypeError) as info:
        @sterna.task
        def by_id(lookup: dict[int, str]) -> int:
            return len(lookup)

    message = str(info.value)
    assert "by_id" in message
    assert "parameter 'lookup'" in message
    assert "dict keys must be str" in message


@pytest.mark.parametrize(("annotation", "fragment"), [
    (set[int], "set[int] is not supported"),
    (T, "~T"),
    (typing.Callable[[int], int], "Callable[[int], int]"),
])
def test_task_with_unsupported_parameter_types(annotation: object, fragment: str) -> None:
    def fn(value):  # type: ignore[no-untyped-def]
        return 1

    fn.__annotations__ = {"value": annotation, "return": int}
    with pytest.raises(sterna.UnsupportedTypeError) as info:
        sterna.task(fn)
    assert "parameter 'value'" in str(info.value)
    assert fragment in str(info.value)


def test_task_with_unsupported_return_names_return_annotation() -> None:
    with pytest.raises(sterna.UnsupportedTypeError) as info:
        @sterna.task
        def uniq(items: list[int]) -> set[int]:
            return set(items)

    assert "uniq" in str(info.value)
    assert "return annotation" in str(info.value)
    assert "set[int]" in str(info.value)


def test_task_with_unresolved_forward_ref_fails_at_definition() -> None:
    with pytest.raises(sterna.DefinitionError) as info:
        @sterna.task
        def later(row: "RowNotDefined") -> int:  # type: ignore[name-defined]  # noqa: F821
            return 1

    assert "later" in str(info.value)
    assert "RowNotDefined" in str(info.value)


def test_task_with_dataclass_holding_forward_ref_raises_unsupported() -> None:
    with pytest.raises(sterna.UnsupportedTypeError) as info:
        @sterna.task
        def take(value: DanglingRef) -> int:
            return 1

    assert "NotDefinedAnywhere" in str(info.value)


# -- pickled fallback -----------------------------------------------------------------------

def _sterna_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, sterna.SternaWarning)]


def test_other_class_is_pickled_with_one_warning_naming_it() -> None:
    class Model:
        pass

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        stype = resolve(Model)
        resolve(Model)
        resolve(list[Model])
        resolve(Optional[Model])
    assert isinstance(stype, PickleT)
    assert stype.cls is Model
    assert stype.describe() == Model.__qualname__
    messages = _sterna_warnings(record)
    assert len(messages) == 1
    assert f"{Model.__module__}.{Model.__qualname__}" in messages[0]
    assert "pickled" in messages[0]


def test_each_pickled_type_warns_once() -> None:
    class First:
        pass

    class Second:
        pass

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(3):
            resolve(dict[str, First])
            resolve(tuple[Second, ...])
    messages = _sterna_warnings(record)
    assert len(messages) == 2
    assert any(First.__qualname__ in m for m in messages)
    assert any(Second.__qualname__ in m for m in messages)


def test_pickled_type_on_tasks_warns_once_per_type() -> None:
    class Booster:
        pass

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")

        @sterna.task
        def train(n: int) -> Booster:
            return Booster()

        @sterna.task
        def predict(model: Booster, rows: list[Booster]) -> int:
            return 0

    messages = _sterna_warnings(record)
    assert len(messages) == 1
    assert "Booster" in messages[0]
    assert isinstance(train(n=1), Booster)
    assert predict(model=Booster(), rows=[]) == 0


def test_supported_types_do_not_warn() -> None:
    class Mode(enum.Enum):
        FAST = 1

    @dataclasses.dataclass
    class Config:
        mode: Mode
        when: datetime.datetime

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        resolve(Mode)
        resolve(Config)
        resolve(list[Config])
        resolve(pa.Table)
        resolve(sterna.File)
        resolve(sterna.Directory)
    assert _sterna_warnings(record) == []


def test_pickled_warning_is_a_user_warning() -> None:
    class Opaque:
        pass

    with pytest.warns(sterna.SternaWarning, match="Opaque"):
        resolve(Opaque)
    assert issubclass(sterna.SternaWarning, UserWarning)
