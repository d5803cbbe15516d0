"""The sandbox world's nouns: what exists at each partner, and when each thing happened.

Everything carries its full timeline (past and future relative to the virtual clock); what an API shows is the
part of it at or before `clock.now()`. That makes the world deterministic from its seed while the clock moves.
Generation lives in `sandbox/world.py`, the changes the APIs make in `sandbox/changes.py`; the HTTP faces in
`sandbox/biomesight_api.py` and `sandbox/gencove_api.py`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

# Biomesight's documented vocabularies, exactly as the partner doc spells them.
BIOMESIGHT_KIT_STATUSES = (
    "Shipping to Lab",
    "Sample Delivered",
    "Sample Received",
    "Lab Processing",
    "Lab Processing Repeating",
    "Results Processed",
    "Replacement Kit",
    "Sample Not Viable",
    "Enquiry Initiated",
    "Dried Out",
    "Sample Cancelled",
    "QA Failed",
)
BIOMESIGHT_ORDER_STATUSES = (
    "Pending",  # the default on creation; never pushed as a webhook
    "Booked with Amazon",
    "Dispatched",
    "Shipped",
    "Delivered",
    "Cancelled",
    "Error",
    "Lost",
    "Enquiry in Progress",
)
BM_FREQUENCIES = (
    "3 or more times per day",
    "After every meal",
    "Twice daily",
    "Once daily",
    "Every 2 to 3 days",
    "Every 4 to 5 days",
    "About once a week",
)
# Gencove statuses seen in the wild (no enum is published); failed QC has two spellings.
GENCOVE_STATUSES = (
    "consumer_awaiting_kit_order",
    "kit_requested",
    "kit_ordered",
    "running",
    "succeeded",
    "failed",
    "failed qc",
    "failed_qc",
)
GENCOVE_FINAL_STATUSES = ("succeeded", "failed", "failed qc", "failed_qc")
GENCOVE_DELIVERABLE_TYPES = (
    "fastq-r1",
    "fastq-r2",
    "alignment-bam",
    "alignment-bai",
    "impute-vcf",
    "impute-tbi",
    "impute-csi",
    "ancestry-json",
    "report-zip",
)
TAXONOMY_RANKS = ("phylum", "class", "order", "family", "genus", "species")


@dataclass(frozen=True)
class StatusChange:
    """One status a partner reported, at the (virtual) time it happened."""

    status: str
    at: datetime
    description: str = ""


def status_at(timeline: list[StatusChange], moment: datetime) -> StatusChange | None:
    """The latest change at or before `moment` (timelines are sorted by time), or None before the first."""
    current = None
    for change in timeline:
        if change.at > moment:
            break
        current = change
    return current


@dataclass
class Customer:
    """A platform customer: the PII that must never reach kitsync's lake or warehouse."""

    customer_id: str
    first_name: str
    last_name: str
    email: str
    phone: str
    address_line1: str
    address_line2: str
    city: str
    state: str
    postcode: str
    country_code: str


@dataclass
class OrderItem:
    """A line of a Biomesight order."""

    product_sku: str
    product_name: str
    quantity: int = 1


@dataclass
class Order:
    """A Biomesight order placed by a partner account (`account` is its client id)."""

    order_id: str
    account: str
    sale_id: int
    purchase_date: datetime
    customer: Customer
    items: list[OrderItem]
    shipping_speed: str = "standard"
    destination: dict[str, str] = field(default_factory=dict)
    timeline: list[StatusChange] = field(default_factory=list)  # "Pending" from purchase_date is implicit
    kit_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TaxonAbundance:
    """One taxon of one kit at one rank; `lineage` is the Greengenes string down to that rank."""

    rank: str
    taxon: str
    lineage: str
    abundance: float  # fraction of the rank's total, in [0, 1]
    count: int  # reads assigned, for the count-based CSV dialects


@dataclass
class BiomesightResult:
    """Lab results for one kit: scores and recommendations (JSON) and the taxonomy (base64 CSV)."""

    sample_id: int
    pipeline_id: int
    export_date: datetime
    scores: dict[str, float]  # keys exactly as the partner sends them: gut_health, Diversity, Probiotic, ...
    recommendations: dict[str, dict[str, list[str]]]
    taxonomy: list[TaxonAbundance]
    csv_dialect: str = "greengenes"  # or "tax_name" / "taxon_id": the other dialects in partners/NOTES.md
    shannon_genus: float = 0.0  # ground truth: Shannon index of the genus-level abundances


@dataclass
class Kit:
    """A Biomesight collection kit. It exists from its order on; it has statuses once registered."""

    kit_id: str
    order_id: str
    account: str
    registered_at: datetime | None = None
    sample_date: date | None = None
    sample_type: str = "Gut"
    bristol_scale: int | None = None
    bm_frequency: str | None = None
    timeline: list[StatusChange] = field(default_factory=list)
    result: BiomesightResult | None = None
    results_ready_at: datetime | None = None  # JSON and CSV from here on
    pdf_ready_at: datetime | None = None  # PDF from here on (later than JSON: the 203 window)
    replaces: str | None = None  # the kit id this one replaces
    failure_reason: str | None = None  # ground truth for the failure-rate views


@dataclass(frozen=True)
class GencoveFile:
    """A deliverable of a succeeded Gencove sample."""

    file_id: str
    file_type: str
    size: int
    checksum_sha256: str
    s3_path: str


@dataclass
class GencoveSample:
    """A Gencove sample (one kit order = one sample) in a project of an organisation (`account`: API key)."""

    sample_id: str
    project_id: str
    account: str
    created: datetime
    client_id: str
    customer: Customer
    metadata: dict[str, Any]
    timeline: list[StatusChange]
    archive_timeline: list[StatusChange] = field(default_factory=list)
    failed_qc: list[str] = field(default_factory=list)
    files: list[GencoveFile] = field(default_factory=list)
    quality_controls: list[dict[str, Any]] = field(default_factory=list)
    trait_scores: list[dict[str, Any]] = field(default_factory=list)
    ancestry: dict[str, Any] = field(default_factory=dict)
    hidden: bool = False

    def modified_at(self, moment: datetime) -> datetime:
        """When the sample last changed as seen at `moment` (its latest status or archive change)."""
        changes = [c.at for c in (*self.timeline, *self.archive_timeline) if c.at <= moment]
        return max(changes, default=self.created)


class Clock:
    """The sandbox's virtual clock: tests and the demo move it forward; nothing else does."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the sandbox clock runs on aware UTC datetimes")
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The current virtual time."""
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward (never back) and return the new time."""
        if delta < timedelta(0):
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._now += delta
            return self._now

    def set(self, moment: datetime) -> datetime:
        """Jump to `moment` if it is later than now."""
        with self._lock:
            self._now = max(self._now, moment.astimezone(UTC))
            return self._now


@dataclass
class World:
    """Everything both partners know, with full timelines; `clock` decides what is visible."""

    seed: int
    clock: Clock
    customers: dict[str, Customer] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    kits: dict[str, Kit] = field(default_factory=dict)
    samples: dict[str, GencoveSample] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
