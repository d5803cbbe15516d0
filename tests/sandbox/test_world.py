"""The generated world: determinism, vocabularies, timelines, accounts, customers and Gencove deliverables."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from sandbox.accounts import (
    BIOMESIGHT_CLIENT_ID,
    GENCOVE_API_KEY,
    GENCOVE_PROJECT_IDS,
    OTHER_BIOMESIGHT_CLIENT_ID,
    OTHER_GENCOVE_API_KEY,
    OTHER_GENCOVE_PROJECT_IDS,
)
from sandbox.lifecycles import ARCHIVE_AFTER, FAILURE_BY_STATUS
from sandbox.model import (
    BIOMESIGHT_KIT_STATUSES,
    BIOMESIGHT_ORDER_STATUSES,
    BM_FREQUENCIES,
    GENCOVE_DELIVERABLE_TYPES,
    GENCOVE_FINAL_STATUSES,
    GENCOVE_STATUSES,
    StatusChange,
    World,
)
from sandbox.world import DEFAULT_START, HISTORY_DAYS, generate_world, kit_issued_at

KITS = 400
SEED = 11


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(SEED, KITS)


def fingerprint(world: World) -> tuple[object, ...]:
    """Everything observable about a world, as plain values (results included)."""
    return (
        [
            (o.order_id, o.account, o.sale_id, o.purchase_date, o.customer, o.timeline, o.kit_ids)
            for o in world.orders.values()
        ],
        [
            (
                k.kit_id,
                k.registered_at,
                k.sample_date,
                k.bristol_scale,
                k.bm_frequency,
                k.timeline,
                k.replaces,
            )
            + ((k.result.scores, k.result.taxonomy[:5]) if k.result else ())
            for k in world.kits.values()
        ],
        [
            (
                s.sample_id,
                s.project_id,
                s.created,
                s.client_id,
                s.metadata,
                s.timeline,
                s.archive_timeline,
                s.files,
            )
            for s in world.samples.values()
        ],
    )


def assert_sorted(timeline: list[StatusChange]) -> None:
    moments = [change.at for change in timeline]
    assert moments == sorted(moments)
    assert len(set(moments)) == len(moments)
    assert all(m.tzinfo is not None and m.utcoffset() == timedelta(0) for m in moments)


def test_same_seed_same_world_and_other_seed_other_world(world: World) -> None:
    assert fingerprint(generate_world(SEED, KITS)) == fingerprint(world)
    assert fingerprint(generate_world(SEED + 1, KITS)) != fingerprint(world)


def test_clock_starts_at_start_and_history_spans_six_months(world: World) -> None:
    assert world.clock.now() == DEFAULT_START
    purchases = [o.purchase_date for o in world.orders.values()]
    assert all(DEFAULT_START - timedelta(days=HISTORY_DAYS) <= p <= DEFAULT_START for p in purchases)
    recent = sum(p > DEFAULT_START - timedelta(days=HISTORY_DAYS / 2) for p in purchases)
    assert recent > len(purchases) / 2  # the business grows: the recent half holds more orders


def test_kit_count_orders_and_replacements(world: World) -> None:
    originals = [k for k in world.kits.values() if k.replaces is None]
    assert len(originals) == KITS
    assert any(len(o.kit_ids) >= 2 for o in world.orders.values())
    assert len(world.orders) < KITS
    for kit in world.kits.values():
        assert re.fullmatch(r"BS1-[A-Z0-9]{5}", kit.kit_id)
        assert kit.kit_id in world.orders[kit.order_id].kit_ids
        assert kit.account == world.orders[kit.order_id].account
    replacements = [k for k in world.kits.values() if k.replaces is not None]
    assert replacements
    for kit in replacements:
        old = world.kits[kit.replaces]
        assert old.order_id == kit.order_id
        assert old.timeline[-1].status == "Replacement Kit"
        assert old.failure_reason in {"dried out", "not viable", "QA failed"}
        assert kit_issued_at(world, kit) == old.timeline[-1].at
        if kit.registered_at is not None:
            assert kit.registered_at > old.timeline[-1].at


def test_sale_ids_unique_and_increase_with_purchase(world: World) -> None:
    orders = sorted(world.orders.values(), key=lambda o: (o.purchase_date, o.sale_id))
    sale_ids = [o.sale_id for o in orders]
    assert sale_ids == sorted(sale_ids)
    assert len(set(sale_ids)) == len(sale_ids)


def test_order_timelines_follow_fulfilment(world: World) -> None:
    for order in world.orders.values():
        assert_sorted(order.timeline)
        statuses = [c.status for c in order.timeline]
        assert set(statuses) <= set(BIOMESIGHT_ORDER_STATUSES) - {"Pending"}
        assert statuses[0] == "Booked with Amazon"
        assert order.timeline[0].at > order.purchase_date
        assert statuses[-1] in {"Delivered", "Lost", "Cancelled"}
        if "Delivered" in statuses:
            assert statuses.index("Dispatched") < statuses.index("Shipped") < statuses.index("Delivered")
        else:
            assert all(world.kits[k].registered_at is None for k in order.kit_ids)
    finals = [o.timeline[-1].status for o in world.orders.values()]
    assert finals.count("Delivered") > 0.9 * len(finals)


def test_kit_timelines_follow_the_lab(world: World) -> None:
    registered = [k for k in world.kits.values() if k.registered_at is not None]
    assert 0.7 * len(world.kits) < len(registered) < len(world.kits)
    for kit in world.kits.values():
        if kit.registered_at is None:
            assert kit.timeline == []
            assert kit.result is None
            continue
        assert_sorted(kit.timeline)
        statuses = [c.status for c in kit.timeline]
        assert set(statuses) <= set(BIOMESIGHT_KIT_STATUSES)
        assert kit.timeline[0] == StatusChange(
            "Shipping to Lab", kit.registered_at, kit.timeline[0].description
        )
        assert kit.sample_date is not None
        assert kit.sample_date <= kit.registered_at.date()
        assert kit.bristol_scale is None or 1 <= kit.bristol_scale <= 7
        assert kit.bm_frequency is None or kit.bm_frequency in BM_FREQUENCIES
        assert statuses.count("Lab Processing Repeating") <= 2
        final = statuses[-1]
        if final == "Results Processed":
            assert kit.failure_reason is None
            assert kit.results_ready_at == kit.timeline[-1].at
            assert kit.pdf_ready_at is not None
            assert timedelta(hours=1) < kit.pdf_ready_at - kit.results_ready_at <= timedelta(days=2)
            assert kit.result is not None
        else:
            assert kit.results_ready_at is None
            assert kit.result is None
            failure = next(s for s in reversed(statuses) if s in FAILURE_BY_STATUS)
            assert kit.failure_reason == FAILURE_BY_STATUS[failure]


def test_in_flight_kits_move_after_the_clock(world: World) -> None:
    start = world.clock.now()
    moving = [k for k in world.kits.values() if k.timeline and k.timeline[0].at <= start < k.timeline[-1].at]
    future = [k for k in world.kits.values() if k.registered_at is not None and k.registered_at > start]
    assert moving
    assert future
    finished = [k for k in world.kits.values() if k.timeline and k.timeline[-1].at <= start]
    assert len(finished) > len(moving)


def test_other_accounts_own_about_five_percent(world: World) -> None:
    orders = list(world.orders.values())
    other = [o for o in orders if o.account == OTHER_BIOMESIGHT_CLIENT_ID]
    assert {o.account for o in orders} == {BIOMESIGHT_CLIENT_ID, OTHER_BIOMESIGHT_CLIENT_ID}
    assert 0.01 < len(other) / len(orders) < 0.12
    samples = list(world.samples.values())
    assert len(samples) == KITS
    for sample in samples:
        if sample.project_id in OTHER_GENCOVE_PROJECT_IDS:
            assert sample.account == OTHER_GENCOVE_API_KEY
        else:
            assert sample.project_id in GENCOVE_PROJECT_IDS
            assert sample.account == GENCOVE_API_KEY
    assert {s.project_id for s in samples} == {*GENCOVE_PROJECT_IDS, *OTHER_GENCOVE_PROJECT_IDS}
    foreign = sum(s.account == OTHER_GENCOVE_API_KEY for s in samples)
    assert 0.01 < foreign / len(samples) < 0.12


def test_customers_have_every_pii_field(world: World) -> None:
    fields = ("first_name", "last_name", "email", "phone", "address_line1", "city", "state", "postcode")
    for customer in world.customers.values():
        assert all(getattr(customer, name) for name in fields), customer
        assert re.fullmatch(r"[a-z0-9.]+@[a-z.]+\.[a-z]+", customer.email)
        assert re.fullmatch(r"[A-Z]{2}", customer.country_code)
    ours = {o.customer.customer_id for o in world.orders.values() if o.account == BIOMESIGHT_CLIENT_ID}
    assert all(re.fullmatch(r"CUST-\d{6}", cid) for cid in ours)
    countries = {c.country_code for c in world.customers.values()}
    assert {"GB", "US", "DE"} <= countries


def test_gencove_sample_lifecycles(world: World) -> None:
    finals = set()
    for sample in world.samples.values():
        assert_sorted(sample.timeline)
        statuses = [c.status for c in sample.timeline]
        assert set(statuses) <= set(GENCOVE_STATUSES)
        assert sample.timeline[0] == StatusChange("kit_requested", sample.created)
        assert statuses[:3] == ["kit_requested", "kit_ordered", "running"][: len(statuses[:3])]
        assert len(statuses) <= 3 or statuses[3] in GENCOVE_FINAL_STATUSES
        final = statuses[-1]
        finals.add(final)
        # The platform's one customer id, where its integration put it (see test_world_customers.py).
        if sample.account == GENCOVE_API_KEY:
            assert sample.client_id in {"", sample.customer.customer_id}
        else:
            assert re.fullmatch(r"ext-\d+", sample.client_id)
        assert sample.metadata.get("customer_id", sample.customer.customer_id) == sample.customer.customer_id
        assert re.fullmatch(r"GX-\d{4}-\d{6}", sample.metadata["order_number"])
        if final in {"failed qc", "failed_qc"}:
            assert sample.failed_qc
            assert [f.file_type for f in sample.files] == ["fastq-r1", "fastq-r2"]
        else:
            assert sample.failed_qc == []
        if final in {"succeeded", "failed qc", "failed_qc"}:
            available, archived = sample.archive_timeline
            assert (available.status, archived.status) == ("available", "archived")
            assert available.at >= sample.timeline[-1].at
            assert archived.at - available.at == ARCHIVE_AFTER
        else:
            assert sample.archive_timeline == []
            assert sample.files == []
    assert {"succeeded", "failed qc", "failed_qc"} <= finals


def test_succeeded_samples_deliver_files_qc_traits_and_ancestry(world: World) -> None:
    succeeded = [s for s in world.samples.values() if s.timeline[-1].status == "succeeded"]
    file_ids = set()
    for sample in succeeded:
        assert [f.file_type for f in sample.files] == list(GENCOVE_DELIVERABLE_TYPES)
        for deliverable in sample.files:
            assert re.fullmatch(r"[0-9a-f]{64}", deliverable.checksum_sha256)
            assert deliverable.size > 0
            assert sample.sample_id in deliverable.s3_path
            file_ids.add(deliverable.file_id)
        for qc in sample.quality_controls:
            assert set(qc) == {"quality_control_type", "quality_control"}
            assert set(qc["quality_control_type"]) == {"key", "type"}
            assert set(qc["quality_control"]) == {
                "value_expected",
                "value_measured",
                "value_string",
                "status",
            }
            assert qc["quality_control"]["status"] == "succeeded"
        traits = {item["trait"]["key"] for item in sample.trait_scores}
        assert {"height", "caffeine_metabolism", "lactose_intolerance"} <= traits
        for item in sample.trait_scores:
            assert 0 <= item["trait_score"]["percentile"] <= 100
            assert item["risk"] in {None, "high_risk", "not_high_risk"}
        fractions = sample.ancestry["ancestry"]["value"]
        assert sum(fractions.values()) == pytest.approx(1.0, abs=1e-6)
        assert "version" in sample.ancestry["metadata"]["value"]
    assert len(file_ids) == len(succeeded) * len(GENCOVE_DELIVERABLE_TYPES)
    # Built on demand, yet the same every time.
    assert succeeded[0].files == succeeded[0].files


def test_failed_qc_samples_show_the_failing_metric(world: World) -> None:
    failed = [s for s in world.samples.values() if s.timeline[-1].status in {"failed qc", "failed_qc"}]
    assert failed
    for sample in failed:
        failing = {
            qc["quality_control_type"]["key"]
            for qc in sample.quality_controls
            if qc["quality_control"]["status"] == "failed"
        }
        assert failing
        assert sample.trait_scores == []
        assert sample.ancestry == {}
