"""What the partner APIs do to the world: orders, kit registrations, Gencove kit orders, all with futures."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from sandbox.accounts import BIOMESIGHT_CLIENT_ID, GENCOVE_API_KEY, GENCOVE_PROJECT_IDS
from sandbox.changes import order_sample_kit, place_order, register_kit
from sandbox.export import platform_export
from sandbox.model import (
    BIOMESIGHT_KIT_STATUSES,
    BIOMESIGHT_ORDER_STATUSES,
    GENCOVE_STATUSES,
    World,
    status_at,
)
from sandbox.world import generate_world


def order_payload(order_id: str, quantity: int = 1) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "purchase_date": "2026-11-01T10:30:00",
        "user": {
            "id": f"C-{order_id}",
            "first_name": "Jane",
            "last_name": "Smith",
            "email": "jane@example.com",
        },
        "destination_address": {
            "address_line1": "42 Wellness Avenue",
            "city": "London",
            "postcode_zip": "SW1A 1AA",
            "country_code": "GB",
        },
        "items": [{"product_sku": "SKU-1", "quantity": quantity}],
    }


def sample_kit_payload(customer_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "project_id": GENCOVE_PROJECT_IDS[0],
        "recipient_address_name": "Jane Doe",
        "recipient_address_line1": "123 Main Street",
        "recipient_address_city": "San Francisco",
        "recipient_address_state_region": "CA",
        "recipient_address_postal_code": "94102",
        "recipient_address_country_code": "US",
        "recipient_email": "jane.doe@example.com",
        "recipient_phone": "+14155551234",
        "metadata": {"customer_id": customer_id, "order_number": f"ORD-{customer_id}"},
        **extra,
    }


@pytest.fixture
def world() -> World:
    return generate_world(9, 60)


def test_place_order_creates_unregistered_kits_and_a_future_fulfilment(world: World) -> None:
    at = world.clock.now() + timedelta(hours=3)
    highest = max(o.sale_id for o in world.orders.values())
    order = place_order(world, BIOMESIGHT_CLIENT_ID, order_payload("API-1", quantity=2), at)
    assert world.orders["API-1"] is order
    assert order.sale_id == highest + 1
    assert order.purchase_date.isoformat() == "2026-11-01T10:30:00+00:00"
    assert world.customers["C-API-1"].email == "jane@example.com"
    assert len(order.kit_ids) == 2
    for kit_id in order.kit_ids:
        assert re.fullmatch(r"BS1-[A-Z0-9]{5}", kit_id)
        kit = world.kits[kit_id]
        assert (kit.order_id, kit.account, kit.registered_at, kit.timeline) == (
            "API-1",
            BIOMESIGHT_CLIENT_ID,
            None,
            [],
        )
    assert order.timeline[0].status == "Booked with Amazon"
    assert all(change.at > at for change in order.timeline)
    assert {c.status for c in order.timeline} <= set(BIOMESIGHT_ORDER_STATUSES)
    second = place_order(world, BIOMESIGHT_CLIENT_ID, order_payload("API-2"), at)
    assert second.sale_id == order.sale_id + 1


def test_place_order_is_deterministic_per_seed() -> None:
    at = generate_world(9, 60).clock.now()
    first = place_order(generate_world(9, 60), BIOMESIGHT_CLIENT_ID, order_payload("API-9"), at)
    again = place_order(generate_world(9, 60), BIOMESIGHT_CLIENT_ID, order_payload("API-9"), at)
    assert (first.kit_ids, first.timeline) == (again.kit_ids, again.timeline)


def test_register_kit_starts_the_lab_journey_at_registration(world: World) -> None:
    at = world.clock.now()
    outcomes = set()
    sample_ids = {k.result.sample_id for k in world.kits.values() if k.result is not None}
    for n in range(150):
        order = place_order(world, BIOMESIGHT_CLIENT_ID, order_payload(f"REG-{n}"), at)
        kit = world.kits[order.kit_ids[0]]
        payload = {
            "order_id": order.order_id,
            "kit_id": kit.kit_id,
            "sample_date": "2026-11-03",
            "bristol_scale": 2,
        }
        registered_at = at + timedelta(days=5)
        assert register_kit(world, kit, payload, registered_at) is kit
        assert kit.registered_at == registered_at
        assert str(kit.sample_date) == "2026-11-03"
        assert (kit.sample_type, kit.bristol_scale, kit.bm_frequency) == ("Gut", 2, None)
        assert kit.timeline[0].status == "Shipping to Lab"
        assert kit.timeline[0].at == registered_at
        assert all(later.at > registered_at for later in kit.timeline[1:])
        assert {c.status for c in kit.timeline} <= set(BIOMESIGHT_KIT_STATUSES)
        outcomes.add(kit.timeline[-1].status)
        if kit.timeline[-1].status == "Results Processed":
            assert kit.results_ready_at == kit.timeline[-1].at
            assert kit.result is not None
            assert kit.result.sample_id not in sample_ids
            sample_ids.add(kit.result.sample_id)
        else:
            assert kit.result is None
        if kit.timeline[-1].status == "Replacement Kit":
            replacement = world.kits[order.kit_ids[-1]]
            assert replacement.replaces == kit.kit_id
            assert replacement.registered_at is None
    assert "Results Processed" in outcomes
    assert len(outcomes) > 1


def test_registered_kits_show_in_the_export_from_registration_on(world: World) -> None:
    at = world.clock.now()
    order = place_order(world, BIOMESIGHT_CLIENT_ID, order_payload("EXP-1"), at)
    kit = world.kits[order.kit_ids[0]]
    register_kit(world, kit, {"order_id": "EXP-1", "kit_id": kit.kit_id, "sample_date": "2026-11-02"}, at)
    later = at + timedelta(days=1)
    rows = [row for row in platform_export(world, later) if row["order_id"] == "EXP-1"]
    assert [row["kit_id"] for row in rows] == [kit.kit_id]


def test_advancing_the_clock_moves_a_registered_kit(world: World) -> None:
    at = world.clock.now()
    order = place_order(world, BIOMESIGHT_CLIENT_ID, order_payload("CLK-1"), at)
    kit = world.kits[order.kit_ids[0]]
    register_kit(world, kit, {"order_id": "CLK-1", "kit_id": kit.kit_id, "sample_date": "2026-11-01"}, at)
    before = status_at(kit.timeline, world.clock.now())
    world.clock.advance(timedelta(days=60))
    after = status_at(kit.timeline, world.clock.now())
    assert before is not None
    assert after is not None
    assert (before.status, after.status) == ("Shipping to Lab", kit.timeline[-1].status)


def test_order_sample_kit_creates_a_sample_with_a_future_lifecycle(world: World) -> None:
    at = world.clock.now()
    created = [
        order_sample_kit(world, GENCOVE_API_KEY, sample_kit_payload(f"cust_9{n:03d}"), at) for n in range(40)
    ]
    assert len({s.sample_id for s in created}) == len(created)
    for sample in created:
        assert world.samples[sample.sample_id] is sample
        assert (sample.project_id, sample.account, sample.created) == (
            GENCOVE_PROJECT_IDS[0],
            GENCOVE_API_KEY,
            at,
        )
        # As the kit-ordering guide shows: client_id "" and the platform's id in the metadata only.
        assert sample.client_id == ""
        assert sample.customer.customer_id == sample.metadata["customer_id"]
        assert sample.customer.first_name == "Jane"
        assert sample.customer.last_name == "Doe"
        assert sample.timeline[0].status == "kit_requested"
        assert sample.timeline[0].at == at
        assert all(change.at > at for change in sample.timeline[1:])
        assert {c.status for c in sample.timeline} <= set(GENCOVE_STATUSES)
        # Deliverables belong to the eventual outcome; the HTTP side shows them once that status is visible.
        final = sample.timeline[-1].status
        assert bool(sample.files) == (final in {"succeeded", "failed qc", "failed_qc"})
    finals = {s.timeline[-1].status for s in created}
    assert "succeeded" in finals
    succeeded = next(s for s in created if s.timeline[-1].status == "succeeded")
    assert succeeded.archive_timeline[0].at >= succeeded.timeline[-1].at


def test_test_mode_kits_are_never_shipped(world: World) -> None:
    at = world.clock.now()
    sample = order_sample_kit(world, GENCOVE_API_KEY, sample_kit_payload("cust_1", test_mode=True), at)
    assert [c.status for c in sample.timeline] == ["kit_requested"]
    bare = order_sample_kit(world, GENCOVE_API_KEY, {**sample_kit_payload("x"), "metadata": None}, at)
    assert bare.client_id == ""
    assert bare.metadata == {}
