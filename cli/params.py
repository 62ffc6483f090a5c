"""Click parameter types and output formatting driven by sterna types."""

from __future__ import annotations

import datetime
import enum
import sys
from typing import Any

import click

from sterna.core.interface import Param
from sterna.typesys.check import short_repr
from sterna.typesys.convert import from_text
from sterna.typesys.types import (
    DataclassT,
    DictT,
    EnumT,
    ListT,
    LiteralT,
    PathT,
    PlainT,
    SType,
    TableT,
    TupleT,
    schema_text,
)


class SternaParamType(click.ParamType):
    """Parses one workflow input from text by its annotation."""

    def __init__(self, stype: SType) -> None:
        self.stype = stype
        self.name = stype.describe()

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return metavar(self.stype)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return from_text(self.stype, value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def metavar(stype: SType) -> str:
    """A short placeholder naming what the option takes."""
    if isinstance(stype, TableT):
        return "TABLE_FILE"
    if isinstance(stype, PathT):
        return stype.describe().upper()
    if isinstance(stype, (ListT, DictT, TupleT, DataclassT)):
        return "JSON"
    if isinstance(stype, (EnumT, LiteralT)):
        values = [m.name for m in stype.cls] if isinstance(stype, EnumT) else stype.values
        return "[" + "|".join(str(v) for v in values) + "]"
    if isinstance(stype, PlainT):
        return stype.describe().upper()
    return "VALUE"


def input_option(param: Param) -> click.Option:
    """A ``--name`` option (``--name-with-dashes`` too) for one workflow input."""
    names = [f"--{param.name}"]
    if "_" in param.name:
        names.append(f"--{param.name.replace('_', '-')}")
    default = "" if param.required else f"  [default: {default_text(param.default)}]"
    return click.Option(
        [*names, param.name], type=SternaParamType(param.stype), required=param.required,
        default=None, help=f"{param.stype.describe()}{default}")


def default_text(value: Any) -> str:
    """A default as it would be typed on the command line."""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return f"{value.total_seconds():g}s"
    if value is None:
        return "none"
    return short_repr(value)


def format_output(value: Any) -> str:
    """An output for the terminal: tables summarised (rows, columns, schema), never dumped."""
    pa = sys.modules.get("pyarrow")
    if pa is not None and isinstance(value, pa.Table):
        return (f"pa.Table: {value.num_rows:,} rows x {value.num_columns} columns "
                f"({schema_text(value.schema)})")
    if isinstance(value, str):
        return value
    text = repr(value)
    return text if len(text) <= 2000 else text[:1997] + "..."
