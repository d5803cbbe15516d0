"""The data contract: every lake/warehouse table declared once (schema, keys, partitions, how it merges).

The warehouse derives its DDL and merge logic from these specs and the README reuses the descriptions, so a
column is added here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

# How a table's new rows combine with what the warehouse already holds:
# - "current": one row per primary key; the newer observation (by `observed_at`) wins column by column, and a
#   null in the newer row keeps the older value (partial observations never erase what another source saw).
# - "history": append-only; a row whose primary key is already present is dropped (the first observation
#   wins).
# - "replace": the rows of each `replace_key` group (e.g. one kit's taxonomy) are replaced as a whole by the
#   group's newest observation, so a re-fetched result never leaves stale rows behind.
MergeMode = Literal["current", "history", "replace"]


@dataclass(frozen=True)
class TableSpec:
    """One table of the lake and the warehouse."""

    name: str
    schema: pa.Schema
    primary_key: tuple[str, ...]
    description: str
    merge: MergeMode
    partition_by: tuple[str, ...] = ("provider",)  # the lake adds ingest_date=YYYY-MM-DD below these
    replace_key: tuple[str, ...] = ()  # for merge == "replace"
    observed_at: str = "observed_at"  # the column that orders observations


UTC_TS = pa.timestamp("us", tz="UTC")
PROVIDERS = ("biomesight", "gencove")


def _schema(*fields: tuple[str, pa.DataType] | tuple[str, pa.DataType, bool]) -> pa.Schema:
    """Build a schema from (name, type[, nullable]) so the declarations below read like a column list."""
    return pa.schema([pa.field(f[0], f[1], nullable=f[2] if len(f) == 3 else True) for f in fields])


_PROVIDER = ("provider", pa.string(), False)
_OBSERVED_AT = ("observed_at", UTC_TS, False)

ORDERS = TableSpec(
    name="orders",
    schema=_schema(
        _PROVIDER,
        ("order_id", pa.string(), False),
        ("customer_key", pa.string()),
        ("country_code", pa.string()),
        ("purchased_at", UTC_TS),
        ("purchase_date", pa.date32()),
        ("shipping_speed", pa.string()),
        ("source", pa.string(), False),
        _OBSERVED_AT,
    ),
    primary_key=("provider", "order_id"),
    description="One row per order placed with a partner: pseudonymous customer, country, purchase date.",
    merge="current",
)

ORDER_ITEMS = TableSpec(
    name="order_items",
    schema=_schema(
        _PROVIDER,
        ("order_id", pa.string(), False),
        ("position", pa.int32(), False),
        ("product_sku", pa.string()),
        ("product_name", pa.string()),
        ("quantity", pa.int32()),
        ("source", pa.string(), False),
        _OBSERVED_AT,
    ),
    primary_key=("provider", "order_id", "position"),
    description="The products of an order, one row per line in the order as it was placed.",
    merge="current",
)

KITS = TableSpec(
    name="kits",
    schema=_schema(
        _PROVIDER,
        ("kit_id", pa.string(), False),
        ("order_id", pa.string()),
        ("customer_key", pa.string()),
        ("project_id", pa.string()),
        ("country_code", pa.string()),
        ("purchase_date", pa.date32()),
        ("sample_date", pa.date32()),
        ("sample_type", pa.string()),
        ("bristol_scale", pa.int32()),
        ("bm_frequency", pa.string()),
        ("replaces_kit_id", pa.string()),
        ("physical_id", pa.string()),
        ("hidden", pa.bool_()),
        ("created_at", UTC_TS),
        ("modified_at", UTC_TS),
        ("failed_qc", pa.list_(pa.string())),
        ("archive_status", pa.string()),
        ("archive_status_at", UTC_TS),
        ("metadata_json", pa.string()),
        ("source", pa.string(), False),
        _OBSERVED_AT,
    ),
    primary_key=("provider", "kit_id"),
    description=(
        "One row per Biomesight kit or Gencove sample: registration and sample facts (current status is in "
        "status_events)."
    ),
    merge="current",
)

STATUS_EVENTS = TableSpec(
    name="status_events",
    schema=_schema(
        _PROVIDER,
        ("entity", pa.string(), False),
        ("entity_id", pa.string(), False),
        ("partner_status", pa.string(), False),
        ("stage", pa.string(), False),
        ("failure_reason", pa.string()),
        ("description", pa.string()),
        ("partner_date", UTC_TS, False),
        ("source", pa.string(), False),
        _OBSERVED_AT,
    ),
    primary_key=("provider", "entity", "entity_id", "partner_status", "partner_date"),
    description="Every status an order or kit was seen in, verbatim and mapped to its canonical stage.",
    merge="history",
)

RESULTS = TableSpec(
    name="results",
    schema=_schema(
        _PROVIDER,
        ("kit_id", pa.string(), False),
        ("sample_id", pa.int64()),
        ("export_date", UTC_TS),
        ("pipeline_id", pa.int64()),
        ("general_json", pa.string()),
        _OBSERVED_AT,
    ),
    primary_key=("provider", "kit_id"),
    description="One row per Biomesight kit with results: the lab's sample id, export time, pipeline.",
    merge="current",
)

SCORES = TableSpec(
    name="scores",
    schema=_schema(
        _PROVIDER,
        ("kit_id", pa.string(), False),
        ("score_key", pa.string(), False),
        ("score_name", pa.string(), False),
        ("value", pa.float64()),
        _OBSERVED_AT,
    ),
    primary_key=("provider", "kit_id", "score_key"),
    description="Result scores, one row per kit and score (score_name as sent, score_key in snake_case).",
    merge="replace",
    replace_key=("provider", "kit_id"),
)

RECOMMENDATIONS = TableSpec(
    name="recommendations",
    schema=_schema(
        _PROVIDER,
        ("kit_id", pa.string(), False),
        ("category", pa.string(), False),
        ("action", pa.string(), False),
        ("position", pa.int32(), False),
        ("item", pa.string(), False),
        _OBSERVED_AT,
    ),
    primary_key=("provider", "kit_id", "category", "action", "position"),
    description="Personalised recommendations: one row per item, e.g. food / enjoy / 'green tea'.",
    merge="replace",
    replace_key=("provider", "kit_id"),
)

TAXONOMY = TableSpec(
    name="taxonomy",
    schema=_schema(
        _PROVIDER,
        ("kit_id", pa.string(), False),
        ("rank", pa.string(), False),
        ("taxon", pa.string(), False),
        ("lineage", pa.string(), False),
        ("relative_abundance", pa.float64(), False),
        ("read_count", pa.int64()),
        _OBSERVED_AT,
    ),
    primary_key=("provider", "kit_id", "rank", "lineage"),
    description="Taxa per kit and rank; relative abundance is a fraction, about 1 per rank.",
    merge="replace",
    replace_key=("provider", "kit_id"),
)

DELIVERABLES = TableSpec(
    name="deliverables",
    schema=_schema(
        _PROVIDER,
        ("kit_id", pa.string(), False),
        ("file_id", pa.string(), False),
        ("file_type", pa.string()),
        ("size_bytes", pa.int64()),
        ("checksum_sha256", pa.string()),
        _OBSERVED_AT,
    ),
    primary_key=("provider", "kit_id", "file_id"),
    description="Gencove deliverable files per sample (type, size, checksum); never their download URLs.",
    merge="replace",
    replace_key=("provider", "kit_id"),
)

QUALITY_CONTROLS = TableSpec(
    name="quality_controls",
    schema=_schema(
        _PROVIDER,
        ("kit_id", pa.string(), False),
        ("qc_key", pa.string(), False),
        ("qc_type", pa.string()),
        ("value_expected", pa.float64()),
        ("value_measured", pa.float64()),
        ("value_string", pa.string()),
        ("status", pa.string()),
        _OBSERVED_AT,
    ),
    primary_key=("provider", "kit_id", "qc_key"),
    description="Gencove quality-control checks per sample: expected vs measured value and status.",
    merge="replace",
    replace_key=("provider", "kit_id"),
)

TRAIT_SCORES = TableSpec(
    name="trait_scores",
    schema=_schema(
        _PROVIDER,
        ("kit_id", pa.string(), False),
        ("trait_key", pa.string(), False),
        ("unit_key", pa.string()),
        ("value", pa.float64()),
        ("percentile", pa.float64()),
        ("risk", pa.string()),
        ("distribution_version", pa.string()),
        ("distribution_json", pa.string()),
        _OBSERVED_AT,
    ),
    primary_key=("provider", "kit_id", "trait_key"),
    description="Gencove trait scores per sample: value, percentile, risk class, reference distribution.",
    merge="replace",
    replace_key=("provider", "kit_id"),
)

ANCESTRY = TableSpec(
    name="ancestry",
    schema=_schema(
        _PROVIDER,
        ("kit_id", pa.string(), False),
        ("population", pa.string(), False),
        ("fraction", pa.float64(), False),
        _OBSERVED_AT,
    ),
    primary_key=("provider", "kit_id", "population"),
    description="Gencove ancestry fraction per sample and population (when sent as a plain mapping).",
    merge="replace",
    replace_key=("provider", "kit_id"),
)

ANCESTRY_REPORTS = TableSpec(
    name="ancestry_reports",
    schema=_schema(
        _PROVIDER,
        ("kit_id", pa.string(), False),
        ("ancestry_json", pa.string()),
        ("metadata_json", pa.string()),
        _OBSERVED_AT,
    ),
    primary_key=("provider", "kit_id"),
    description="Gencove ancestry report per sample as the partner sent it (JSON), whatever its inner shape.",
    merge="replace",
    replace_key=("provider", "kit_id"),
)

QUARANTINE = TableSpec(
    name="quarantine",
    schema=_schema(
        _PROVIDER,
        ("entity", pa.string(), False),
        ("entity_id", pa.string(), False),
        ("stage", pa.string(), False),
        ("reason", pa.string(), False),
        ("detail", pa.string(), False),
        ("payload_sha256", pa.string(), False),
        ("payload_excerpt", pa.string()),
        _OBSERVED_AT,
    ),
    primary_key=("provider", "entity", "entity_id", "reason", "payload_sha256"),
    description="Records that did not fit their contract: what, where, why (a reason a person can act on).",
    merge="history",
)

SYNC_RUNS = TableSpec(
    name="sync_runs",
    schema=_schema(
        ("run_id", pa.string(), False),
        ("flow", pa.string(), False),
        _PROVIDER,
        ("started_at", UTC_TS, False),
        ("finished_at", UTC_TS),
        ("state", pa.string(), False),
        ("counts_json", pa.string()),
        ("parameters_json", pa.string()),
        ("complete", pa.bool_()),
        ("incomplete_reason", pa.string()),
        _OBSERVED_AT,
    ),
    primary_key=("run_id", "provider"),
    description=(
        "A sync, load or backfill run per provider ('all' for both): when, outcome (completed, failed, "
        "interrupted), counts, and whether it can prove it read everything it set out to (complete; if not, "
        "incomplete_reason says what not)."
    ),
    merge="current",
)

STATUS_MAP = TableSpec(
    name="status_map",
    schema=_schema(
        _PROVIDER,
        ("entity", pa.string(), False),
        ("partner_status", pa.string(), False),
        ("stage", pa.string(), False),
        ("failure_reason", pa.string()),
        ("is_final", pa.bool_(), False),
        ("stage_rank", pa.int32(), False),
        ("description", pa.string()),
        ("reached_stage", pa.string()),
        ("reached_rank", pa.int32()),
        _OBSERVED_AT,
    ),
    primary_key=("provider", "entity", "partner_status"),
    description="Every documented partner status and its canonical stage (for funnels and lookups).",
    merge="current",
)

LIFECYCLE_STAGES = TableSpec(
    name="lifecycle_stages",
    schema=_schema(
        _PROVIDER,
        ("stage", pa.string(), False),
        ("stage_rank", pa.int32(), False),
        ("on_path", pa.bool_(), False),
        ("is_final", pa.bool_(), False),
        _OBSERVED_AT,
    ),
    primary_key=("provider", "stage"),
    description="The canonical stages: funnel rank, whether on the main path, whether final for a kit.",
    merge="current",
)

REPORT_PDFS = TableSpec(
    name="report_pdfs",
    schema=_schema(
        _PROVIDER,
        ("kit_id", pa.string(), False),
        ("path", pa.string(), False),
        ("size_bytes", pa.int64(), False),
        ("sha256", pa.string(), False),
        _OBSERVED_AT,
    ),
    primary_key=("provider", "kit_id"),
    description="Biomesight PDF reports fetched into the lake: where the file is (relative to the data dir).",
    merge="current",
)

# Not a warehouse table: what the partners sent, as fetched (personal-data keys and presigned URLs removed),
# kept in the lake so a fixed transform can re-run over it (`backfill --reprocess-from-raw`) without asking
# the partner again. The load never reads it: it is not in TABLES.
RAW_RESPONSES = TableSpec(
    name="raw_responses",
    schema=_schema(
        _PROVIDER,
        ("endpoint", pa.string(), False),
        ("entity_id", pa.string(), False),
        ("body_json", pa.string(), False),
        _OBSERVED_AT,
    ),
    primary_key=("provider", "endpoint", "entity_id", "observed_at"),
    description="Partner responses as fetched (minus personal data and download URLs), for reprocessing.",
    merge="history",
    partition_by=("provider", "endpoint"),
)
RAW_TABLES: dict[str, TableSpec] = {RAW_RESPONSES.name: RAW_RESPONSES}

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        ORDERS,
        ORDER_ITEMS,
        KITS,
        STATUS_EVENTS,
        RESULTS,
        SCORES,
        RECOMMENDATIONS,
        TAXONOMY,
        DELIVERABLES,
        QUALITY_CONTROLS,
        TRAIT_SCORES,
        ANCESTRY,
        ANCESTRY_REPORTS,
        QUARANTINE,
        SYNC_RUNS,
        STATUS_MAP,
        LIFECYCLE_STAGES,
        REPORT_PDFS,
    )
}

# Every table a transform can build: the warehouse tables plus the lake-only raw responses.
ALL_SPECS: dict[str, TableSpec] = {**TABLES, **RAW_TABLES}
