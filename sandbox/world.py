"""The sandbox's deterministic world, as generated from (seed, kits, start).

Everything random comes from `random.Random` instances seeded from the world's seed (string seeds, which
Python hashes with SHA-512: no PYTHONHASHSEED dependence) and ids from uuid5, never from the wall clock.
What the partner APIs later do to it (orders placed, kits registered, sample kits ordered) lives in
`sandbox/changes.py`, which draws new kits and samples with this module's building blocks (`seeded_rng`,
`new_kit_id`, `add_sample`...), so a kit made through an API lives the same kind of life as a generated one.

Visibility is the HTTP side's job: a kit counts as registered at `t` only if `registered_at <= t` (generated
kits may be registered in the virtual future), results only from `results_ready_at`, the PDF only from
`pdf_ready_at`, Gencove deliverables only once the sample's final status is visible.
"""

from __future__ import annotations

import gc
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sandbox.accounts import (
    BIOMESIGHT_CLIENT_ID,
    GENCOVE_API_KEY,
    GENCOVE_PROJECT_IDS,
    OTHER_BIOMESIGHT_CLIENT_ID,
    OTHER_GENCOVE_API_KEY,
    OTHER_GENCOVE_PROJECT_IDS,
)
from sandbox.customers import make_customer
from sandbox.gencove_results import DeliverableRecipe, trait_z
from sandbox.generated import GeneratedKit, GeneratedSample
from sandbox.lifecycles import KitLifecycle, kit_lifecycle, order_fulfilment, sample_lifecycle
from sandbox.model import Clock, Customer, GencoveSample, Kit, Order, OrderItem, World
from sandbox.results import ResultRecipe
from sandbox.taxonomy import GENOTYPE_EFFECTS, Cohort

__all__ = ["DEFAULT_START", "HISTORY_DAYS", "generate_world", "kit_issued_at"]

DEFAULT_START = datetime(2026, 11, 1, tzinfo=UTC)
HISTORY_DAYS = 182  # orders and samples spread over about six months before the clock starts
SAMPLE_NAMESPACE = uuid.UUID("7b0e4a52-1c3d-4e8f-9a6b-5c4d3e2f1a09")
PRODUCT_SKU = "BMS-GUT-001"
PRODUCT_NAME = "Biomesight Gut Microbiome Test"
_KIT_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # printed on tubes: no 0/O or 1/I to misread
FREEZE_FROM = 50_000  # kits + samples from which generate_world freezes the world out of GC scans
FIRST_SALE_ID = 1000
FIRST_SAMPLE_ID = 300
# Bristol stool scale shares, and bowel-movement frequencies that go with slow, normal and fast transit.
_BRISTOL_WEIGHTS = (5, 10, 20, 35, 15, 10, 5)
_BM_BY_TRANSIT = {
    "slow": ("Every 2 to 3 days", "Every 4 to 5 days", "About once a week", "Once daily"),
    "normal": ("Once daily", "Once daily", "Twice daily", "Every 2 to 3 days"),
    "fast": ("3 or more times per day", "After every meal", "Twice daily", "Once daily"),
}


# Gencove samples of our organisation: how the platform's one customer id travels with them (the rest of the
# rolls, 3%, carry no customer id at all: staff and partner test kits, which analyses count and never guess).
SHARED_CUSTOMER_SHARE = 0.30  # of our Gencove samples, bought by a customer who also bought a Biomesight kit
_ID_IN_METADATA_ONLY = 0.70  # the kit-ordering guide's way: metadata.customer_id, client_id ""
_ID_IN_BOTH = 0.88  # metadata.customer_id and the same id as client_id
_ID_IN_CLIENT_ID_ONLY = 0.97  # an older integration: client_id only, no customer id in the metadata
_NOTE_SHARE = 0.1  # samples whose metadata also carries free text written by the platform's support staff


def seeded_rng(world_seed: int, *parts: object) -> random.Random:
    return random.Random(":".join(str(p) for p in (world_seed, *parts)))


def new_kit_id(rng: random.Random, world: World) -> str:
    while True:
        kit_id = "BS1-" + "".join(rng.choice(_KIT_ALPHABET) for _ in range(5))
        if kit_id not in world.kits:
            return kit_id


def _history_moment(rng: random.Random, start: datetime) -> datetime:
    """A moment in the six months before `start`, denser towards `start` (the business grows)."""
    fraction = rng.random() if rng.random() < 0.5 else rng.random() ** 0.5
    days_before = HISTORY_DAYS * (1 - fraction)
    moment = start - timedelta(days=days_before)
    return moment.replace(microsecond=0)


def genome_seed(world: World, customer_id: str) -> str:
    """Which genome a platform customer carries: the same person at both partners has the same one."""
    return f"{world.seed}:{customer_id}" if customer_id else ""


def genome_cohort(world: World, customer_id: str) -> tuple[tuple[str, float], ...]:
    """The customer's polygenic scores that shift their microbiome (see sandbox.taxonomy.GENOTYPE_EFFECTS)."""
    seed = genome_seed(world, customer_id)
    if not seed:
        return ()
    return tuple(sorted((trait, trait_z(seed, trait)) for trait in GENOTYPE_EFFECTS))


def pick_pipeline(rng: random.Random) -> int:
    """Most kits run through the current Greengenes pipeline (3); about 10% through older ones (1, 2)."""
    roll = rng.random()
    return 1 if roll < 0.05 else 2 if roll < 0.10 else 3


def _cohort_answers(rng: random.Random) -> tuple[int | None, str | None]:
    """A customer's bristol scale and bowel-movement frequency at registration (either may be skipped)."""
    bristol = rng.choices(range(1, 8), weights=_BRISTOL_WEIGHTS)[0]
    transit = "slow" if bristol <= 2 else "fast" if bristol >= 6 else "normal"
    frequency = rng.choice(_BM_BY_TRANSIT[transit]) if rng.random() < 0.9 else None
    return (bristol if rng.random() < 0.92 else None), frequency


@dataclass
class _Pending:
    """A kit with results, waiting for its sample id (assigned in order of results)."""

    kit: GeneratedKit
    seed: int
    pipeline_id: int
    cohort: Cohort


@dataclass
class _BiomesightBuilder:
    """The generated world's Biomesight side: orders in purchase order, kits and their lives."""

    world: World
    rng: random.Random
    customers_by_account: dict[str, list[Customer]] = field(default_factory=dict)
    customer_numbers: dict[str, int] = field(default_factory=dict)
    pending_results: list[_Pending] = field(default_factory=list)

    def customer_for(self, account: str) -> Customer:
        known = self.customers_by_account.setdefault(account, [])
        if known and self.rng.random() < 0.08:  # a returning customer orders again
            return self.rng.choice(known)
        number = self.customer_numbers.get(account, 0) + 1
        self.customer_numbers[account] = number
        customer_id = f"CUST-{number:06d}" if account == BIOMESIGHT_CLIENT_ID else f"U{number + 40_000:07d}"
        customer = make_customer(self.rng, customer_id)
        known.append(customer)
        self.world.customers[customer_id] = customer
        return customer

    def build(self, kits: int, start: datetime) -> None:
        plans: list[tuple[datetime, str, int]] = []
        budget = kits
        while budget > 0:
            quantity = 2 if budget >= 2 and self.rng.random() < 0.04 else 1
            account = OTHER_BIOMESIGHT_CLIENT_ID if self.rng.random() < 0.05 else BIOMESIGHT_CLIENT_ID
            plans.append((_history_moment(self.rng, start), account, quantity))
            budget -= quantity
        plans.sort(key=lambda plan: plan[0])
        per_day: dict[tuple[str, date], int] = {}
        for index, (purchased, account, quantity) in enumerate(plans):
            day_key = (account, purchased.date())
            per_day[day_key] = per_day.get(day_key, 0) + 1
            if account == BIOMESIGHT_CLIENT_ID:
                order_id = f"ORD-{purchased:%Y%m%d}-{per_day[day_key]:04d}"
            else:
                order_id = f"HW-{purchased:%y%m%d}{per_day[day_key]:04d}"
            self.add_order(order_id, account, FIRST_SALE_ID + index, purchased, quantity)
        self.assign_sample_ids()

    def add_order(
        self, order_id: str, account: str, sale_id: int, purchased: datetime, quantity: int
    ) -> None:
        customer = self.customer_for(account)
        speed = "express" if self.rng.random() < 0.15 else "standard"
        fulfilment = order_fulfilment(self.rng, purchased, speed)
        order = Order(
            order_id=order_id,
            account=account,
            sale_id=sale_id,
            purchase_date=purchased,
            customer=customer,
            items=[OrderItem(PRODUCT_SKU, PRODUCT_NAME, quantity)],
            shipping_speed=speed,
            destination=_destination_of(customer),
            timeline=fulfilment.timeline,
        )
        self.world.orders[order_id] = order
        for _ in range(quantity):
            kit = self.add_kit(order)
            if fulfilment.delivered_at is not None and self.rng.random() < 0.88:
                delay = min(120.0, self.rng.lognormvariate(2.2, 0.8))  # days from delivery to sampling
                self.register(kit, order, fulfilment.delivered_at, delay, depth=0)

    def add_kit(self, order: Order, replaces: str | None = None) -> GeneratedKit:
        kit = GeneratedKit(
            kit_id=new_kit_id(self.rng, self.world), order_id=order.order_id, account=order.account
        )
        kit.replaces = replaces
        self.world.kits[kit.kit_id] = kit
        order.kit_ids.append(kit.kit_id)
        return kit

    def register(
        self, kit: GeneratedKit, order: Order, kit_at: datetime, delay_days: float, depth: int
    ) -> None:
        """The customer samples `delay_days` after getting the kit; the platform registers it 0-2 d later."""
        sampled = kit_at + timedelta(days=delay_days)
        registered = datetime.combine(sampled.date(), time(7), tzinfo=UTC) + timedelta(
            seconds=self.rng.randint(0, 2 * 86_400 + 15 * 3600)
        )
        registered = max(registered, kit_at + timedelta(hours=1))
        bristol, frequency = _cohort_answers(self.rng)
        kit.registered_at = registered
        kit.sample_date = min(sampled.date(), registered.date())
        kit.bristol_scale = bristol
        kit.bm_frequency = frequency
        life = kit_lifecycle(self.rng, registered)
        apply_lifecycle(kit, life)
        if life.results_ready_at is not None:
            customer = order.customer
            cohort = Cohort(
                customer.country_code, bristol, frequency, genome_cohort(self.world, customer.customer_id)
            )
            self.pending_results.append(
                _Pending(kit, self.rng.getrandbits(63), pick_pipeline(self.rng), cohort)
            )
        if life.replacement_at is not None:
            replacement = self.add_kit(order, replaces=kit.kit_id)
            if depth < 2 and self.rng.random() < 0.9:
                self.register(replacement, order, life.replacement_at, self.rng.uniform(7, 25), depth + 1)

    def assign_sample_ids(self) -> None:
        self.pending_results.sort(key=lambda p: (p.kit.results_ready_at, p.kit.kit_id))
        for offset, pending in enumerate(self.pending_results):
            kit = pending.kit
            assert kit.results_ready_at is not None  # noqa: S101 - only kits with results are pending
            kit.set_result_recipe(
                ResultRecipe(
                    pending.seed,
                    kit.kit_id,
                    FIRST_SAMPLE_ID + offset,
                    pending.pipeline_id,
                    kit.results_ready_at,
                    pending.cohort,
                )
            )
        self.pending_results.clear()


def apply_lifecycle(kit: Kit, life: KitLifecycle) -> None:
    kit.timeline = life.timeline
    kit.results_ready_at = life.results_ready_at
    kit.pdf_ready_at = life.pdf_ready_at
    kit.failure_reason = life.failure_reason


def _destination_of(customer: Customer) -> dict[str, str]:
    destination = {
        "name": f"{customer.first_name} {customer.last_name}",
        "address_line1": customer.address_line1,
        "city": customer.city,
        "state": customer.state,
        "postcode_zip": customer.postcode,
        "country_code": customer.country_code,
    }
    if customer.address_line2:
        destination["address_line2"] = customer.address_line2
    return destination


def new_sample_id(world: World, index: int) -> str:
    while True:
        sample_id = str(uuid.uuid5(SAMPLE_NAMESPACE, f"{world.seed}:sample:{index}"))
        if sample_id not in world.samples:
            return sample_id
        index += 1


def add_sample(
    world: World,
    rng: random.Random,
    *,
    sample_id: str,
    project_id: str,
    account: str,
    created: datetime,
    client_id: str,
    customer: Customer,
    metadata: Any,
    test_mode: bool = False,
    hidden: bool = False,
) -> GencoveSample:
    life = sample_lifecycle(rng, created, test_mode)
    recipe = DeliverableRecipe(
        rng.getrandbits(63),
        sample_id,
        project_id,
        client_id,
        life.outcome,
        tuple(life.failed_qc),
        customer.country_code,
        genome_seed(world, customer.customer_id),
    )
    sample = GeneratedSample(
        sample_id=sample_id,
        project_id=project_id,
        account=account,
        created=created,
        client_id=client_id,
        customer=customer,
        metadata=metadata,
        timeline=life.timeline,
        archive_timeline=life.archive_timeline,
        failed_qc=life.failed_qc,
        hidden=hidden,
        deliverables=recipe,
    )
    world.samples[sample_id] = sample
    return sample


def _build_gencove(world: World, samples: int, start: datetime, ours_biomesight: list[Customer]) -> None:
    rng = seeded_rng(world.seed, "gencove")
    plans = sorted(
        (_history_moment(rng, start) + timedelta(microseconds=rng.randrange(1_000_000)), rng.random())
        for _ in range(samples)
    )
    next_number = max((int(c.customer_id[5:]) for c in ours_biomesight), default=0) + 1
    other_number = 1
    for index, (created, roll) in enumerate(plans):
        order_number = f"GX-{created:%Y}-{index + 1:06d}"
        if roll < 0.05:
            account, project_id = OTHER_GENCOVE_API_KEY, OTHER_GENCOVE_PROJECT_IDS[0]
            customer = make_customer(rng, f"G{other_number + 70_000:07d}")
            client_id = f"ext-{other_number + 70_000}"
            metadata: dict[str, Any] = {"customer_id": customer.customer_id, "order_number": order_number}
            other_number += 1
        else:
            account = GENCOVE_API_KEY
            project_id = GENCOVE_PROJECT_IDS[0] if rng.random() < 0.65 else GENCOVE_PROJECT_IDS[1]
            if ours_biomesight and rng.random() < SHARED_CUSTOMER_SHARE:
                customer = rng.choice(ours_biomesight)  # a microbiome customer also buys the DNA test
            else:
                customer = make_customer(rng, f"CUST-{next_number:06d}")
                next_number += 1
            client_id, metadata = _carried_id(rng, customer, order_number)
        world.customers.setdefault(customer.customer_id, customer)
        add_sample(
            world,
            rng,
            sample_id=new_sample_id(world, index),
            project_id=project_id,
            account=account,
            created=created,
            client_id=client_id,
            customer=customer,
            metadata=metadata,
            hidden=rng.random() < 0.01,
        )


def _carried_id(rng: random.Random, customer: Customer, order_number: str) -> tuple[str, dict[str, Any]]:
    """(client_id, metadata) of one of our samples: the platform's one customer id, where it put it."""
    roll = rng.random()
    metadata: dict[str, Any] = {"order_number": order_number, "channel": rng.choice(("app", "web"))}
    client_id = ""
    if roll < _ID_IN_CLIENT_ID_ONLY:
        if roll < _ID_IN_BOTH:
            metadata = {"customer_id": customer.customer_id, **metadata}
        if roll >= _ID_IN_METADATA_ONLY:
            client_id = customer.customer_id
    if rng.random() < _NOTE_SHARE:
        name = f"{customer.first_name} {customer.last_name}"
        metadata["note"] = f"Ordered by phone for {name}, {customer.phone}"
    return client_id, metadata


@contextmanager
def _collector_paused(freeze: bool) -> Iterator[None]:
    """Pause the cyclic GC while building: ~10^6 acyclic objects otherwise trigger costly full passes.

    With `freeze`, the built objects then move to the collector's permanent generation: a big world is
    long-lived, and scanning it on every later full pass made each served result ~6x slower at 100,000 kits.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        if freeze:
            gc.freeze()
    finally:
        if was_enabled:
            gc.enable()


def generate_world(
    seed: int = 7, kits: int = 500, gencove_samples: int | None = None, start: datetime = DEFAULT_START
) -> World:
    """A world whose history spans ~6 months before `start`, with in-flight kits moving on after it.

    Worlds of `FREEZE_FROM` kits and samples or more are frozen out of the garbage collector's scans
    (`gc.freeze()`, process-wide): a side effect worth it for the long-lived world of a sandbox server.
    """
    if start.tzinfo is None:
        raise ValueError("the world starts at an aware UTC datetime")
    start = start.astimezone(UTC)
    samples = kits if gencove_samples is None else gencove_samples
    world = World(seed=seed, clock=Clock(start))
    with _collector_paused(freeze=kits + samples >= FREEZE_FROM):
        builder = _BiomesightBuilder(world, seeded_rng(seed, "biomesight"))
        builder.build(kits, start)
        ours = builder.customers_by_account.get(BIOMESIGHT_CLIENT_ID, [])
        _build_gencove(world, samples, start, ours)
    return world


def kit_issued_at(world: World, kit: Kit) -> datetime:
    """When a kit came to exist: its order's purchase, or for a replacement the old kit's replacement."""
    if kit.replaces is not None:
        replaced = world.kits.get(kit.replaces)
        if replaced is not None:
            for change in replaced.timeline:
                if change.status == "Replacement Kit":
                    return change.at
    return world.orders[kit.order_id].purchase_date
