"""One platform customer at both partners: shared customers, where their id travels, and the built-in signal.

The platform sells both tests under its own customer id. In a generated world a share of customers buys both;
their Gencove samples carry that id as the kit-ordering guide shows (metadata.customer_id, client_id "");
the platform's export and Gencove's metadata agree; and each customer's genome drives both their Gencove trait
scores and, through sandbox.taxonomy.GENOTYPE_EFFECTS, their Biomesight microbiome.
"""

from __future__ import annotations

import statistics
from collections import Counter

import pytest

from sandbox.accounts import BIOMESIGHT_CLIENT_ID, GENCOVE_API_KEY
from sandbox.export import platform_export
from sandbox.gencove_results import RISK_PERCENTILES
from sandbox.model import GencoveSample, World
from sandbox.taxonomy import GENOTYPE_EFFECTS
from sandbox.world import generate_world


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(seed=7, kits=500)


def _carried_id(sample: GencoveSample) -> str:
    """The customer id a sample carries: metadata first, then client_id ("" when neither)."""
    return str(sample.metadata.get("customer_id") or sample.client_id or "")


def test_a_fifth_or_so_of_customers_buy_both_tests_under_one_id(world: World) -> None:
    at = world.clock.now()
    microbiome = {o.customer.customer_id for o in world.orders.values() if o.account == BIOMESIGHT_CLIENT_ID}
    genetics = {s.customer.customer_id for s in world.samples.values() if s.account == GENCOVE_API_KEY}
    both = microbiome & genetics
    assert 0.15 <= len(both) / len(microbiome | genetics) <= 0.25
    # The platform's export names them with the same id Gencove's samples carry.
    exported = {row["customer_id"] for row in platform_export(world, at)}
    carried = {_carried_id(s) for s in world.samples.values() if s.account == GENCOVE_API_KEY}
    assert len(both & exported & carried) >= 0.8 * len(both & exported)


def test_samples_carry_the_platform_id_where_its_integration_put_it(world: World) -> None:
    ours = [s for s in world.samples.values() if s.account == GENCOVE_API_KEY]
    where = Counter()
    for sample in ours:
        in_metadata = sample.metadata.get("customer_id")
        assert in_metadata in {None, sample.customer.customer_id}
        assert sample.client_id in {"", sample.customer.customer_id}
        where[(in_metadata is not None, sample.client_id != "")] += 1
    share = {kind: count / len(ours) for kind, count in where.items()}
    assert share[(True, False)] > 0.6  # the kit-ordering guide's way: metadata only, client_id ""
    assert share[(True, True)] > 0.1
    assert share[(False, True)] > 0.04  # client_id only: what a key must fall back to
    assert 0.005 < share.get((False, False), 0) < 0.06  # no id at all: counted, never guessed


def test_metadata_carries_more_than_the_id(world: World) -> None:
    """Order numbers and, sometimes, free text with the customer's name: what must never reach the lake."""
    ours = [s for s in world.samples.values() if s.account == GENCOVE_API_KEY]
    assert all(s.metadata["order_number"].startswith("GX-") for s in ours)
    notes = [s for s in ours if "note" in s.metadata]
    assert 0.05 < len(notes) / len(ours) < 0.2
    assert all(s.customer.last_name in s.metadata["note"] for s in notes)


def test_one_person_one_genome_across_samples(world: World) -> None:
    by_customer: dict[str, list[dict[str, float]]] = {}
    for sample in world.samples.values():
        traits = {t["trait"]["key"]: t["trait_score"]["value"] for t in sample.trait_scores}
        if traits:
            by_customer.setdefault(sample.customer.customer_id, []).append(traits)
    repeated = [scores for scores in by_customer.values() if len(scores) > 1]
    assert repeated, "some customers bought the DNA test twice"
    assert all(scores[0] == other for scores in repeated for other in scores[1:])


@pytest.mark.parametrize("seed", [1, 7, 11])
def test_the_documented_signal_holds_in_the_ground_truth(seed: int) -> None:
    """GENOTYPE_EFFECTS: a high lactose-intolerance score goes with more Bifidobacterium, visible between the
    Gencove risk classes of customers who have both results (computed from the world, not from kitsync)."""
    world = generate_world(seed=seed, kits=600)
    trait = "lactose_intolerance"
    genus, _, log_effect = GENOTYPE_EFFECTS[trait]
    risk: dict[str, str] = {}
    for sample in world.samples.values():
        if sample.account == GENCOVE_API_KEY and sample.trait_scores:
            [item] = [t for t in sample.trait_scores if t["trait"]["key"] == trait]
            assert (item["risk"] == "high_risk") == (
                item["trait_score"]["percentile"] >= RISK_PERCENTILES[trait]
            )
            risk[sample.customer.customer_id] = item["risk"]
    abundance: dict[str, float] = {}
    for kit in world.kits.values():
        customer = world.orders[kit.order_id].customer.customer_id
        if kit.account == BIOMESIGHT_CLIENT_ID and kit.results_ready_at is not None and customer in risk:
            genera = {row.taxon: row.abundance for row in kit.result.taxonomy if row.rank == "genus"}
            abundance[customer] = genera.get(genus, 0.0)
    high = [abundance[c] for c in abundance if risk[c] == "high_risk"]
    low = [abundance[c] for c in abundance if risk[c] == "not_high_risk"]
    assert len(high) >= 5
    assert len(low) >= 20
    assert log_effect > 0
    assert statistics.mean(high) > 1.5 * statistics.mean(low)
    assert statistics.median(high) > statistics.median(low)
