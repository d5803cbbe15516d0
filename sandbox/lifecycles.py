"""Status timelines with realistic turnaround and failure rates: Biomesight orders and kits, Gencove samples.

Each function draws only from the `random.Random` it is handed: a timeline is fixed by its seed and start.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sandbox.model import StatusChange

KIT_DESCRIPTIONS = {
    "Shipping to Lab": "Kit dispatched to the laboratory",
    "Sample Delivered": "Sample delivered to lab but not yet acknowledged",
    "Sample Received": "Lab has received and logged the sample",
    "Lab Processing": "Sequencing and analysis has started",
    "Lab Processing Repeating": "Sample is being processed a second time",
    "Results Processed": "Analysis complete — results are available via the API",
    "Replacement Kit": "A replacement kit has been issued",
    "Sample Not Viable": "Sample could not be processed; a replacement may be needed",
    "Enquiry Initiated": "A manual enquiry has been opened for this sample",
    "Dried Out": "Sample dried out in transit; a new sample is needed",
    "Sample Cancelled": "Sample processing was cancelled",
    "QA Failed": "Lab processing completed but did not pass quality criteria",
}
ORDER_DESCRIPTIONS = {
    "Booked with Amazon": "Order submitted to Amazon FBA for fulfilment",
    "Dispatched": "Kit has been dispatched from the warehouse",
    "Shipped": "Kit is in transit to the customer",
    "Delivered": "Kit has been delivered",
    "Cancelled": "Order has been cancelled",
    "Error": "An error occurred during fulfilment",
    "Lost": "Kit was lost in transit",
    "Enquiry in Progress": "A fulfilment enquiry is in progress",
}
# Ground-truth failure reasons (Kit.failure_reason), named like the canonical lifecycle's reasons.
FAILURE_BY_STATUS = {
    "Dried Out": "dried out",
    "Sample Not Viable": "not viable",
    "QA Failed": "QA failed",
    "Sample Cancelled": "cancelled",
}
ARCHIVE_AFTER = timedelta(days=30)


def after(rng: random.Random, moment: datetime, low_days: float, high_days: float) -> datetime:
    """A moment `low_days`..`high_days` later, whole seconds, and always at least a minute later."""
    seconds = max(60, round(rng.uniform(low_days, high_days) * 86_400))
    return moment + timedelta(seconds=seconds)


# --- Biomesight orders --------------------------------------------------------------------------------------


@dataclass
class OrderFulfilment:
    """An order's timeline and, if the kit reached the customer, when."""

    timeline: list[StatusChange]
    delivered_at: datetime | None


def order_fulfilment(
    rng: random.Random, placed_at: datetime, shipping_speed: str = "standard"
) -> OrderFulfilment:
    """Booked with Amazon -> Dispatched -> Shipped -> Delivered; about 1% cancelled, 1% lost, rare errors."""
    express = shipping_speed != "standard"
    timeline: list[StatusChange] = []

    def add(status: str, moment: datetime) -> datetime:
        timeline.append(StatusChange(status, moment, ORDER_DESCRIPTIONS[status]))
        return moment

    moment = add("Booked with Amazon", after(rng, placed_at, 0.01, 1))
    roll = rng.random()
    if roll < 0.01:
        add("Cancelled", after(rng, moment, 0.1, 2))
        return OrderFulfilment(timeline, None)
    if roll < 0.014:
        moment = add("Error", after(rng, moment, 0.1, 1))
    moment = add("Dispatched", after(rng, moment, 0.2, 1) if express else after(rng, moment, 1, 2))
    moment = add("Shipped", after(rng, moment, 0.05, 1))
    roll = rng.random()
    if roll < 0.006:
        moment = add("Enquiry in Progress", after(rng, moment, 5, 9))
        if rng.random() < 0.4:
            add("Lost", after(rng, moment, 3, 10))
            return OrderFulfilment(timeline, None)
    elif roll < 0.016:
        add("Lost", after(rng, moment, 7, 14))
        return OrderFulfilment(timeline, None)
    delivered = add("Delivered", after(rng, moment, 1, 2) if express else after(rng, moment, 2, 7))
    return OrderFulfilment(timeline, delivered)


# --- Biomesight kits ----------------------------------------------------------------------------------------


@dataclass
class KitLifecycle:
    """A registered kit's lab journey and its ground truth."""

    timeline: list[StatusChange] = field(default_factory=list)
    results_ready_at: datetime | None = None
    pdf_ready_at: datetime | None = None
    failure_reason: str | None = None
    replacement_at: datetime | None = None  # when "Replacement Kit" was issued


class _KitJourney:
    """Appends kit statuses to a lifecycle, recording the failure reason a status implies."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.life = KitLifecycle()

    def add(self, status: str, moment: datetime) -> datetime:
        self.life.timeline.append(StatusChange(status, moment, KIT_DESCRIPTIONS[status]))
        if status in FAILURE_BY_STATUS:
            self.life.failure_reason = FAILURE_BY_STATUS[status]
        return moment

    def to_lab(self, registered_at: datetime) -> datetime | None:
        """Shipping to Lab until Sample Received; None if the customer cancels on the way."""
        rng, add = self.rng, self.add
        moment = add("Shipping to Lab", registered_at)
        if rng.random() < 0.01:
            add("Sample Cancelled", after(rng, moment, 0.3, 4))
            return None
        # The post is slow now and then: a long tail for the stuck-kit view to find.
        slow = rng.random() < 0.02
        moment = add("Sample Delivered", after(rng, moment, 8, 20) if slow else after(rng, moment, 2, 6))
        if rng.random() < 0.02:
            moment = add("Enquiry Initiated", after(rng, moment, 4, 8))
            return add("Sample Received", after(rng, moment, 1, 3))
        return add("Sample Received", after(rng, moment, 0, 2))

    def in_lab(self, received_at: datetime) -> datetime | None:
        """From receipt to results (returns None) or to a failure (returns when it failed)."""
        rng, add = self.rng, self.add
        roll = rng.random()
        if roll < 0.025:
            return add("Dried Out", after(rng, received_at, 0.1, 1))
        if roll < 0.045:
            return add("Sample Not Viable", after(rng, received_at, 1, 3))
        moment = add("Lab Processing", after(rng, received_at, 1, 5))
        if rng.random() < 0.08:
            for _ in range(2 if rng.random() < 0.25 else 1):
                moment = add("Lab Processing Repeating", after(rng, moment, 2, 6))
        roll = rng.random()
        if roll < 0.02:
            return add("QA Failed", after(rng, moment, 7, 21))
        if roll < 0.03:
            moment = add("Enquiry Initiated", after(rng, moment, 10, 20))
            moment = add("Results Processed", after(rng, moment, 2, 8))
        else:
            moment = add("Results Processed", after(rng, moment, 7, 21))
        self.life.results_ready_at = moment
        self.life.pdf_ready_at = moment + timedelta(seconds=round(rng.uniform(3 * 3600, 48 * 3600)))
        return None


def kit_lifecycle(rng: random.Random, registered_at: datetime) -> KitLifecycle:
    """From `Shipping to Lab` at registration to results, a failure, or a replacement."""
    journey = _KitJourney(rng)
    received_at = journey.to_lab(registered_at)
    if received_at is None:
        return journey.life
    failed_at = journey.in_lab(received_at)
    if failed_at is not None and rng.random() < 0.6:
        journey.life.replacement_at = journey.add("Replacement Kit", after(rng, failed_at, 1, 4))
    return journey.life


# --- Gencove samples ----------------------------------------------------------------------------------------


@dataclass
class SampleLifecycle:
    """A Gencove sample's statuses, archive track and outcome."""

    timeline: list[StatusChange]
    archive_timeline: list[StatusChange]
    outcome: str | None  # the final status, or None while it never finishes
    failed_qc: list[str]


def _precise(rng: random.Random, moment: datetime) -> datetime:
    """Gencove stamps carry microseconds."""
    return moment + timedelta(microseconds=rng.randrange(1_000_000))


def sample_lifecycle(rng: random.Random, created: datetime, test_mode: bool = False) -> SampleLifecycle:
    """kit_requested -> kit_ordered -> running -> succeeded, ~3% failed QC (two spellings), ~1% failed."""
    timeline = [StatusChange("kit_requested", created)]
    life = SampleLifecycle(timeline, [], None, [])
    if test_mode:  # test orders are never shipped, so they never move on
        return life
    moment = _precise(rng, after(rng, created, 0.01, 2))
    timeline.append(StatusChange("kit_ordered", moment))
    if rng.random() < 0.05:  # the customer never sends the kit back
        return life
    moment = _precise(rng, after(rng, moment, 10, 30))
    timeline.append(StatusChange("running", moment))
    roll = rng.random()
    if roll < 0.01:
        outcome = "failed"
        moment = _precise(rng, after(rng, moment, 1, 5))
    elif roll < 0.04:
        outcome = "failed qc" if rng.random() < 0.5 else "failed_qc"
        life.failed_qc = [rng.choice(("coverage", "coverage", "format", "contamination"))]
        moment = _precise(rng, after(rng, moment, 2, 7))
    else:
        outcome = "succeeded"
        moment = _precise(rng, after(rng, moment, 2, 7))
    timeline.append(StatusChange(outcome, moment))
    life.outcome = outcome
    if outcome != "failed":
        available = _precise(rng, moment + timedelta(seconds=rng.randint(1, 600)))
        life.archive_timeline = [
            StatusChange("available", available),
            StatusChange("archived", available + ARCHIVE_AFTER),
        ]
    return life
