"""The canonical kit lifecycle: every partner status mapped onto one set of stages, in one place.

Stages on the main path, in funnel order: ordered, shipped, delivered, sample_collected, in_transit_to_lab,
received, processing, results_ready. Final off-path stages: failed (with a failure_reason), cancelled,
replaced, lost. Two stages are not on the path:

- `enquiry`: Biomesight's "Enquiry Initiated" (kit) and "Enquiry in Progress" (order) say a person is looking
  into the kit, not where the kit is. Mapping them onto a path stage would move the kit backwards or forwards
  in the funnel for no physical reason, and making them final would stop polling a kit that usually resumes.
  So they are a non-final stage of their own: the views can count enquiries and measure how long they last,
  and the next real status puts the kit back on the path.
- `unknown`: a status nobody documented. It is kept verbatim, counted and reported; never final, so the kit
  keeps being polled until a known status arrives.

Platform-side events (source "import") come from the platform's own order/kit export, not from a partner:
the purchase is an order event "Pending" at the purchase date (Biomesight's own default status for a new
order, never pushed by them), and the sample collection is a kit event "Sample Collected (platform)" at the
sample date. Both are attributed to the partner the order was placed with, so one kit's history is one query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

Entity = Literal["order", "kit"]

PATH_STAGES: Final = (
    "ordered",
    "shipped",
    "delivered",
    "sample_collected",
    "in_transit_to_lab",
    "received",
    "processing",
    "results_ready",
)
FAILURE_STAGES: Final = ("failed", "cancelled", "replaced", "lost")
FINAL_STAGES: Final = frozenset({"results_ready", *FAILURE_STAGES})
ENQUIRY: Final = "enquiry"
UNKNOWN: Final = "unknown"
STAGES: Final = (*PATH_STAGES, *FAILURE_STAGES, ENQUIRY, UNKNOWN)
FAILURE_REASONS: Final = ("not_viable", "dried_out", "qa_failed", "failed_qc", "failed", "fulfilment_error")

# Funnel order: path stages 1..8; finals after them (a kit that ended there never reached a later path stage);
# enquiry and unknown have no place in the funnel.
STAGE_RANK: Final[dict[str, int]] = {
    **{stage: i + 1 for i, stage in enumerate(PATH_STAGES)},
    **{stage: 100 + i for i, stage in enumerate(FAILURE_STAGES)},
    ENQUIRY: 0,
    UNKNOWN: 0,
}

PLATFORM_PURCHASE_STATUS: Final = "Pending"
PLATFORM_SAMPLE_COLLECTED_STATUS: Final = "Sample Collected (platform)"


@dataclass(frozen=True)
class StageMapping:
    """Where one partner status sits in the lifecycle."""

    provider: str
    entity: Entity
    partner_status: str
    stage: str
    failure_reason: str | None
    description: str

    @property
    def is_final(self) -> bool:
        if (self.provider, self.entity, self.partner_status) in _RECOVERABLE:
            return False
        return is_final_stage(self.stage, self.entity)

    @property
    def reached_stage(self) -> str | None:
        """The furthest path stage this status proves the kit reached (for funnels), None if it proves none.

        A path status proves its own stage. An off-path one proves where the kit must have been: Biomesight
        pushes kit statuses only "as a sample moves through the lab pipeline" (its vocabulary starts at
        Shipping to Lab), a sample the lab found not viable or dried out was received, a failed QA or a
        failed analysis was processed, a kit lost in transit had shipped.
        """
        if self.stage in PATH_STAGES:
            return self.stage
        return _REACHED.get((self.provider, self.entity, self.partner_status))


# Every documented status. Biomesight's descriptions are quoted from its partner doc; Gencove's from its guide
# and the notes (Gencove publishes no enum).
_DOCUMENTED_ROWS: Final[tuple[tuple[str, Entity, str, str, str | None, str], ...]] = (
    # Biomesight kit / sample statuses.
    (
        "biomesight",
        "kit",
        PLATFORM_SAMPLE_COLLECTED_STATUS,
        "sample_collected",
        None,
        "The customer collected the sample (platform export: sample_date).",
    ),
    ("biomesight", "kit", "Shipping to Lab", "in_transit_to_lab", None, "Kit dispatched to the laboratory"),
    # The lab has the sample physically; acknowledging it is lab bookkeeping, so both count as received.
    (
        "biomesight",
        "kit",
        "Sample Delivered",
        "received",
        None,
        "Sample delivered to lab but not yet acknowledged",
    ),
    ("biomesight", "kit", "Sample Received", "received", None, "Lab has received and logged the sample"),
    ("biomesight", "kit", "Lab Processing", "processing", None, "Sequencing and analysis has started"),
    (
        "biomesight",
        "kit",
        "Lab Processing Repeating",
        "processing",
        None,
        "Sample is being processed a second time (can occur up to 2 times)",
    ),
    (
        "biomesight",
        "kit",
        "Results Processed",
        "results_ready",
        None,
        "Analysis complete — results are available via the API",
    ),
    ("biomesight", "kit", "Replacement Kit", "replaced", None, "A replacement kit has been issued"),
    (
        "biomesight",
        "kit",
        "Sample Not Viable",
        "failed",
        "not_viable",
        "Sample could not be processed; a replacement may be needed",
    ),
    (
        "biomesight",
        "kit",
        "Enquiry Initiated",
        ENQUIRY,
        None,
        "A manual enquiry has been opened for this sample",
    ),
    (
        "biomesight",
        "kit",
        "Dried Out",
        "failed",
        "dried_out",
        "Sample dried out in transit; a new sample is needed",
    ),
    (
        "biomesight",
        "kit",
        "Sample Cancelled",
        "cancelled",
        None,
        "Sample processing was cancelled (normally at customer request)",
    ),
    (
        "biomesight",
        "kit",
        "QA Failed",
        "failed",
        "qa_failed",
        "Lab processing completed but did not pass quality criteria",
    ),
    # Biomesight order statuses.
    (
        "biomesight",
        "order",
        PLATFORM_PURCHASE_STATUS,
        "ordered",
        None,
        "Default status of a new order (never pushed; the platform export's purchase_date).",
    ),
    (
        "biomesight",
        "order",
        "Booked with Amazon",
        "ordered",
        None,
        "Order submitted to Amazon FBA for fulfilment",
    ),
    ("biomesight", "order", "Dispatched", "shipped", None, "Kit has been dispatched from the warehouse"),
    ("biomesight", "order", "Shipped", "shipped", None, "Kit is in transit to the customer"),
    ("biomesight", "order", "Delivered", "delivered", None, "Kit has been delivered"),
    ("biomesight", "order", "Cancelled", "cancelled", None, "Order has been cancelled"),
    ("biomesight", "order", "Error", "failed", "fulfilment_error", "An error occurred during fulfilment"),
    ("biomesight", "order", "Lost", "lost", None, "Kit was lost in transit"),
    ("biomesight", "order", "Enquiry in Progress", ENQUIRY, None, "A fulfilment enquiry is in progress"),
    # Gencove sample statuses (one sample is one kit; Gencove has no separate order entity).
    (
        "gencove",
        "kit",
        "consumer_awaiting_kit_order",
        "ordered",
        None,
        "Sample created; the kit order is not yet placed.",
    ),
    ("gencove", "kit", "kit_requested", "ordered", None, "Kit has been requested through the API"),
    (
        "gencove",
        "kit",
        "kit_ordered",
        "ordered",
        None,
        "Gencove has placed the order with the sequencing provider",
    ),
    ("gencove", "kit", "running", "processing", None, "Sequencing data is being analyzed by Gencove"),
    ("gencove", "kit", "succeeded", "results_ready", None, "Analysis complete, results are ready"),
    ("gencove", "kit", "failed", "failed", "failed", "Analysis failed"),
    ("gencove", "kit", "failed qc", "failed", "failed_qc", "Analysis failed quality control"),
    ("gencove", "kit", "failed_qc", "failed", "failed_qc", "Analysis failed quality control"),
)
DOCUMENTED: Final[tuple[StageMapping, ...]] = tuple(StageMapping(*row) for row in _DOCUMENTED_ROWS)

# Off-path statuses that are not the end: Biomesight's order "Error" is followed by dispatch and delivery once
# fulfilment recovers, so such an order keeps being polled.
_RECOVERABLE: Final = frozenset({("biomesight", "order", "Error")})

# The path stage an off-path status proves was reached (see StageMapping.reached_stage).
_REACHED: Final[dict[tuple[str, str, str], str]] = {
    ("biomesight", "kit", "Replacement Kit"): "in_transit_to_lab",
    ("biomesight", "kit", "Sample Cancelled"): "in_transit_to_lab",
    ("biomesight", "kit", "Enquiry Initiated"): "in_transit_to_lab",
    ("biomesight", "kit", "Sample Not Viable"): "received",
    ("biomesight", "kit", "Dried Out"): "received",
    ("biomesight", "kit", "QA Failed"): "processing",
    ("biomesight", "order", "Lost"): "shipped",
    ("biomesight", "order", "Cancelled"): "ordered",
    ("biomesight", "order", "Error"): "ordered",
    ("biomesight", "order", "Enquiry in Progress"): "ordered",
    ("gencove", "kit", "failed"): "processing",
    ("gencove", "kit", "failed qc"): "processing",
    ("gencove", "kit", "failed_qc"): "processing",
}


def _normalize(provider: str, status: str) -> str:
    """The lookup key: case and spacing vary by channel (Gencove spells 'failed qc' two ways)."""
    key = " ".join(status.split()).casefold()
    if provider == "gencove":
        key = re.sub(r"[\s\-]+", "_", key)
    return key


_BY_KEY: Final[dict[tuple[str, str], StageMapping]] = {}
for _mapping in DOCUMENTED:
    _BY_KEY.setdefault((_mapping.provider, _normalize(_mapping.provider, _mapping.partner_status)), _mapping)


def lookup(provider: str, partner_status: str) -> StageMapping | None:
    """The documented mapping of a status, or None when nobody documented it."""
    return _BY_KEY.get((provider, _normalize(provider, partner_status)))


def to_stage(provider: str, partner_status: str) -> tuple[str, str | None]:
    """(stage, failure_reason) for a partner status; ("unknown", None) for an undocumented one."""
    mapping = lookup(provider, partner_status)
    if mapping is None:
        return UNKNOWN, None
    return mapping.stage, mapping.failure_reason


def entity_of(provider: str, partner_status: str) -> Entity | None:
    """Which entity a documented status is about (Biomesight's kit and order statuses never share a name)."""
    mapping = lookup(provider, partner_status)
    return None if mapping is None else mapping.entity


def is_final_stage(stage: str, entity: Entity = "kit") -> bool:
    """A final stage never changes again; for an order, delivery ends what the order itself can tell us."""
    return stage in FINAL_STAGES or (entity == "order" and stage == "delivered")


def is_final(provider: str, partner_status: str, entity: Entity | None = None) -> bool:
    """Whether an entity in this status needs no more polling ("Results Processed", "succeeded", failures...).

    Unknown statuses are not final: polling continues until a status we understand arrives.
    """
    mapping = lookup(provider, partner_status)
    if mapping is None:
        return False
    if entity is not None and entity != mapping.entity:
        return is_final_stage(mapping.stage, entity)
    return mapping.is_final
