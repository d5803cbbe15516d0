"""How query answers are shown on a terminal: an aligned text table, CSV or JSON lines of one arrow table."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import pyarrow as pa

OutputFormat = Literal["table", "csv", "json"]
_MAX_CELL = 60


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return (
            f"{value:.4g}"
            if abs(value) < 1e-3 or abs(value) >= 1e6
            else f"{value:,.3f}".rstrip("0").rstrip(".")
        )
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    text = str(value)
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def render(table: pa.Table, output: OutputFormat = "table", *, max_rows: int | None = None) -> str:
    """`table` as text; `max_rows` cuts a long table display (never CSV or JSON, which are for machines)."""
    rows = table.to_pylist()
    if output == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=table.column_names, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
    if output == "json":
        return "".join(
            json.dumps({k: _json_value(v) for k, v in row.items()}, ensure_ascii=False) + "\n" for row in rows
        )
    shown = rows if max_rows is None else rows[:max_rows]
    names = table.column_names
    cells = [[_cell(row[name]) for name in names] for row in shown]
    widths = [max([len(name), *(len(line[i]) for line in cells)]) for i, name in enumerate(names)]
    numeric = [pa.types.is_integer(t) or pa.types.is_floating(t) for t in table.schema.types]

    def line(values: list[str]) -> str:
        return "  ".join(
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ).rstrip()

    out = [line(names), line(["-" * w for w in widths]), *(line(c) for c in cells)]
    hidden = len(rows) - len(shown)
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''}{f', {hidden} not shown' if hidden else ''})")
    return "\n".join(out) + "\n"
