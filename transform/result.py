"""What every transform returns: tables built on their declared schemas, quarantine rows and unknown statuses.

Transforms collect plain rows in a `TableRows` and build each table once, with its declared schema (never
an inferred one), so a payload that would not fit is caught here as a quarantine row, not by the warehouse.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import pyarrow as pa

from transform.schemas import ALL_SPECS
from transform.values import payload_bytes, sha256_hex, storable

EXCERPT_CHARS: Final = 200
_EMAIL: Final = re.compile(r"[^@\s\"',;:]+@[^@\s\"',;:]+")
_URL: Final = re.compile(r"https?://[^\s\"']+")


@dataclass
class TransformResult:
    """Tables by name (only those the transform produces) and how often each undocumented status was seen."""

    tables: dict[str, pa.Table] = field(default_factory=dict)
    unknown_statuses: Counter[tuple[str, str]] = field(default_factory=Counter)  # (provider, status) -> count

    def table(self, name: str) -> pa.Table:
        """The named table, or an empty one with its declared schema when this result has none."""
        table = self.tables.get(name)
        return table if table is not None else ALL_SPECS[name].schema.empty_table()

    @property
    def quarantine(self) -> pa.Table:
        return self.table("quarantine")

    def unknown_status_counts(self) -> dict[str, int]:
        """The unknown statuses as "provider:status" -> count, ready for a run summary's JSON."""
        return {f"{provider}:{status}": n for (provider, status), n in sorted(self.unknown_statuses.items())}

    def row_counts(self) -> dict[str, int]:
        return {name: table.num_rows for name, table in sorted(self.tables.items())}

    def __add__(self, other: TransformResult) -> TransformResult:
        return concat_results((self, other))


def concat_results(results: Iterable[TransformResult]) -> TransformResult:
    """One result holding the rows of several (e.g. every batch of one flow run)."""
    parts: dict[str, list[pa.Table]] = {}
    unknown: Counter[tuple[str, str]] = Counter()
    for result in results:
        for name, table in result.tables.items():
            parts.setdefault(name, []).append(table)
        unknown.update(result.unknown_statuses)
    tables = {name: pa.concat_tables(tables) for name, tables in parts.items()}
    return TransformResult(tables=tables, unknown_statuses=unknown)


def _excerpt(payload: object) -> str:
    """The start of a payload with anything that looks like an e-mail or a URL (maybe presigned) blanked."""
    text = payload_bytes(payload)[: EXCERPT_CHARS * 4].decode("utf-8", "replace")[:EXCERPT_CHARS]
    return storable(_URL.sub("<url>", _EMAIL.sub("<email>", text)))


class TableRows:
    """Rows being collected for one transform call; `result()` builds the declared tables."""

    def __init__(self, observed_at: datetime, *tables: str) -> None:
        if observed_at.tzinfo is None or observed_at.utcoffset() is None:
            raise ValueError("observed_at must be an aware datetime (UTC)")
        self.observed_at = observed_at
        self._rows: dict[str, list[dict[str, Any]]] = {name: [] for name in (*tables, "quarantine")}
        self.unknown_statuses: Counter[tuple[str, str]] = Counter()

    def add(self, table: str, row: dict[str, Any]) -> None:
        row.setdefault("observed_at", self.observed_at)
        self._rows[table].append(row)

    def extend(self, table: str, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.add(table, row)

    def quarantine(
        self,
        *,
        provider: str,
        entity: str,
        entity_id: str | None,
        stage: str,
        reason: str,
        detail: str,
        payload: object,
        excerpt: bool,
    ) -> None:
        """Record a rejected payload. `excerpt=False` for anything that may hold PII or a credential."""
        self.add(
            "quarantine",
            {
                "provider": provider,
                "entity": entity,
                "entity_id": storable(entity_id) if entity_id else "(missing)",
                "stage": stage,
                "reason": reason,
                "detail": storable(detail),
                "payload_sha256": sha256_hex(payload),
                "payload_excerpt": _excerpt(payload) if excerpt else None,
            },
        )

    def result(self) -> TransformResult:
        tables = {name: build_table(name, _deduplicated(name, rows)) for name, rows in self._rows.items()}
        return TransformResult(tables=tables, unknown_statuses=Counter(self.unknown_statuses))


def _deduplicated(name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per primary key within a batch, merged the way the warehouse merges across batches.

    "current": later rows win column by column, nulls keep what an earlier row saw; otherwise the first row
    wins (a duplicate inside one replace group is a partner error the transform has already reported).
    """
    spec = ALL_SPECS[name]
    by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
    key_columns = spec.primary_key
    for row in rows:
        primary_key = tuple(map(row.get, key_columns))
        earlier = by_key.get(primary_key)
        if earlier is None:
            by_key[primary_key] = row
        elif spec.merge == "current":
            by_key[primary_key] = {**earlier, **{k: v for k, v in row.items() if v is not None}}
    return list(by_key.values())


def build_table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    """Rows -> the declared table; a column the contract lacks or a null in a required column is a bug."""
    schema = ALL_SPECS[name].schema
    declared = frozenset(schema.names)
    # every row's keys within the contract (a C-level subset test per row); named only when one is not
    fits = all(map(declared.issuperset, rows))
    unexpected = set() if fits else set().union(*(row.keys() for row in rows)) - declared
    if unexpected:
        raise KeyError(f"{name}: columns {sorted(unexpected)} are not in the declared schema")
    return _checked(name, pa.Table.from_pylist(rows, schema=schema))


def _checked(name: str, table: pa.Table) -> pa.Table:
    """Arrow does not enforce non-nullable fields on construction; the contract does, here."""
    for column, spec in zip(table.columns, table.schema, strict=True):
        if not spec.nullable and column.null_count:
            raise ValueError(f"{name}.{spec.name} is required but {column.null_count} rows have none")
    return table


def table_from_columns(name: str, columns: Mapping[str, list[Any]], constants: Mapping[str, Any]) -> pa.Table:
    """Column lists (plus constants for whole-batch columns) -> the declared table, without row dicts."""
    schema = ALL_SPECS[name].schema
    length = len(next(iter(columns.values()))) if columns else 0
    arrays = []
    for spec in schema:
        if spec.name in columns:
            arrays.append(pa.array(columns[spec.name], type=spec.type))
        else:
            arrays.append(pa.array([constants.get(spec.name)] * length, type=spec.type))
    return _checked(name, pa.Table.from_arrays(arrays, schema=schema))
