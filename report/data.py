"""Read-only queries on the warehouse's analysis views: everything the report shows, as pandas frames.

Only views are read (never base tables), so the report means what the views document and survives changes to
the tables underneath. Every query runs on one read-only connection, so all sections describe the same
published snapshot even if a load publishes a newer one meanwhile. Values are bound as parameters; the few
identifiers (lifecycle duration columns, as the view reports them) go through `quote_ident`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from report.cohorts import OVERALL
from transform.status import PATH_STAGES
from warehouse.duck import connect_readonly, quote_ident, scalar

# The views this module reads; a test checks that no query names anything else.
VIEWS = (
    "kit_lifecycle",
    "funnel",
    "cohort_scores",
    "taxa_prevalence",
    "alpha_diversity",
    "stuck_kits",
    "failure_rates",
    "kit_cohorts",
    "customers",
    "microbiome_by_trait",
)

# kit_lifecycle's duration columns are read from the view itself (`stage_durations`), not listed here: the
# stages are declared once, in transform/status.py, and the view's columns follow them (a test keeps them in
# step). These two are not steps between consecutive stages.
TOTAL_DURATION = "days_total"
CURRENT_STAGE_DURATION = "days_in_current_stage"

TAXA_RANK = "genus"
TOP_TAXA_BY_ABUNDANCE = 15
TOP_TAXA_BY_SPREAD = 5
# Cohorts smaller than this are drawn (with their n) but never chosen as the subject of a finding.
MIN_COHORT_KITS = 10

_OVERVIEW_SQL = """
SELECT
    provider,
    count(*) AS kits,
    count(results_ready_at) AS kits_with_results,
    count(*) FILTER (WHERE is_final) AS kits_final,
    median(days_total) AS median_days_total,
    quantile_cont(days_total, 0.9) AS p90_days_total
FROM kit_lifecycle
GROUP BY provider
ORDER BY provider
"""

# kit_lifecycle computes days_in_current_stage against "now" = the latest partner date kitsync has seen;
# adding it back to when the kit entered its stage recovers that "now" from the view alone.
_AS_OF_SQL = """
SELECT max(current_stage_since + to_microseconds(CAST(round(days_in_current_stage * 86400e6) AS BIGINT)))
FROM kit_lifecycle
"""

_FUNNEL_SQL = """
SELECT cohort_value, stage, stage_rank, kits_in_cohort, kits_reached, conversion_from_previous,
       conversion_from_start
FROM funnel
WHERE cohort_dimension = $dimension
ORDER BY cohort_value, stage_rank
"""

_FAILURES_SQL = """
SELECT cohort_value, reason, kits_failed, kits_final, kits, rate_of_final, rate_of_all
FROM failure_rates
WHERE cohort_dimension = $dimension
ORDER BY cohort_value, kits_failed DESC, reason
"""

# Cohort sizes come from kit_cohorts, not failure_rates: a cohort with no failure has no failure_rates row.
_COHORT_SIZES_SQL = """
SELECT c.cohort_value, count(*) AS kits, count(*) FILTER (WHERE l.is_final) AS kits_final
FROM kit_cohorts AS c
JOIN kit_lifecycle AS l ON l.provider = c.provider AND l.kit_id = c.kit_id
WHERE c.cohort_dimension = $dimension
GROUP BY c.cohort_value
ORDER BY c.cohort_value
"""

_SCORES_SQL = """
SELECT cohort_value, score_key, score_name, n, mean, median, p25, p75, stddev
FROM cohort_scores
WHERE cohort_dimension = $dimension AND n > 0
ORDER BY score_key, cohort_value
"""

# The heatmap's rows: the most abundant genera overall, plus the ones whose mean abundance differs most
# between this dimension's cohorts (max/min ratio over cohorts large enough to say so), so a cohort effect in
# a less abundant genus is not cut off by the top-N.
_TOP_TAXA_SQL = """
WITH overall AS (
    SELECT taxon, mean_abundance
    FROM taxa_prevalence
    WHERE cohort_dimension = $overall AND rank = $rank
),
by_cohort AS (
    SELECT taxon, cohort_value, mean_abundance
    FROM taxa_prevalence
    WHERE cohort_dimension = $dimension AND rank = $rank AND kits_profiled >= $min_kits
),
cohorts AS (
    SELECT count(DISTINCT cohort_value) AS n FROM by_cohort
),
spread AS (
    -- a genus absent from a whole cohort has no row there: count that cohort as abundance 0 (ratio floor)
    SELECT b.taxon,
           max(b.mean_abundance) / greatest(
               CASE WHEN count(*) < any_value(c.n) THEN 0 ELSE min(b.mean_abundance) END, 1e-3
           ) AS ratio
    FROM by_cohort AS b CROSS JOIN cohorts AS c
    GROUP BY b.taxon
),
by_abundance AS (
    SELECT taxon FROM overall ORDER BY mean_abundance DESC, taxon LIMIT $top_abundance
),
by_spread AS (
    SELECT taxon FROM spread
    WHERE taxon NOT IN (SELECT taxon FROM by_abundance) AND ratio >= 2
    ORDER BY ratio DESC, taxon LIMIT $top_spread
)
SELECT o.taxon, o.mean_abundance AS overall_mean_abundance, s.taxon IS NOT NULL AS chosen_for_spread
FROM overall AS o
LEFT JOIN by_spread AS s USING (taxon)
WHERE o.taxon IN (SELECT taxon FROM by_abundance) OR s.taxon IS NOT NULL
ORDER BY o.mean_abundance DESC, o.taxon
"""

_TAXA_SQL = """
SELECT cohort_value, taxon, kits_present, kits_profiled, prevalence, mean_abundance
FROM taxa_prevalence
WHERE cohort_dimension = $dimension AND rank = $rank AND list_contains($taxa, taxon)
ORDER BY taxon, cohort_value
"""

_PROFILED_SQL = """
SELECT DISTINCT cohort_value, kits_profiled
FROM taxa_prevalence
WHERE cohort_dimension = $dimension AND rank = $rank
ORDER BY cohort_value
"""

_ALPHA_SQL = """
SELECT c.cohort_value, a.provider, a.kit_id, a.shannon, a.simpson, a.richness
FROM alpha_diversity AS a
JOIN kit_cohorts AS c ON c.provider = a.provider AND c.kit_id = a.kit_id
WHERE a.rank = $rank AND c.cohort_dimension = $dimension
ORDER BY c.cohort_value, a.provider, a.kit_id
"""

_STUCK_SQL = """
SELECT provider, kit_id, current_stage, current_status, current_stage_since, days_in_current_stage, p95_days,
       days_over_p95, country_code, purchase_month
FROM stuck_kits
ORDER BY days_over_p95 DESC, provider, kit_id
"""


# Customers, those who bought both tests, and the kits no customer id came with (counted, never guessed).
_BOTH_TESTS_SQL = """
SELECT
    count(*) AS customers,
    count(*) FILTER (WHERE bought_both) AS bought_both,
    (SELECT count(*) FROM kit_lifecycle WHERE customer_key IS NULL) AS kits_without_customer
FROM customers
"""

_TRAIT_GROUPS_SQL = """
SELECT trait_key, grouping, trait_group, measure_kind, measure, n, mean, median, stddev
FROM microbiome_by_trait
ORDER BY trait_key, grouping, measure_kind, measure, trait_group
"""


@dataclass(frozen=True)
class ReportData:
    """What one report shows, all read from one snapshot of the warehouse."""

    dimension: str
    as_of: datetime | None
    overview: pd.DataFrame
    funnel_all: pd.DataFrame
    funnel: pd.DataFrame
    turnaround: pd.DataFrame
    failures_by_provider: pd.DataFrame
    failures: pd.DataFrame
    cohort_sizes: pd.DataFrame
    scores: pd.DataFrame
    taxa_rows: pd.DataFrame
    taxa: pd.DataFrame
    profiled: pd.DataFrame
    alpha: pd.DataFrame
    stuck: pd.DataFrame
    both_tests: pd.DataFrame
    trait_groups: pd.DataFrame


def _frame(
    connection: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None
) -> pd.DataFrame:
    # Through arrow: DuckDB's own .df() trips a pandas 3 deprecation on timestamp-with-time-zone columns.
    return connection.sql(sql, params=params or {}).to_arrow_table().to_pandas()


def stage_durations(columns: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """kit_lifecycle's duration columns in the view's order (the lifecycle's), each with the label a chart
    shows: `days_received_to_processing` reads "received → processing"; the total comes last and names the
    lifecycle's first and last path stages."""
    steps = [
        c for c in columns if c.startswith("days_") and c not in (TOTAL_DURATION, CURRENT_STAGE_DURATION)
    ]
    durations = [(c, c.removeprefix("days_").replace("_to_", " → ").replace("_", " ")) for c in steps]
    if TOTAL_DURATION in columns:
        first, last = (stage.replace("_", " ") for stage in (PATH_STAGES[0], PATH_STAGES[-1]))
        durations.append((TOTAL_DURATION, f"total: {first} → {last}"))
    return tuple(durations)


def turnaround_sql(durations: Sequence[tuple[str, str]]) -> str:
    """kit_lifecycle's kit and duration columns (identifiers from the view's own columns, quoted)."""
    columns = ", ".join(quote_ident(column) for column, _ in durations)
    return f"SELECT provider, kit_id, {columns} FROM kit_lifecycle"  # noqa: S608 - identifiers quoted


def _turnaround(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Long form: one row per kit and stage it passed through (provider, kit, stage label, days)."""
    durations = stage_durations(connection.sql("SELECT * FROM kit_lifecycle LIMIT 0").columns)
    wide = _frame(connection, turnaround_sql(durations))
    labels = dict(durations)
    long = wide.melt(id_vars=["provider", "kit_id"], var_name="column", value_name="days").dropna(
        subset=["days"]
    )
    long["stage"] = long["column"].map(labels)
    order = {column: position for position, (column, _) in enumerate(durations)}
    long["stage_order"] = long["column"].map(order)
    return long.sort_values(["stage_order", "provider"]).reset_index(drop=True)[
        ["provider", "kit_id", "stage", "stage_order", "days"]
    ]


def load_report_data(db_path: str | os.PathLike[str], dimension: str) -> ReportData:
    """Every frame the report needs, for cohorts along `dimension` (one of `cohort_dimensions()`)."""
    connection = connect_readonly(db_path)
    try:
        by_dimension = {"dimension": dimension}
        taxa_rows = _frame(
            connection,
            _TOP_TAXA_SQL,
            {
                "overall": OVERALL,
                "dimension": dimension,
                "rank": TAXA_RANK,
                "min_kits": MIN_COHORT_KITS,
                "top_abundance": TOP_TAXA_BY_ABUNDANCE,
                "top_spread": TOP_TAXA_BY_SPREAD,
            },
        )
        as_of = scalar(connection, _AS_OF_SQL)
        return ReportData(
            dimension=dimension,
            as_of=as_of,
            overview=_frame(connection, _OVERVIEW_SQL),
            funnel_all=_frame(connection, _FUNNEL_SQL, {"dimension": OVERALL}),
            funnel=_frame(connection, _FUNNEL_SQL, by_dimension),
            turnaround=_turnaround(connection),
            failures_by_provider=_frame(connection, _FAILURES_SQL, {"dimension": "provider"}),
            failures=_frame(connection, _FAILURES_SQL, by_dimension),
            cohort_sizes=_frame(connection, _COHORT_SIZES_SQL, by_dimension),
            scores=_frame(connection, _SCORES_SQL, by_dimension),
            taxa_rows=taxa_rows,
            taxa=_frame(
                connection,
                _TAXA_SQL,
                {"dimension": dimension, "rank": TAXA_RANK, "taxa": taxa_rows["taxon"].tolist()},
            ),
            profiled=_frame(connection, _PROFILED_SQL, {"dimension": dimension, "rank": TAXA_RANK}),
            alpha=_frame(connection, _ALPHA_SQL, {"dimension": dimension, "rank": TAXA_RANK}),
            stuck=_frame(connection, _STUCK_SQL),
            both_tests=_frame(connection, _BOTH_TESTS_SQL),
            trait_groups=_frame(connection, _TRAIT_GROUPS_SQL),
        )
    finally:
        connection.close()
