"""The lifecycle views (kit_lifecycle, funnel, failure_rates, stuck_kits) against the sandbox's ground truth.

What each view should read is rebuilt by `tests/warehouse/lifecycle_oracle.py` from the sandbox `World`,
restricted to what the partner APIs let kitsync see; these tests compare it with the published warehouse.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from sandbox.accounts import BIOMESIGHT_CLIENT_ID, GENCOVE_API_KEY, GENCOVE_PROJECT_IDS
from sandbox.lifecycles import kit_lifecycle, order_fulfilment
from sandbox.model import StatusChange, status_at
from tests.synced import SyncedWorld
from tests.warehouse.customer_truth import trait_risk_cohorts, truth_of
from tests.warehouse.lifecycle_oracle import (
    BIOMESIGHT_KIT,
    BIOMESIGHT_ORDER,
    COHORT_DIMENSIONS,
    DURATIONS,
    GENCOVE,
    OFF_PATH_FINAL,
    PATH,
    RANK,
    SECONDS,
    TRUE_REASON,
    Observed,
    cohort_members,
    days_between,
    expected_lifecycle,
    observe,
    sync_times,
)
from transform.reference import lifecycle_stages_table
from transform.schemas import TABLES
from warehouse.duck import connect_readonly
from warehouse.migrate import migrate


def view(synced: SyncedWorld, sql: str) -> pd.DataFrame:
    """A query on the published warehouse as a DataFrame (built from the cursor: DuckDB's own .df() uses a
    pandas keyword that pandas now deprecates, and warnings are errors here)."""
    connection = connect_readonly(synced.warehouse)
    try:
        cursor = connection.execute(sql)
        columns = [d[0] for d in cursor.description]
        return pd.DataFrame(cursor.fetchall(), columns=columns)
    finally:
        connection.close()


def _missing(value: Any) -> bool:
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _same(expected: Any, got: Any, tolerance: float = 0.0) -> bool:  # noqa: PLR0911 - one return per kind
    """Equality treating NULL/NaN/None/NaT alike, datetimes as instants and floats within a tolerance."""
    if _missing(expected):
        return _missing(got)
    if _missing(got):
        return False
    if isinstance(expected, datetime):
        return pd.Timestamp(got).to_pydatetime() == expected
    if isinstance(expected, date):
        return pd.Timestamp(got).date() == expected
    if isinstance(expected, float):
        return math.isclose(float(got), expected, rel_tol=1e-9, abs_tol=tolerance)
    if isinstance(expected, (bool, np.bool_)):
        return bool(got) == bool(expected)
    return bool(got == expected)


def assert_columns_match(
    expected: pd.DataFrame, got: pd.DataFrame, columns: Iterable[str], tolerance: float
) -> None:
    """Every listed column of every row equal (both frames share an index); lists the first mismatches."""
    problems = []
    for column in columns:
        for key in expected.index:
            want, have = expected.at[key, column], got.at[key, column]
            if not _same(want, have, tolerance):
                problems.append(f"{column} of {key}: expected {want!r}, view has {have!r}")
    assert not problems, f"{len(problems)} mismatches, e.g.:\n" + "\n".join(problems[:15])


@pytest.fixture(scope="module")
def seen(synced_world: SyncedWorld) -> Observed:
    return observe(synced_world)


@pytest.fixture(scope="module")
def expected(seen: Observed) -> pd.DataFrame:
    return expected_lifecycle(seen)


@pytest.fixture(scope="module")
def lifecycle(synced_world: SyncedWorld) -> pd.DataFrame:
    frame = view(synced_world, "SELECT * FROM kit_lifecycle")
    return frame.set_index(["provider", "kit_id"]).sort_index()


# --- kit_lifecycle ------------------------------------------------------------------------------------------


def test_lifecycle_has_one_row_per_tracked_kit(
    synced_world: SyncedWorld, expected: pd.DataFrame, lifecycle: pd.DataFrame
) -> None:
    """Registered Biomesight kits of our account and Gencove samples of our projects, each once."""
    assert lifecycle.index.is_unique
    assert set(lifecycle.index) == set(expected.index)
    assert len(expected) > 300  # a few hundred kits: the comparisons below are not vacuous


def test_lifecycle_stage_times_are_the_first_observed_time_of_each_stage(
    synced_world: SyncedWorld, expected: pd.DataFrame, lifecycle: pd.DataFrame
) -> None:
    columns = [f"{stage}_at" for stage in PATH] + ["ended_at"]
    assert_columns_match(expected, lifecycle, columns, tolerance=0.0)


def test_lifecycle_turnaround_matches_the_sandbox_event_times(
    synced_world: SyncedWorld, expected: pd.DataFrame, lifecycle: pd.DataFrame
) -> None:
    """Stage durations in days, and the anchors straight from the timelines: a finished Gencove sample's whole
    history is known, a Biomesight kit's results time is its 'Results Processed' time."""
    assert_columns_match(expected, lifecycle, [*DURATIONS, "days_total"], tolerance=SECONDS)

    world, last = synced_world.world, sync_times(synced_world)[-1]
    checked = 0
    for sample in world.samples.values():
        key = ("gencove", sample.sample_id)
        final = sample.timeline[-1]
        if key not in lifecycle.index or final.status != "succeeded" or final.at > last:
            continue
        running = next(c.at for c in sample.timeline if c.status == "running")
        row = lifecycle.loc[key]
        assert row["days_processing_to_results_ready"] == pytest.approx(
            days_between(running, final.at), abs=SECONDS
        )
        assert row["days_total"] == pytest.approx(days_between(sample.created, final.at), abs=SECONDS)
        checked += 1
    for kit in world.kits.values():
        key = ("biomesight", kit.kit_id)
        if key in lifecycle.index and kit.results_ready_at is not None and kit.results_ready_at <= last:
            assert pd.Timestamp(lifecycle.at[key, "results_ready_at"]).to_pydatetime() == kit.results_ready_at
            checked += 1
    assert checked > 200


def test_lifecycle_current_stage_and_days_in_it(
    synced_world: SyncedWorld, expected: pd.DataFrame, seen: Observed, lifecycle: pd.DataFrame
) -> None:
    """Current stage and status as last seen; days in it up to the latest partner date kitsync has seen."""
    columns = ["current_stage", "current_status", "current_stage_since", "is_final", "furthest_path_rank"]
    assert_columns_match(expected, lifecycle, columns, tolerance=0.0)
    assert_columns_match(expected, lifecycle, ["days_in_current_stage"], tolerance=SECONDS)


def test_lifecycle_current_stage_agrees_with_the_sandbox_timelines(
    synced_world: SyncedWorld, lifecycle: pd.DataFrame
) -> None:
    """Independently of what was observable: the status a kit is in at the last round is its current one."""
    world, last = synced_world.world, sync_times(synced_world)[-1]
    for (provider, kit_id), row in lifecycle.iterrows():
        timeline = world.kits[kit_id].timeline if provider == "biomesight" else world.samples[kit_id].timeline
        assert row["current_status"] == status_at(timeline, last).status, kit_id


def test_lifecycle_failure_reason_is_the_sandbox_ground_truth(
    synced_world: SyncedWorld, expected: pd.DataFrame, lifecycle: pd.DataFrame
) -> None:
    assert_columns_match(expected, lifecycle, ["failure_reason"], tolerance=0.0)
    world = synced_world.world
    failed = lifecycle[lifecycle["current_stage"] == "failed"]
    assert len(failed) >= 5
    for (provider, kit_id), row in failed.iterrows():
        if provider == "biomesight":
            assert row["failure_reason"] == TRUE_REASON[world.kits[kit_id].failure_reason], kit_id
        else:
            assert row["failure_reason"] == GENCOVE[world.samples[kit_id].timeline[-1].status][1], kit_id


def test_lifecycle_cohort_attributes(
    synced_world: SyncedWorld, expected: pd.DataFrame, lifecycle: pd.DataFrame
) -> None:
    """Country, purchase month and the registration answers come from the platform's records of the kit."""
    columns = ["order_id", "country_code", "purchase_date", "purchase_month", "sample_date", "sample_type"]
    columns += ["bristol_scale", "bm_frequency"]
    assert_columns_match(expected, lifecycle, columns, tolerance=0.0)


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "America/Los_Angeles"])
def test_lifecycle_purchase_dates_do_not_depend_on_the_readers_time_zone(
    synced_world: SyncedWorld, expected: pd.DataFrame, zone: str
) -> None:
    """An analyst's DuckDB session runs in their own time zone; a cohort must not move with it (a Gencove
    sample's purchase date is its creation's UTC date, like a Biomesight order's)."""
    connection = connect_readonly(synced_world.warehouse)
    try:
        connection.execute(f"SET TimeZone = '{zone}'")
        cursor = connection.execute(
            "SELECT provider, kit_id, purchase_date, purchase_month FROM kit_lifecycle"
        )
        got = pd.DataFrame(cursor.fetchall(), columns=[d[0] for d in cursor.description])
    finally:
        connection.close()
    got = got.set_index(["provider", "kit_id"]).sort_index()
    assert_columns_match(expected, got, ["purchase_date", "purchase_month"], tolerance=0.0)


def _order_with_a_fulfilment_error() -> tuple[list[StatusChange], list[StatusChange]]:
    """An order whose fulfilment hit Biomesight's 'Error' and then went on (as the sandbox models it), and the
    lab journey of its kit, registered after delivery: the first such case among seeded draws."""
    for seed in range(10_000):
        rng = random.Random(f"order-error:{seed}")
        placed = datetime(2026, 6, 1, 9, tzinfo=UTC)
        fulfilment = order_fulfilment(rng, placed)
        statuses = [change.status for change in fulfilment.timeline]
        if "Error" not in statuses or fulfilment.delivered_at is None:
            continue
        life = kit_lifecycle(rng, fulfilment.delivered_at + timedelta(days=3))
        if life.results_ready_at is not None:
            pending = StatusChange("Pending", placed)
            return [pending, *fulfilment.timeline], life.timeline
    raise AssertionError("no seeded order hit a fulfilment error")


def test_a_fulfilment_error_the_order_recovered_from_does_not_end_its_kit() -> None:
    """Every status of the order and kit was seen (as with webhooks flowing): the kit got its results, so it
    did not end at the order's 'Error', and no failure reason sticks to it."""
    order_timeline, kit_timeline = _order_with_a_fulfilment_error()
    observed_at = datetime(2026, 11, 1, tzinfo=UTC)
    connection = duckdb.connect()
    try:
        migrate(connection, TABLES)
        connection.register("stages", lifecycle_stages_table(observed_at))
        connection.execute("INSERT INTO lifecycle_stages BY NAME SELECT * FROM stages")
        connection.execute(
            "INSERT INTO orders (provider, order_id, source, observed_at) "
            "VALUES ('biomesight', 'O1', 'import', ?)",
            [observed_at],
        )
        connection.execute(
            "INSERT INTO kits (provider, kit_id, order_id, source, observed_at) "
            "VALUES ('biomesight', 'K1', 'O1', 'import', ?)",
            [observed_at],
        )
        for entity, entity_id, timeline, mapping in (
            ("order", "O1", order_timeline, BIOMESIGHT_ORDER),
            ("kit", "K1", kit_timeline, BIOMESIGHT_KIT),
        ):
            for change in timeline:
                stage, reason = mapping[change.status]
                connection.execute(
                    "INSERT INTO status_events VALUES ('biomesight', ?, ?, ?, ?, ?, NULL, ?, 'webhook', ?)",
                    [entity, entity_id, change.status, stage, reason, change.at, observed_at],
                )
        row = connection.execute(
            "SELECT current_stage, is_final, ended_at, failure_reason, results_ready_at FROM kit_lifecycle"
        ).fetchall()
    finally:
        connection.close()
    assert row == [("results_ready", True, None, None, kit_timeline[-1].at)]


# --- cohorts, funnel, failure rates -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trait_risk(synced_world: SyncedWorld) -> dict[tuple[str, str], list[str]]:
    """(provider, kit_id) -> its customer's trait_risk cohorts, from the sandbox's ground truth."""
    return trait_risk_cohorts(truth_of(synced_world))


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else numerator / denominator


def test_funnel_counts_kits_that_reached_each_stage_by_cohort(
    synced_world: SyncedWorld, expected: pd.DataFrame, trait_risk: dict[tuple[str, str], list[str]]
) -> None:
    members = cohort_members(expected, trait_risk).join(
        expected["furthest_path_rank"], on=["provider", "kit_id"]
    )
    want = {}
    for (dimension, value), group in members.groupby(["cohort_dimension", "cohort_value"]):
        previous = start = None
        for rank, stage in enumerate(PATH, start=1):
            reached = int((group["furthest_path_rank"] >= rank).sum())
            want[(dimension, value, stage)] = {
                "kits_in_cohort": len(group),
                "kits_reached": reached,
                "conversion_from_previous": None if previous is None else _ratio(reached, previous),
                "conversion_from_start": _ratio(reached, reached if start is None else start),
            }
            start = reached if start is None else start
            previous = reached
    got = view(synced_world, "SELECT * FROM funnel").set_index(["cohort_dimension", "cohort_value", "stage"])
    assert set(got.index) == set(want)
    assert set(got.index.get_level_values(0)) == set(COHORT_DIMENSIONS)
    frame = pd.DataFrame.from_dict(want, orient="index")
    frame.index = pd.MultiIndex.from_tuples(frame.index)
    assert_columns_match(frame, got, frame.columns, tolerance=1e-12)
    # The Biomesight funnel ends where the sandbox says: every kit whose results were out by the last round.
    last = sync_times(synced_world)[-1]
    with_results = sum(
        1
        for k in synced_world.world.kits.values()
        if k.account == BIOMESIGHT_CLIENT_ID and k.results_ready_at is not None and k.results_ready_at <= last
    )
    assert got.at[("provider", "biomesight", "results_ready"), "kits_reached"] == with_results


def test_funnel_counts_kits_that_ended_in_the_lab_as_having_reached_it(synced_world: SyncedWorld) -> None:
    """Ground truth, not observability: every registered Biomesight kit went to the lab (its first status is
    'Shipping to Lab'), including those that later dried out, failed QA or were replaced."""
    last = sync_times(synced_world)[-1]
    registered = sum(
        1
        for kit in synced_world.world.kits.values()
        if kit.account == BIOMESIGHT_CLIENT_ID and kit.registered_at is not None and kit.registered_at <= last
    )
    reached = synced_world.scalar(
        "SELECT kits_reached FROM funnel WHERE cohort_dimension = 'provider' AND cohort_value = 'biomesight' "
        "AND stage = 'in_transit_to_lab'"
    )
    assert reached == registered


def test_failure_rates_by_cohort_and_reason(
    synced_world: SyncedWorld, expected: pd.DataFrame, trait_risk: dict[tuple[str, str], list[str]]
) -> None:
    members = cohort_members(expected, trait_risk).join(
        expected[["is_final", "current_stage", "failure_reason"]], on=["provider", "kit_id"]
    )
    want = {}
    for (dimension, value), group in members.groupby(["cohort_dimension", "cohort_value"]):
        ended = group[group["is_final"] & group["current_stage"].isin(OFF_PATH_FINAL)]
        reasons = ended["failure_reason"].where(ended["failure_reason"].notna(), ended["current_stage"])
        finals = int(group["is_final"].sum())
        for reason, count in reasons.value_counts().items():
            want[(dimension, value, reason)] = {
                "kits_failed": int(count),
                "kits_final": finals,
                "kits": len(group),
                "rate_of_final": _ratio(count, finals),
                "rate_of_all": count / len(group),
            }
    got = view(synced_world, "SELECT * FROM failure_rates").set_index(
        ["cohort_dimension", "cohort_value", "reason"]
    )
    assert set(got.index) == set(want)
    frame = pd.DataFrame.from_dict(want, orient="index")
    frame.index = pd.MultiIndex.from_tuples(frame.index)
    assert_columns_match(frame, got, frame.columns, tolerance=1e-12)
    # Gencove's failures are exactly the samples of ours that ended failed by the last round.
    last = sync_times(synced_world)[-1]
    gencove_failed = sum(
        1
        for s in synced_world.world.samples.values()
        if s.account == GENCOVE_API_KEY
        and s.project_id in GENCOVE_PROJECT_IDS
        and s.timeline[-1].status in ("failed", "failed qc", "failed_qc")
        and s.timeline[-1].at <= last
    )
    assert got.xs(("provider", "gencove"), level=[0, 1])["kits_failed"].sum() == gencove_failed > 0


# --- stuck kits ---------------------------------------------------------------------------------------------


def test_stuck_kits_are_longer_in_their_stage_than_its_p95(
    synced_world: SyncedWorld, expected: pd.DataFrame, seen: Observed
) -> None:
    """p95 per provider and path stage over completed passages (first event in the stage to the first event in
    a later path stage), judged only with at least 5 passages; unfinished kits beyond it are stuck."""
    durations: dict[tuple[str, str], list[float]] = {}
    for (provider, _), events in seen.kits.items():
        for stage in {e.stage for e in events if e.stage in PATH}:
            entered = min(e.at for e in events if e.stage == stage)
            later = [e.at for e in events if e.stage in PATH and RANK[e.stage] > RANK[stage]]
            if later:
                durations.setdefault((provider, stage), []).append(days_between(entered, min(later)))
    p95 = {key: float(np.percentile(values, 95)) for key, values in durations.items() if len(values) >= 5}
    want = {}
    for (provider, kit_id), row in expected.iterrows():
        threshold = p95.get((provider, row["current_stage"]))
        if not row["is_final"] and threshold is not None and row["days_in_current_stage"] > threshold:
            want[(provider, kit_id)] = {
                "current_stage": row["current_stage"],
                "days_in_current_stage": row["days_in_current_stage"],
                "p95_days": threshold,
                "days_over_p95": row["days_in_current_stage"] - threshold,
            }
    got = view(synced_world, "SELECT * FROM stuck_kits").set_index(["provider", "kit_id"])
    assert want, "the synced world should hold stuck kits (Gencove kits never sent back)"
    assert set(got.index) == set(want)
    frame = pd.DataFrame.from_dict(want, orient="index")
    frame.index = pd.MultiIndex.from_tuples(frame.index)
    assert_columns_match(frame, got, frame.columns, tolerance=SECONDS)
