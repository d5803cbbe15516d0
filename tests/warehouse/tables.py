"""Small table declarations, one per merge mode, and pure-Python references of what each merge yields."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from transform.schemas import TableSpec
from warehouse.duck import query, quote_ident
from warehouse.load import LoadReport, load

OBSERVED = pa.timestamp("us", tz="UTC")

KIT_STATE = TableSpec(
    name="kit_state",
    schema=pa.schema(
        [
            pa.field("provider", pa.string(), nullable=False),
            pa.field("kit_id", pa.string(), nullable=False),
            pa.field("status", pa.string()),
            pa.field("lab", pa.string()),
            pa.field("score", pa.float64()),
            pa.field("observed_at", OBSERVED, nullable=False),
        ]
    ),
    primary_key=("provider", "kit_id"),
    description="Latest known state of each kit.",
    merge="current",
)

STATUS_EVENTS = TableSpec(
    name="status_events",
    schema=pa.schema(
        [
            pa.field("provider", pa.string(), nullable=False),
            pa.field("kit_id", pa.string(), nullable=False),
            pa.field("status", pa.string(), nullable=False),
            pa.field("source", pa.string()),
            pa.field("observed_at", OBSERVED, nullable=False),
        ]
    ),
    primary_key=("provider", "kit_id", "status"),
    description="Each status a kit was seen in, first sighting.",
    merge="history",
)

TAXA = TableSpec(
    name="taxa",
    schema=pa.schema(
        [
            pa.field("provider", pa.string(), nullable=False),
            pa.field("kit_id", pa.string(), nullable=False),
            pa.field("taxon", pa.string(), nullable=False),
            pa.field("abundance", pa.float64()),
            pa.field("observed_at", OBSERVED, nullable=False),
        ]
    ),
    primary_key=("provider", "kit_id", "taxon"),
    description="Relative abundance of each taxon in a kit's latest result.",
    merge="replace",
    replace_key=("provider", "kit_id"),
)

SPECS: dict[str, TableSpec] = {spec.name: spec for spec in (KIT_STATE, STATUS_EVENTS, TAXA)}


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 22, hour, minute, tzinfo=UTC)


def rows_table(spec: TableSpec, rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist([dict(row) for row in rows], schema=spec.schema)


Row = dict[str, Any]


def table_rows(db_path: Path, table: str) -> list[Row]:
    """A table's full content in a canonical order, for exact comparisons."""
    return query(db_path, f"SELECT * FROM {quote_ident(table)} ORDER BY ALL").to_pylist()  # noqa: S608


def _sortable(value: Any) -> tuple[bool, Any]:
    return (value is None, value if value is not None else 0)


def _canonical(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> list[Row]:
    return sorted(
        ({c: row[c] for c in columns} for row in rows), key=lambda row: [_sortable(row[c]) for c in columns]
    )


def expect_current(spec: TableSpec, observations: Iterable[Mapping[str, Any]]) -> list[Row]:
    """Per key and column: the newest observation's value among those where the column is not null."""
    by_key: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for row in observations:
        by_key.setdefault(tuple(row[c] for c in spec.primary_key), []).append(row)
    result = []
    for rows in by_key.values():
        merged = {c: rows[0][c] for c in spec.primary_key}
        merged[spec.observed_at] = max(row[spec.observed_at] for row in rows)
        for column in spec.schema.names:
            if column in merged:
                continue
            seen = [(row[spec.observed_at], row[column]) for row in rows if row[column] is not None]
            merged[column] = max(seen)[1] if seen else None
        result.append(merged)
    return _canonical(result, spec.schema.names)


def expect_history(spec: TableSpec, observations: Iterable[Mapping[str, Any]]) -> list[Row]:
    """Per key: the earliest observation."""
    columns = spec.schema.names
    best: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for row in observations:
        key = tuple(row[c] for c in spec.primary_key)
        order = [row[spec.observed_at], *(_sortable(row[c]) for c in columns)]
        if key not in best or order < [
            best[key][spec.observed_at],
            *(_sortable(best[key][c]) for c in columns),
        ]:
            best[key] = row
    return _canonical(best.values(), columns)


def expect_replace(spec: TableSpec, observations: Iterable[Mapping[str, Any]]) -> list[Row]:
    """Per replace group: the rows observed at the group's newest time, one per key."""
    rows = list(observations)
    newest: dict[tuple[Any, ...], datetime] = {}
    for row in rows:
        group = tuple(row[c] for c in spec.replace_key)
        newest[group] = max(newest.get(group, row[spec.observed_at]), row[spec.observed_at])
    latest = [row for row in rows if row[spec.observed_at] == newest[tuple(row[c] for c in spec.replace_key)]]
    return expect_history(spec, latest)


EXPECT = {"current": expect_current, "history": expect_history, "replace": expect_replace}


def expected(spec: TableSpec, observations: Iterable[Mapping[str, Any]]) -> list[Row]:
    return EXPECT[spec.merge](spec, observations)


def db_of(root: Path) -> Path:
    """The published warehouse beside a test lake (the flows' layout: {data}/warehouse)."""
    return root / "warehouse" / "kitsync.duckdb"


def load_lake(root: Path, specs: Mapping[str, TableSpec] = SPECS, **options: Any) -> LoadReport:
    """Load without the project's views: they need the project's tables, these tests declare their own."""
    options.setdefault("views_dir", root / "no-views")
    return load(root, db_of(root), specs, **options)
