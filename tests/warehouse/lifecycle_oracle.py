"""The lifecycle views' oracle: what kit_lifecycle, funnel, failure_rates and stuck_kits should read, rebuilt
from the sandbox's ground truth (kit, order and sample timelines), restricted to what the partner APIs let
kitsync see during the synced world's rounds:

- the platform export at each round lists orders purchased and kits registered by then: an order contributes
  its purchase ("Pending" at the purchase time), a kit its sample collection (midnight of its sample date);
- Biomesight's status endpoints show only the CURRENT status with its date, so a poll at the first round sees
  one status per order and kit; webhooks then push every change after that, up to the last round;
- Gencove's listing shows each sample's current status at every round, and once a sample is final its whole
  history (`sample-statuses`) is fetched.

The mapping of partner statuses onto the canonical lifecycle is written out below from the partner docs (the
DESIGN's lifecycle), not imported from transform/, so a wrong mapping there fails the tests that use it
(tests/warehouse/test_views_lifecycle.py, and the content checks of tests/reliability and tests/flows).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

import pandas as pd

from sandbox.accounts import BIOMESIGHT_CLIENT_ID, GENCOVE_API_KEY, GENCOVE_PROJECT_IDS
from sandbox.model import GENCOVE_FINAL_STATUSES, StatusChange, status_at
from tests.synced import SyncedWorld

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


def sync_times(synced: SyncedWorld) -> list[datetime]:
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
    syncs = sync_times(synced)
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


def days_between(start: datetime | None, end: datetime | None) -> float | None:
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
        "days_in_current_stage": days_between(since, as_of),
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
        "days_total": days_between(
            first_at["ordered"] or attributes["created_at"], first_at["results_ready"]
        ),
    }
    for column, (before, after) in DURATIONS.items():
        row[column] = days_between(first_at[before], first_at[after])
    return row


def expected_lifecycle(seen: Observed) -> pd.DataFrame:
    """kit_lifecycle as it should read, indexed by (provider, kit_id)."""
    rows = [
        {"provider": provider, "kit_id": kit_id, **_lifecycle_row(events, seen.attributes[key], seen.as_of)}
        for key, events in seen.kits.items()
        for provider, kit_id in [key]
    ]
    return pd.DataFrame(rows).set_index(["provider", "kit_id"]).sort_index()


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
