"""What the next sync must do, derived from the warehouse: no separate state file to drift out of step.

Every answer comes from the tables the last load published: a kit is polled while its latest status is not
final, its results are fetched while they are missing, and Gencove's listing resumes from the newest
`modified` seen. Deriving this from loaded data means a crash anywhere before the load simply leaves the work
in the plan for the next run.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from warehouse.duck import connect_readonly, quote_ident

# The tables whose rows tell the planner a kit's work is done (polled, detailed, its results fetched). A batch
# writes them last (warehouse/batches.py), so a batch cut short by a crash looks undone and is fetched again.
DONE_TABLES = ("status_events", "kits", "deliverables", "taxonomy", "results", "report_pdfs")
# Every table the planner reads; before the first load they do not exist and the plan is empty.
_REQUIRED_TABLES = (*DONE_TABLES, "sync_runs", "status_map")


@dataclass(frozen=True)
class KnownStatus:
    """The latest status the warehouse holds for one order or kit."""

    partner_status: str
    partner_date: datetime


@dataclass
class BiomesightPlan:
    """Biomesight work: orders and kits to poll (not final), kits missing JSON results or taxonomy."""

    orders_to_poll: list[str] = field(default_factory=list)
    kits_to_poll: list[str] = field(default_factory=list)
    kits_missing_results: list[str] = field(default_factory=list)
    kits_missing_taxonomy: list[str] = field(default_factory=list)
    kits_missing_pdf: list[str] = field(default_factory=list)
    # (entity, id) -> latest status, of the orders and kits to poll (the rest are final: nothing to compare)
    known: dict[tuple[str, str], KnownStatus] = field(default_factory=dict)


@dataclass
class GencovePlan:
    """Gencove work: where each project's listing resumes, and final samples whose details are missing."""

    cursors: dict[str, datetime] = field(default_factory=dict)  # project id -> newest `modified` loaded
    # sample id -> project id: final samples without details, and samples last seen in an unknown status
    samples_missing_details: dict[str, str] = field(default_factory=dict)
    details_fetched: set[str] = field(default_factory=set)
    known: dict[str, KnownStatus] = field(default_factory=dict)  # sample id -> latest


def _open(db_path: str | os.PathLike[str]) -> duckdb.DuckDBPyConnection | None:
    """The published warehouse, or None before the first load created it with every planner table."""
    if not Path(db_path).exists():
        return None
    connection = connect_readonly(db_path)
    present = {
        row[0] for row in connection.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    if not set(_REQUIRED_TABLES) <= present:
        connection.close()
        return None
    return connection


# Tracked orders and kits (the platform told us about them: export, own client; or a partner pushed them)
# whose latest polled status is not final, with that status. Filtering in SQL keeps the plan's cost with
# what is in flight: a warehouse tracking 100k delivered kits hands Python only the few thousand moving.
# The platform export's own statuses never make one final, but when an entity has no other status yet,
# its latest imported one is what the poll is compared with: an order still "Pending" on the date the
# export gave was otherwise a "change" in every hourly run, landed again and dropped again by the load (the
# history merge keeps the import's earlier observation of the same key), and no run was ever quiet.
_BIOMESIGHT_TO_POLL = """
WITH latest AS (
    SELECT
        entity,
        entity_id,
        arg_max(partner_status, partner_date) FILTER (WHERE source <> 'import') AS status,
        max(partner_date) FILTER (WHERE source <> 'import') AS date,
        arg_max(partner_status, partner_date) FILTER (WHERE source = 'import') AS imported_status,
        max(partner_date) FILTER (WHERE source = 'import') AS imported_date
    FROM status_events
    WHERE provider = 'biomesight'
    GROUP BY entity, entity_id
),
tracked AS (
    SELECT 'order' AS entity, order_id AS entity_id FROM orders WHERE provider = 'biomesight'
    UNION
    SELECT 'kit', kit_id FROM kits WHERE provider = 'biomesight'
    UNION
    SELECT entity, entity_id FROM status_events WHERE provider = 'biomesight'
)
SELECT
    t.entity,
    t.entity_id,
    coalesce(l.status, l.imported_status),
    CASE WHEN l.status IS NULL THEN l.imported_date ELSE l.date END
FROM tracked AS t
LEFT JOIN latest AS l ON l.entity = t.entity AND l.entity_id = t.entity_id
WHERE NOT EXISTS (
    SELECT 1 FROM status_map AS m
    WHERE m.provider = 'biomesight' AND m.is_final AND m.entity = t.entity AND m.partner_status = l.status
)
ORDER BY t.entity, t.entity_id
"""

_FINAL_STATUSES = """
SELECT entity, partner_status FROM status_map WHERE provider = ? AND is_final
"""

# Kits whose latest status says results are ready, with what each lacks. `every_ready` keeps them all (a
# backfill's refetch covers them all); the planner gets only the kits lacking something it will fetch (a PDF
# counts only when PDFs are fetched): a few among the 100k whose results are loaded.
_READY_BIOMESIGHT_KITS = """
WITH latest AS (
    SELECT entity_id AS kit_id, arg_max(stage, partner_date) AS stage
    FROM status_events
    WHERE provider = 'biomesight' AND entity = 'kit' AND source <> 'import'
    GROUP BY entity_id
),
missing AS (
    SELECT
        l.kit_id,
        r.kit_id IS NULL AS missing_results,
        NOT EXISTS (SELECT 1 FROM taxonomy AS t WHERE t.provider = 'biomesight' AND t.kit_id = l.kit_id)
            AS missing_taxonomy,
        NOT EXISTS (SELECT 1 FROM report_pdfs AS p WHERE p.provider = 'biomesight' AND p.kit_id = l.kit_id)
            AS missing_pdf
    FROM latest AS l
    LEFT JOIN results AS r ON r.provider = 'biomesight' AND r.kit_id = l.kit_id
    WHERE l.stage = 'results_ready'
)
SELECT * FROM missing
WHERE $every_ready OR missing_results OR missing_taxonomy OR ($with_pdf AND missing_pdf)
ORDER BY kit_id
"""


def biomesight_plan(db_path: str | os.PathLike[str], *, with_pdf: bool = False) -> BiomesightPlan:
    """Orders and kits that are not final yet, and ready kits whose results or taxonomy (and, `with_pdf`,
    PDF report) are not loaded."""
    plan = BiomesightPlan()
    connection = _open(db_path)
    if connection is None:
        return plan
    with connection:
        for entity, entity_id, status, date in connection.execute(_BIOMESIGHT_TO_POLL).fetchall():
            if status is not None:
                plan.known[(entity, entity_id)] = KnownStatus(status, date)
            (plan.orders_to_poll if entity == "order" else plan.kits_to_poll).append(entity_id)
        for kit_id, missing_results, missing_taxonomy, missing_pdf in connection.execute(
            _READY_BIOMESIGHT_KITS, {"every_ready": False, "with_pdf": with_pdf}
        ).fetchall():
            if missing_results:
                plan.kits_missing_results.append(kit_id)
            if missing_taxonomy:
                plan.kits_missing_taxonomy.append(kit_id)
            if with_pdf and missing_pdf:
                plan.kits_missing_pdf.append(kit_id)
    return plan


# Where a project's listing resumes: the newest `modified` its keyset listings handed out, as the runs
# recorded it (sync_runs counts: listed_through). Not the newest `modified` in kits: a sample's details, a
# webhook's re-query or a backfill's creation window show newer values of samples the listing never reached,
# and resuming past them skipped every sample changed in between. Warehouses from before this record fall
# back to kits, once.
_GENCOVE_LISTED = """
SELECT max(CAST(json_extract_string(counts_json, $path) AS TIMESTAMPTZ)) FROM sync_runs
WHERE provider = 'gencove' AND counts_json IS NOT NULL
"""

_GENCOVE_CURSORS = """
SELECT project_id, max(modified_at) FROM kits
WHERE provider = 'gencove' AND project_id IS NOT NULL AND modified_at IS NOT NULL
GROUP BY project_id
"""

_LATEST_GENCOVE = """
SELECT entity_id, arg_max(partner_status, partner_date), max(partner_date), arg_max(stage, partner_date)
FROM status_events
WHERE provider = 'gencove' AND entity = 'kit'
GROUP BY entity_id
"""

# A sample's details are fetched once `samples/{id}` has been read: only that payload carries metadata (kept
# as JSON, "{}" when empty), so a non-null metadata_json marks it. A sample whose latest status is succeeded
# also needs its results (deliverables): details read before it succeeded (a webhook named it early) do not
# count. Failed samples have no results to wait for.
_GENCOVE_DETAILS = """
WITH latest AS (
    SELECT entity_id, arg_max(partner_status, partner_date) AS status
    FROM status_events
    WHERE provider = 'gencove' AND entity = 'kit'
    GROUP BY entity_id
)
SELECT
    k.kit_id,
    k.project_id,
    k.metadata_json IS NOT NULL
        AND (
            coalesce(l.status, '') <> 'succeeded'
            OR EXISTS (SELECT 1 FROM deliverables AS d WHERE d.provider = 'gencove' AND d.kit_id = k.kit_id)
        )
FROM kits AS k
LEFT JOIN latest AS l ON l.entity_id = k.kit_id
WHERE k.provider = 'gencove'
"""


def gencove_plan(db_path: str | os.PathLike[str], project_ids: Iterable[str]) -> GencovePlan:
    """Listing cursors per project, and final samples of those projects whose details are not loaded."""
    plan = GencovePlan()
    projects = set(project_ids)
    connection = _open(db_path)
    if connection is None:
        return plan
    with connection:
        for project_id in sorted(projects):
            path = '$.listed_through."' + project_id.replace('"', "") + '"'
            [(listed,)] = connection.execute(_GENCOVE_LISTED, {"path": path}).fetchall()
            if listed is not None:
                plan.cursors[project_id] = listed
        for project_id, modified in connection.execute(_GENCOVE_CURSORS).fetchall():
            if project_id in projects:
                plan.cursors.setdefault(project_id, modified)
        final = {status for _, status in connection.execute(_FINAL_STATUSES, ["gencove"]).fetchall()}
        # A sample last seen in an undocumented status is never final, so it is asked about again by id: the
        # listing only shows it again once its `modified` moves, which a status Gencove renamed may never do.
        unknown = set()
        for sample_id, status, date, stage in connection.execute(_LATEST_GENCOVE).fetchall():
            plan.known[sample_id] = KnownStatus(status, date)
            if stage == "unknown":
                unknown.add(sample_id)
        for sample_id, project_id, fetched in connection.execute(_GENCOVE_DETAILS).fetchall():
            if fetched and sample_id not in unknown:
                plan.details_fetched.add(sample_id)
                continue
            latest = plan.known.get(sample_id)
            wanted = latest is not None and (latest.partner_status in final or sample_id in unknown)
            if project_id in projects and wanted:
                plan.samples_missing_details[sample_id] = project_id
    return plan


# --- backfill selections ---------------------------------------------------------------------------------

_BIOMESIGHT_KITS_BY_DATE = """
SELECT k.kit_id, k.order_id
FROM kits AS k
LEFT JOIN orders AS o ON o.provider = k.provider AND o.order_id = k.order_id
WHERE k.provider = 'biomesight'
  AND CASE WHEN ? = 'sample_date' THEN k.sample_date ELSE coalesce(k.purchase_date, o.purchase_date) END
      BETWEEN ? AND ?
ORDER BY k.kit_id
"""

# Orders placed in the window that have no kit yet still belong to a purchase-date backfill.
_BIOMESIGHT_ORDERS_BY_DATE = """
SELECT order_id FROM orders
WHERE provider = 'biomesight' AND ? = 'purchase_date' AND purchase_date BETWEEN ? AND ?
ORDER BY order_id
"""

_BIOMESIGHT_KITS_BY_ID = """
SELECT kit_id, order_id FROM kits WHERE provider = 'biomesight' AND list_contains(?, kit_id) ORDER BY kit_id
"""

_GENCOVE_SAMPLES_BY_DATE = """
SELECT kit_id, project_id FROM kits
WHERE provider = 'gencove' AND CAST(created_at AS DATE) BETWEEN ? AND ?
ORDER BY kit_id
"""

_GENCOVE_SAMPLES_BY_ID = """
SELECT kit_id, project_id FROM kits WHERE provider = 'gencove' AND list_contains(?, kit_id) ORDER BY kit_id
"""


@dataclass
class BiomesightSelection:
    """The orders and kits a Biomesight backfill window covers."""

    order_ids: list[str] = field(default_factory=list)
    kit_ids: list[str] = field(default_factory=list)


def select_biomesight(
    db_path: str | os.PathLike[str],
    *,
    date_field: str = "purchase_date",
    first: date | None = None,
    last: date | None = None,
    kit_ids: Collection[str] = (),
) -> BiomesightSelection:
    """Tracked kits (and their orders) with `date_field` in [first, last], or the kits named in `kit_ids`."""
    selection = BiomesightSelection()
    connection = _open(db_path)
    if connection is None:
        return selection
    with connection:
        if kit_ids:
            rows = connection.execute(_BIOMESIGHT_KITS_BY_ID, [sorted(kit_ids)]).fetchall()
            orders: list[str] = []
        else:
            rows = connection.execute(_BIOMESIGHT_KITS_BY_DATE, [date_field, first, last]).fetchall()
            orders = [
                r[0]
                for r in connection.execute(_BIOMESIGHT_ORDERS_BY_DATE, [date_field, first, last]).fetchall()
            ]
    selection.kit_ids = [kit_id for kit_id, _ in rows]
    selection.order_ids = sorted({*orders, *(order_id for _, order_id in rows if order_id)})
    return selection


@dataclass
class ReadyKits:
    """Kits whose results are ready, and which of their results the warehouse lacks."""

    ready: list[str] = field(default_factory=list)
    missing_results: list[str] = field(default_factory=list)
    missing_taxonomy: list[str] = field(default_factory=list)
    missing_pdf: list[str] = field(default_factory=list)


def ready_biomesight_kits(db_path: str | os.PathLike[str], kit_ids: Collection[str]) -> ReadyKits:
    """Of `kit_ids`, those whose latest status says results are ready, with what each one lacks."""
    found = ReadyKits()
    connection = _open(db_path)
    if connection is None or not kit_ids:
        return found
    wanted = set(kit_ids)
    with connection:
        rows = connection.execute(_READY_BIOMESIGHT_KITS, {"every_ready": True, "with_pdf": True}).fetchall()
    for kit_id, missing_results, missing_taxonomy, missing_pdf in rows:
        if kit_id not in wanted:
            continue
        found.ready.append(kit_id)
        if missing_results:
            found.missing_results.append(kit_id)
        if missing_taxonomy:
            found.missing_taxonomy.append(kit_id)
        if missing_pdf:
            found.missing_pdf.append(kit_id)
    return found


def select_gencove(
    db_path: str | os.PathLike[str],
    *,
    first: date | None = None,
    last: date | None = None,
    sample_ids: Collection[str] = (),
) -> dict[str, str]:
    """Known Gencove samples (id -> project) created in [first, last], or those named in `sample_ids`."""
    connection = _open(db_path)
    if connection is None:
        return {}
    with connection:
        if sample_ids:
            rows = connection.execute(_GENCOVE_SAMPLES_BY_ID, [sorted(sample_ids)]).fetchall()
        else:
            rows = connection.execute(_GENCOVE_SAMPLES_BY_DATE, [first, last]).fetchall()
    return dict(rows)


def holds_tables(db_path: str | os.PathLike[str], tables: Mapping[str, pa.Table]) -> bool:
    """Whether the published warehouse holds exactly these rows in these tables (observation times aside)."""
    connection = _open(db_path)
    if connection is None:
        return False
    with connection:
        present = {
            row[0]
            for row in connection.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        for name, table in tables.items():
            columns = [c for c in table.column_names if c != "observed_at"]
            if name not in present:
                return False
            held_columns = {
                row[0]
                for row in connection.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [name]
                ).fetchall()
            }
            if not set(columns) <= held_columns:
                return False
            select = ", ".join(quote_ident(c) for c in columns)
            held = connection.execute(f"SELECT {select} FROM {quote_ident(name)}").fetchall()  # noqa: S608
            wanted = list(zip(*(table.column(c).to_pylist() for c in columns), strict=True))
            if sorted(held, key=repr) != sorted(wanted, key=repr):
                return False
    return True
