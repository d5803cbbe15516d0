"""What the sandbox's partners show at a virtual moment, from its ground truth: flow tests' expectations.

The final-status sets are the partners' documented vocabularies (what never changes again), written here from
the partner docs rather than taken from kitsync's own mapping, so a wrong mapping fails the tests.
"""

from __future__ import annotations

from datetime import datetime

from sandbox.accounts import BIOMESIGHT_CLIENT_ID, GENCOVE_API_KEY, GENCOVE_PROJECT_IDS
from sandbox.model import GencoveSample, Kit, Order, World, status_at

FINAL_KIT_STATUSES = frozenset(
    {
        "Results Processed",
        "Replacement Kit",
        "Sample Not Viable",
        "Dried Out",
        "Sample Cancelled",
        "QA Failed",
    }
)
FINAL_ORDER_STATUSES = frozenset({"Delivered", "Cancelled", "Error", "Lost"})
FINAL_SAMPLE_STATUSES = frozenset({"succeeded", "failed", "failed qc", "failed_qc"})


def our_orders(world: World, at: datetime) -> list[Order]:
    """Our Biomesight orders purchased by `at` (what the platform export lists)."""
    return [o for o in world.orders.values() if o.account == BIOMESIGHT_CLIENT_ID and o.purchase_date <= at]


def registered_kits(world: World, at: datetime) -> list[Kit]:
    """Our Biomesight kits registered by `at` (what the platform export names)."""
    return [
        k
        for k in world.kits.values()
        if k.account == BIOMESIGHT_CLIENT_ID and k.registered_at is not None and k.registered_at <= at
    ]


def kit_is_final(kit: Kit, at: datetime) -> bool:
    change = status_at(kit.timeline, at)
    return change is not None and change.status in FINAL_KIT_STATUSES


def order_is_final(order: Order, at: datetime) -> bool:
    change = status_at(order.timeline, at)
    return change is not None and change.status in FINAL_ORDER_STATUSES


def results_visible(kit: Kit, at: datetime) -> bool:
    return kit.results_ready_at is not None and kit.results_ready_at <= at


def our_samples(world: World, at: datetime) -> list[GencoveSample]:
    """Our Gencove samples in the synced projects that exist by `at`."""
    return [
        s
        for s in world.samples.values()
        if s.account == GENCOVE_API_KEY and s.project_id in GENCOVE_PROJECT_IDS and s.created <= at
    ]


def sample_is_final(sample: GencoveSample, at: datetime) -> bool:
    change = status_at(sample.timeline, at)
    return change is not None and change.status in FINAL_SAMPLE_STATUSES


def requests(counts: dict[str, dict[str, int]], endpoint: str) -> int:
    """All requests an endpoint answered, whatever the status."""
    return sum(counts.get(endpoint, {}).values())
