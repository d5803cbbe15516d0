"""Platform export, order requests and kit registrations -> orders, order_items, kits, platform events."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from transform.platform import (
    transform_biomesight_kit_registrations,
    transform_biomesight_order_requests,
    transform_platform_export,
)
from transform.pseudonym import customer_key
from transform.schemas import TABLES
from transform.status import PLATFORM_PURCHASE_STATUS, PLATFORM_SAMPLE_COLLECTED_STATUS


def test_export_row_becomes_order_kit_and_two_events(
    export_row: dict[str, Any], key: bytes, observed_at: datetime
) -> None:
    result = transform_platform_export([export_row], key=key, observed_at=observed_at)
    for name, table in result.tables.items():
        assert table.schema == TABLES[name].schema
    [order] = result.table("orders").to_pylist()
    assert order["order_id"] == export_row["order_id"]
    assert order["customer_key"] == customer_key(export_row["customer_id"], key)
    assert order["country_code"] == export_row["country_code"].upper()
    assert order["purchased_at"] == datetime.fromisoformat(export_row["purchase_date"]).replace(tzinfo=UTC)
    assert order["purchase_date"] == date.fromisoformat(export_row["purchase_date"][:10])
    [kit] = result.table("kits").to_pylist()
    assert kit["kit_id"] == export_row["kit_id"]
    assert kit["order_id"] == export_row["order_id"]
    assert kit["bristol_scale"] == int(export_row["bristol_scale"])
    assert kit["sample_date"] == date.fromisoformat(export_row["sample_date"])
    assert kit["bm_frequency"] == export_row["bm_frequency"]
    assert kit["sample_type"] == export_row["sample_type"]
    events = {(e["entity"], e["partner_status"]): e for e in result.table("status_events").to_pylist()}
    purchase = events[("order", PLATFORM_PURCHASE_STATUS)]
    assert purchase["stage"] == "ordered"
    assert purchase["source"] == "import"
    assert purchase["partner_date"] == order["purchased_at"]
    collected = events[("kit", PLATFORM_SAMPLE_COLLECTED_STATUS)]
    assert collected["stage"] == "sample_collected"
    assert collected["partner_date"].date() == kit["sample_date"]
    assert result.quarantine.num_rows == 0


def test_order_without_kit_and_several_kits_per_order(
    export_row: dict[str, Any], key: bytes, observed_at: datetime
) -> None:
    second_kit = {**export_row, "kit_id": "BS1-AAA02"}
    no_kit = {**export_row, "order_id": "ORD-2", "kit_id": "", "sample_date": "", "bristol_scale": ""}
    result = transform_platform_export([export_row, second_kit, no_kit], key=key, observed_at=observed_at)
    assert sorted(result.table("orders").column("order_id").to_pylist()) == ["ORD-1", "ORD-2"]
    assert sorted(result.table("kits").column("kit_id").to_pylist()) == ["BS1-AAA01", "BS1-AAA02"]
    events = result.table("status_events").to_pylist()
    assert sum(e["entity"] == "order" for e in events) == 2  # one purchase event per order, not per row
    assert sum(e["entity"] == "kit" for e in events) == 2


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"order_id": ""}, "missing_order_id"),
        ({"purchase_date": "15/06/2025"}, "bad_date"),
        ({"purchase_date": ""}, "bad_date"),
        ({"sample_date": "2025-13-45"}, "bad_date"),
        ({"bristol_scale": "9"}, "bad_bristol_scale"),
        ({"bristol_scale": "0"}, "bad_bristol_scale"),
        ({"bristol_scale": "soft"}, "bad_bristol_scale"),
        ({"bristol_scale": "3.5"}, "bad_bristol_scale"),
    ],
)
def test_bad_export_rows_are_quarantined_without_excerpt(
    export_row: dict[str, Any], key: bytes, observed_at: datetime, change: dict[str, str], reason: str
) -> None:
    result = transform_platform_export([{**export_row, **change}], key=key, observed_at=observed_at)
    assert result.table("orders").num_rows == 0
    assert result.table("kits").num_rows == 0
    [row] = result.quarantine.to_pylist()
    assert row["reason"] == reason
    assert row["payload_excerpt"] is None
    assert "row 1" in row["detail"]
    assert row["entity_id"] == export_row["kit_id"]


def test_non_row_is_quarantined(key: bytes, observed_at: datetime) -> None:
    result = transform_platform_export(["not a row"], key=key, observed_at=observed_at)  # type: ignore[list-item]
    assert result.quarantine.column("reason").to_pylist() == ["not_an_object"]


def test_order_requests_give_orders_and_items(pii: dict[str, str], key: bytes, observed_at: datetime) -> None:
    body = {
        "order_id": "ORD-20250615-001",
        "purchase_date": "2025-06-15T10:30:00",
        "user": {"id": pii["customer_id"], "first_name": pii["first_name"], "email": pii["email"]},
        "destination_address": {
            "address_line1": pii["address_line1"],
            "city": pii["city"],
            "country_code": "de",
        },
        "items": [
            {"product_sku": "SKU-GUT", "quantity": 2},
            {"product_sku": "SKU-X", "product_name": "Extra"},
        ],
    }
    result = transform_biomesight_order_requests([body, {"order_id": "X"}], key=key, observed_at=observed_at)
    [order] = result.table("orders").to_pylist()
    assert order["customer_key"] == customer_key(pii["customer_id"], key)
    assert order["country_code"] == "DE"
    assert order["shipping_speed"] == "standard"
    items = result.table("order_items").to_pylist()
    assert [(i["position"], i["product_sku"], i["quantity"]) for i in items] == [
        (1, "SKU-GUT", 2),
        (2, "SKU-X", 1),
    ]
    assert result.table("status_events").column("partner_status").to_pylist() == [PLATFORM_PURCHASE_STATUS]
    assert result.quarantine.column("reason").to_pylist() == ["bad_date"]


def test_kit_registrations_apply_the_documented_default(observed_at: datetime) -> None:
    body = {"order_id": "ORD-1", "kit_id": "BS1-ABC12", "sample_date": "2025-07-01", "bristol_scale": 4}
    bad = {"order_id": "ORD-1", "kit_id": "BS1-BAD", "bristol_scale": 8}
    result = transform_biomesight_kit_registrations([body, bad], observed_at=observed_at)
    [kit] = result.table("kits").to_pylist()
    assert kit["sample_type"] == "Gut"
    assert kit["bristol_scale"] == 4
    assert result.table("status_events").num_rows == 1
    assert result.quarantine.column("entity_id").to_pylist() == ["BS1-BAD"]


def test_naive_observed_at_is_refused(export_row: dict[str, Any], key: bytes) -> None:
    with pytest.raises(ValueError, match="aware"):
        transform_platform_export([export_row], key=key, observed_at=datetime(2026, 1, 1))  # noqa: DTZ001
