"""The lifecycle views (kit_lifecycle, funnel, failure_rates, stuck_kits) against the sandbox's ground truth.

Expectations are rebuilt here from the sandbox `World` (kit, order and sample timelines), restricted to what
the partner APIs let kitsync see during the synced world's rounds:

- the platform export at each round lists orders purchased and kits registered by then: an order contributes
  its purchase ("Pending" at the purchase time), a kit its sample collection (midnight of its sample date);
- Biomesight's status endpoints show only the CURRENT status with its date, so a poll at the first round sees
  one status per order and kit; webhooks then push every change after that, up to the last round;
- Gencove's listing shows each sample's current status at every round, and once a sample is final its whole
  history (`sample-statuses`) is fetched.

The mapping of partner statuses onto the canonical lifecycle is written out below from the partner docs (the
DESIGN's lifecycle), not imported from transform/, so a wrong mapping there fails here.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from sandbox.accounts import BIOMESIGHT_CLIENT_ID, GENCOVE_API_KEY, GENCOVE_PROJECT_IDS
from sandbox.lifecycles import kit_lifecycle, order_fulfilment
from sandbox.model import GENCOVE_FINAL_STATUSES, StatusChange, status_at
from tests.synced import SyncedWorld
from tests.warehouse.customer_truth import trait_risk_cohorts, truth_of
from transform.reference import lifecycle_stages_table
from transform.schemas import TABLES
from warehouse.duck import connect_readonly
from warehouse.migrate import migrate

PATH = (
    "ordered",
    "shipped",
    "delivered",
    "sample_collected",
    "in_transit_to_lab",
    "received",
    "processing",
    "results_ready",
)
OFF_PATH_FINAL = ("failed", "cancelled", "replaced", "lost")
FINAL = frozenset({"results_ready", *OFF_PATH_FINAL})
# Funnel rank of a stage; at equal times a later stage is the current one (a final one after any path stage).
RANK = {
    **{stage: i + 1 for i, stage in enumerate(PATH)},
    **{s: 100 + i for i, s in enumerate(OFF_PATH_FINAL)},
}
RANK["enquiry"] = 0

# partner status -> (canonical stage, failure reason), as the partner docs and DESIGN.md describe them.
BIOMESIGHT_KIT = {
    "Shipping to Lab": ("in_transit_to_lab", None),
    "Sample Delivered": ("received", None),
    "Sample Received": ("received", None),
    "Lab Processing": ("processing", None),
    "Lab Processing Repeating": ("processing", None),
    "Results Processed": ("results_ready", None),
    "Replacement Kit": ("replaced", None),
    "Sample Not Viable": ("failed", "not_viable"),
    "Enquiry Initiated": ("enquiry", None),
    "Dried Out": ("failed", "dried_out"),
    "Sample Cancelled": ("cancelled", None),
    "QA Failed": ("failed", "qa_failed"),
}
BIOMESIGHT_ORDER = {
    "Pending": ("ordered", None),
    "Booked with Amazon": ("ordered", None),
    "Dispatched": ("shipped", None),
    "Shipped": ("shipped", None),
    "Delivered": ("delivered", None),
    "Cancelled": ("cancelled", None),
    "Error": ("failed", "fulfilment_error"),
    "Lost": ("lost", None),
    "Enquiry in Progress": ("enquiry", None),
}
GENCOVE = {
    "consumer_awaiting_kit_order": ("ordered", None),
    "kit_requested": ("ordered", None),
    "kit_ordered": ("ordered", None),
    "running": ("processing", None),
    "succeeded": ("results_ready", None),
    "failed": ("failed", "failed"),
    "failed qc": ("failed", "failed_qc"),
    "failed_qc": ("failed", "failed_qc"),
}
# Biomesight's order "Error" is followed by dispatch and delivery when fulfilment recovers: not an end.
RECOVERABLE = frozenset({"Error"})
# The furthest path stage an off-path status proves: Biomesight pushes kit statuses only once a sample is in
# the lab pipeline (its vocabulary starts at Shipping to Lab); the lab judged a not-viable or dried-out sample
# it received; QA and Gencove's analysis fail after processing; a kit lost in transit had shipped.
REACHED = {
    "Replacement Kit": "in_transit_to_lab",
    "Sample Cancelled": "in_transit_to_lab",
    "Enquiry Initiated": "in_transit_to_lab",
    "Sample Not Viable": "received",
    "Dried Out": "received",
    "QA Failed": "processing",
    "Lost": "shipped",
    "Cancelled": "ordered",
    "Error": "ordered",
    "Enquiry in Progress": "ordered",
    "failed": "processing",
    "failed qc": "processing",
    "failed_qc": "processing",
}
# The platform's own sample-collected event (the export's sample_date), named as kitsync names it.
SAMPLE_COLLECTED = "Sample Collected (platform)"
# Kit.failure_reason (the sandbox's ground truth) in the canonical spelling.
TRUE_REASON = {"dried out": "dried_out", "not viable": "not_viable", "QA failed": "qa_failed"}
# kit_lifecycle's duration columns: days between the first times of two consecutive path stages.
DURATIONS = {
    "days_ordered_to_shipped": ("ordered", "shipped"),
    "days_shipped_to_delivered": ("shipped", "delivered"),
    "days_delivered_to_sample_collected": ("delivered", "sample_collected"),
    "days_sample_collected_to_in_transit": ("sample_collected", "in_transit_to_lab"),
    "days_in_transit_to_received": ("in_transit_to_lab", "received"),
    "days_received_to_processing": ("received", "processing"),
    "days_processing_to_results_ready": ("processing", "results_ready"),
}
COHORT_DIMENSIONS = (
    "all",
    "provider",
    "purchase_month",
    "country",
    "sample_type",
    "bristol_scale",
    "bm_frequency",
    "trait_risk",
)

DAY = 86_400.0
# date_diff('second', ...) counts whole seconds; Gencove stamps carry microseconds.
SECONDS = 2 / DAY


@dataclass(frozen=True)
class Event:
    """One status kitsync could have observed, already mapped onto the lifecycle."""

    status: str
    stage: str
    reason: str | None
    at: datetime


@dataclass(frozen=True)
class Observed:
    """What the synced rounds could see: events per kit (with its order's), and every event of anything."""

    kits: dict[tuple[str, str], list[Event]]
    attributes: dict[tuple[str, str], dict[str, Any]]
    as_of: datetime


def _sync_times(synced: SyncedWorld) -> list[datetime]:
    """The virtual times of the rounds (each round imports the export, then polls)."""
    return [datetime.fromisoformat(report.virtual_time) for report in synced.reports]


def _seen(
    timeline: Iterable[StatusChange], first_poll: datetime, last: datetime, mapping: dict[str, tuple]
) -> set[Event]:
    """Biomesight: the status current at the first poll, then every change pushed until the last round."""
    timeline = list(timeline)
    seen = set()
    current = status_at(timeline, first_poll)
    if current is not None:
        seen.add(current)
    seen |= {change for change in timeline if first_poll < change.at <= last}
    return {Event(c.status, *mapping[c.status], c.at.replace(microsecond=0)) for c in seen}


def _gencove_seen(timeline: list[StatusChange], syncs: list[datetime], created: datetime) -> set[Event]:
    """Gencove: the listing's current status at every round, and the whole history once final."""
    seen = {status_at(timeline, moment) for moment in syncs if created <= moment}
    final = status_at(timeline, syncs[-1])
    if final is not None and final.status in GENCOVE_FINAL_STATUSES:
        seen |= set(timeline)
    return {Event(c.status, *GENCOVE[c.status], c.at) for c in seen if c is not None}


def observe(synced: SyncedWorld) -> Observed:
    """Rebuild from the sandbox's timelines every status the rounds could see, and each kit's cohort facts."""
    world = synced.world
    syncs = _sync_times(synced)
    first, last = syncs[0], syncs[-1]
    everything: list[datetime] = []
    orders: dict[str, set[Event]] = {}
    for order in world.orders.values():
        if order.account != BIOMESIGHT_CLIENT_ID or order.purchase_date > last:
            continue
        purchase = Event("Pending", "ordered", None, order.purchase_date.replace(microsecond=0))
        # Before its first change an order answers "Pending" dated at its purchase: the export's event again.
        events = {purchase} | _seen(order.timeline, first, last, BIOMESIGHT_ORDER)
        orders[order.order_id] = events
        everything += [e.at for e in events]
    kits: dict[tuple[str, str], list[Event]] = {}
    attributes: dict[tuple[str, str], dict[str, Any]] = {}
    for kit in world.kits.values():
        if kit.account != BIOMESIGHT_CLIENT_ID or kit.registered_at is None or kit.registered_at > last:
            continue
        events = _seen(kit.timeline, first, last, BIOMESIGHT_KIT)
        if kit.sample_date is not None:
            midnight = datetime.combine(kit.sample_date, time(), tzinfo=UTC)
            events.add(Event(SAMPLE_COLLECTED, "sample_collected", None, midnight))
        everything += [e.at for e in events]
        order = world.orders[kit.order_id]
        kits[("biomesight", kit.kit_id)] = sorted(events | orders[kit.order_id], key=lambda e: e.at)
        attributes[("biomesight", kit.kit_id)] = {
            "order_id": kit.order_id,
            "country_code": order.customer.country_code,
            "purchase_date": order.purchase_date.astimezone(UTC).date(),
            "sample_date": kit.sample_date,
            "sample_type": kit.sample_type,
            "bristol_scale": kit.bristol_scale,
            "bm_frequency": kit.bm_frequency,
            "created_at": None,
        }
    for sample in world.samples.values():
        if sample.account != GENCOVE_API_KEY or sample.project_id not in GENCOVE_PROJECT_IDS:
            continue
        if sample.created > last:
            continue
        events = _gencove_seen(sample.timeline, syncs, sample.created)
        everything += [e.at for e in events]
        kits[("gencove", sample.sample_id)] = sorted(events, key=lambda e: e.at)
        # Gencove tells nothing of country or sample facts; the purchase month is the sample's creation's.
        attributes[("gencove", sample.sample_id)] = {
            "order_id": None,
            "country_code": None,
            "purchase_date": sample.created.astimezone(UTC).date(),
            "sample_date": None,
            "sample_type": None,
            "bristol_scale": None,
            "bm_frequency": None,
            "created_at": sample.created,
        }
    return Observed(kits=kits, attributes=attributes, as_of=max(everything))


def _days(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds() / DAY


def _lifecycle_row(events: list[Event], attributes: dict[str, Any], as_of: datetime) -> dict[str, Any]:
    """One kit's expected kit_lifecycle row, from its observed events (sorted by time)."""
    first_at = {stage: min((e.at for e in events if e.stage == stage), default=None) for stage in PATH}
    current = max(events, key=lambda e: (e.at, RANK[e.stage]))
    # Entered its current stage: the first event of that stage after the last event of any other stage.
    others = [e.at for e in events if e.stage != current.stage]
    since = min(e.at for e in events if e.stage == current.stage and (not others or e.at >= max(others)))
    reasons = [e for e in events if e.reason is not None]
    row: dict[str, Any] = {
        **attributes,
        "purchase_month": attributes["purchase_date"].strftime("%Y-%m"),
        **{f"{stage}_at": first_at[stage] for stage in PATH},
        "ended_at": min(
            (e.at for e in events if e.stage in OFF_PATH_FINAL and e.status not in RECOVERABLE), default=None
        ),
        "current_stage": current.stage,
        "current_status": current.status,
        "current_stage_since": since,
        "days_in_current_stage": _days(since, as_of),
        "is_final": current.stage in FINAL and current.status not in RECOVERABLE,
        "failure_reason": max(reasons, key=lambda e: e.at).reason if reasons else None,
        "furthest_path_rank": max(
            (
                RANK[e.stage if e.stage in PATH else REACHED[e.status]]
                for e in events
                if e.stage in PATH or e.status in REACHED
            ),
            default=None,
        ),
        "days_total": _days(first_at["ordered"] or attributes["created_at"], first_at["results_ready"]),
    }
    for column, (before, after) in DURATIONS.items():
        row[column] = _days(first_at[before], first_at[after])
    return row


def expected_lifecycle(seen: Observed) -> pd.DataFrame:
    """kit_lifecycle as it should read, indexed by (provider, kit_id)."""
    rows = [
        {"provider": provider, "kit_id": kit_id, **_lifecycle_row(events, seen.attributes[key], seen.as_of)}
        for key, events in seen.kits.items()
        for provider, kit_id in [key]
    ]
    return pd.DataFrame(rows).set_index(["provider", "kit_id"]).sort_index()


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

    world, last = synced_world.world, _sync_times(synced_world)[-1]
    checked = 0
    for sample in world.samples.values():
        key = ("gencove", sample.sample_id)
        final = sample.timeline[-1]
        if key not in lifecycle.index or final.status != "succeeded" or final.at > last:
            continue
        running = next(c.at for c in sample.timeline if c.status == "running")
        row = lifecycle.loc[key]
        assert row["days_processing_to_results_ready"] == pytest.approx(_days(running, final.at), abs=SECONDS)
        assert row["days_total"] == pytest.approx(_days(sample.created, final.at), abs=SECONDS)
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
    world, last = synced_world.world, _sync_times(synced_world)[-1]
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


def cohort_members(expected: pd.DataFrame, trait_risk: dict[tuple[str, str], list[str]]) -> pd.DataFrame:
    """(cohort_dimension, cohort_value, provider, kit_id) for every kit and dimension it has a value for (and
    for trait_risk, every risk trait of its customer)."""
    rows = []
    for (provider, kit_id), row in expected.iterrows():
        values = {
            "all": "all",
            "provider": provider,
            "purchase_month": row["purchase_month"],
            "country": row["country_code"],
            "sample_type": row["sample_type"],
            "bristol_scale": None if pd.isna(row["bristol_scale"]) else str(int(row["bristol_scale"])),
            "bm_frequency": row["bm_frequency"],
        }
        rows += [
            {"cohort_dimension": d, "cohort_value": v, "provider": provider, "kit_id": kit_id}
            for d, v in values.items()
            if v is not None and not (isinstance(v, float) and math.isnan(v))
        ]
        rows += [
            {"cohort_dimension": "trait_risk", "cohort_value": v, "provider": provider, "kit_id": kit_id}
            for v in trait_risk.get((provider, kit_id), [])
        ]
    return pd.DataFrame(rows)


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
    last = _sync_times(synced_world)[-1]
    with_results = sum(
        1
        for k in synced_world.world.kits.values()
        if k.account == BIOMESIGHT_CLIENT_ID and k.results_ready_at is not None and k.results_ready_at <= last
    )
    assert got.at[("provider", "biomesight", "results_ready"), "kits_reached"] == with_results


def test_funnel_counts_kits_that_ended_in_the_lab_as_having_reached_it(synced_world: SyncedWorld) -> None:
    """Ground truth, not observability: every registered Biomesight kit went to the lab (its first status is
    'Shipping to Lab'), including those that later dried out, failed QA or were replaced."""
    last = _sync_times(synced_world)[-1]
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
    last = _sync_times(synced_world)[-1]
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
                durations.setdefault((provider, stage), []).append(_days(entered, min(later)))
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
