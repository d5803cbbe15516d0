"""The warehouse reconciled against the sandbox's ground truth: contents row by row, kits placed, duplicates.

`reconcile_content` (tests/reliability/content.py) is the check behind "rows lost": every partner-facing table
compared row by row and column by column with what the sandbox's partners showed. `reconcile` places each kit
(loaded, quarantined, pending) to explain a faulted run's partial state; `contents` and `lake_contents`
compare two data directories (a crashed-then-repaired copy with an uninterrupted one).

Expectations come from the sandbox's `World` at a virtual moment (tests/flows/truth.py), never from kitsync's
own plan, so a kit the planner forgot counts as lost rather than as "not planned".
"""

# ruff: noqa: S608 - table and column names in the SQL below come from transform/schemas.py, quoted

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from sandbox.model import World, status_at
from tests.flows.truth import our_samples, registered_kits, results_visible, sample_is_final
from tests.reliability.content import ContentReport, Key, reconcile_content
from tests.reliability.figures import FIGURES
from transform.schemas import TABLES
from warehouse.duck import connect_readonly, quote_ident
from warehouse.lake import list_files, resolve_root

__all__ = [
    "ContentReport",
    "Key",
    "Reconciliation",
    "contents",
    "duplicates",
    "lake_contents",
    "reconcile",
    "reconcile_content",
    "record_figures",
]

# Runs differ in these by nature (their ids and times), so contents are compared without them.
NOT_COMPARED_TABLES = frozenset({"sync_runs"})


def _rows(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    connection = connect_readonly(db)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def duplicates(db: Path) -> dict[str, int]:
    """Rows beyond one per primary key, for each declared table that has any."""
    found = {}
    for name, spec in TABLES.items():
        key = ", ".join(quote_ident(c) for c in spec.primary_key)
        [(total, distinct)] = _rows(db, f"SELECT count(*), count(DISTINCT ({key})) FROM {quote_ident(name)}")
        if total != distinct:
            found[name] = total - distinct
    return found


def contents(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every compared table's rows in a stable order, without observation times (a re-observation is no
    change)."""
    result = {}
    for name, spec in TABLES.items():
        if name in NOT_COMPARED_TABLES:
            continue
        columns = ", ".join(quote_ident(c) for c in spec.schema.names if c != spec.observed_at)
        result[name] = _rows(db, f"SELECT {columns} FROM {quote_ident(name)} ORDER BY ALL")
    return result


def lake_contents(data_dir: Path | str) -> dict[str, set[str]]:
    """The distinct rows of each lake table (observation times and run records aside): what the lake says,
    whichever files say it. A batch written twice (before and after a crash) is the same content."""
    lake = resolve_root(data_dir)
    result: dict[str, set[str]] = {}
    specs = {**TABLES}
    from transform.schemas import RAW_TABLES

    specs.update(RAW_TABLES)
    for name, spec in specs.items():
        if name in NOT_COMPARED_TABLES:
            continue
        columns = [c for c in spec.schema.names if c != spec.observed_at]
        rows: set[str] = set()
        for lake_file in list_files(lake, name):
            table = pq.read_table(lake.full(lake_file.path), filesystem=lake.filesystem).select(columns)
            rows.update(map(repr, zip(*(table.column(c).to_pylist() for c in columns), strict=True)))
        result[name] = rows
    return result


@dataclass
class Reconciliation:
    """Where every kit the partners show stands in the warehouse."""

    expected: int = 0
    loaded: int = 0
    lost: list[str] = field(default_factory=list)  # not in kits at all
    results_loaded: set[str] = field(default_factory=set)
    results_quarantined: set[str] = field(default_factory=set)
    results_pending: set[str] = field(default_factory=set)  # left for the next run
    stale_status: list[str] = field(default_factory=list)  # the partner's current status never recorded
    duplicates: dict[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not (self.lost or self.results_quarantined or self.results_pending or self.stale_status)

    def summary(self) -> str:
        return (
            f"{self.expected} kits expected, {self.loaded} loaded, lost {self.lost[:5]}, "
            f"results: {len(self.results_loaded)} loaded, {len(self.results_quarantined)} quarantined "
            f"{sorted(self.results_quarantined)[:5]}, {len(self.results_pending)} pending "
            f"{sorted(self.results_pending)[:5]}; stale statuses {self.stale_status[:5]}; "
            f"duplicates {self.duplicates}"
        )


def reconcile(db: Path, world: World, at: datetime) -> Reconciliation:
    """Compare the published warehouse with what the partners show at `at`."""
    report = Reconciliation(duplicates=duplicates(db))
    kits = set(_column(db, "SELECT provider || '/' || kit_id FROM kits"))
    statuses = set(
        _pairs(
            db, "SELECT provider || '/' || entity_id, partner_status FROM status_events WHERE entity = 'kit'"
        )
    )
    quarantined = set(_column(db, "SELECT DISTINCT provider || '/' || entity_id FROM quarantine"))
    results = set(_column(db, "SELECT 'biomesight/' || kit_id FROM results"))
    taxonomy = set(_column(db, "SELECT DISTINCT 'biomesight/' || kit_id FROM taxonomy"))
    details = set(
        _column(
            db,
            "SELECT 'gencove/' || kit_id FROM kits WHERE provider = 'gencove' AND metadata_json IS NOT NULL",
        )
    )
    deliverables = set(_column(db, "SELECT DISTINCT 'gencove/' || kit_id FROM deliverables"))

    def place(key: str, done: bool) -> None:
        if done:
            report.results_loaded.add(key)
        elif key in quarantined:
            report.results_quarantined.add(key)
        else:
            report.results_pending.add(key)

    for kit in registered_kits(world, at):
        key = f"biomesight/{kit.kit_id}"
        _expect(report, kits, key)
        change = status_at(kit.timeline, at)
        if change is not None and (key, change.status) not in statuses:
            report.stale_status.append(f"{key}: {change.status}")
        if results_visible(kit, at):
            place(key, key in results and key in taxonomy)
    for sample in our_samples(world, at):
        key = f"gencove/{sample.sample_id}"
        _expect(report, kits, key)
        change = status_at(sample.timeline, at)
        if change is not None and (key, change.status) not in statuses:
            report.stale_status.append(f"{key}: {change.status}")
        if sample_is_final(sample, at):
            place(key, key in details and (not sample.files or key in deliverables))
    return report


def _expect(report: Reconciliation, kits: set[str], key: str) -> None:
    report.expected += 1
    if key in kits:
        report.loaded += 1
    else:
        report.lost.append(key)


def _column(db: Path, sql: str) -> list[Any]:
    return [row[0] for row in _rows(db, sql)]


def _pairs(db: Path, sql: str) -> Iterable[tuple[Any, Any]]:
    return [(row[0], row[1]) for row in _rows(db, sql)]


def record_figures(report: ContentReport, duplicated: dict[str, int]) -> None:
    """Add a final content reconciliation to the printed figures: rows compared per table, rows lost (missing
    or wrong), rows the partners never showed, duplicate rows."""
    for name, table in report.tables.items():
        FIGURES.add("rows_reconciled", table.expected, what=name)
    FIGURES.add("rows_lost", report.rows_lost)
    FIGURES.add("rows_unexpected", report.count("unexpected"))
    FIGURES.add("duplicates", sum(duplicated.values()))
