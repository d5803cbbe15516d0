"""No personal data leaves transform/: feed recognizable PII through every transform and scan every cell."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa

from transform.biomesight import transform_biomesight_statuses
from transform.gencove import transform_gencove_project_samples, transform_gencove_samples
from transform.platform import (
    transform_biomesight_kit_registrations,
    transform_biomesight_order_requests,
    transform_platform_export,
)
from transform.result import TransformResult, concat_results


def _cells(table: pa.Table) -> list[str]:
    return [str(value) for column in table.columns for value in column.to_pylist()]


def test_no_pii_in_any_output(
    export_row: dict[str, Any], pii: dict[str, str], key: bytes, observed_at: datetime
) -> None:
    broken = {**export_row, "bristol_scale": "12"}  # quarantined: its fingerprint must not carry PII either
    order_request = {
        "order_id": "ORD-7",
        "purchase_date": "2025-06-15T10:30:00",
        "user": {
            "id": pii["customer_id"],
            "first_name": pii["first_name"],
            "last_name": pii["last_name"],
            "email": pii["email"],
            "phone": pii["phone"],
        },
        "destination_address": {
            "name": pii["first_name"],
            "address_line1": pii["address_line1"],
            "city": pii["city"],
            "postcode_zip": pii["postcode"],
            "country_code": "GB",
        },
        "items": [{"product_sku": "SKU"}],
    }
    gencove_sample = {
        "id": "s-1",
        "client_id": pii["customer_id"],
        "project": "p",
        "metadata": {
            "customer_id": pii["customer_id"],
            "recipient_address_name": pii["first_name"],
            "recipient_email": pii["email"],
            "recipient_phone": pii["phone"],
            "shipping": {"line1": pii["address_line1"], "city": pii["city"], "zip": pii["postcode"]},
            "contact": [pii["email"]],
        },
        "files": [{"id": "f", "download_url": "https://bucket.example/file?X-Amz-Signature=deadbeef"}],
        "last_status": {"status": "running", "created": "2025-10-01T00:00:00Z"},
    }
    results: list[TransformResult] = [
        transform_platform_export([export_row, broken], key=key, observed_at=observed_at),
        transform_biomesight_order_requests(
            [order_request, {**order_request, "purchase_date": "x"}], key=key, observed_at=observed_at
        ),
        transform_biomesight_kit_registrations(
            [{**export_row, "bristol_scale": "4"}], observed_at=observed_at
        ),
        transform_gencove_project_samples(
            [gencove_sample, {"client_id": pii["customer_id"]}],
            project_id="p",
            key=key,
            observed_at=observed_at,
        ),
        transform_gencove_samples(
            [gencove_sample, {**gencove_sample, "files": "bad"}], key=key, observed_at=observed_at
        ),
        transform_biomesight_statuses(
            [{"kit_id": "K", "status": "x", "description": pii["email"]}],
            source="webhook",
            observed_at=observed_at,
        ),
    ]
    combined = concat_results(results)
    assert combined.quarantine.num_rows >= 4
    cells = [cell for table in combined.tables.values() for cell in _cells(table)]
    for value in [*pii.values(), "deadbeef", "bucket.example"]:
        leaks = [cell for cell in cells if value.casefold() in cell.casefold()]
        assert not leaks, f"{value!r} leaked into {leaks[:3]}"
