"""Shared inputs for the transform tests: a pseudonym key, an observation time, and a customer full of PII."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest


@pytest.fixture
def key() -> bytes:
    return b"test-pseudonym-key-0123456789"


@pytest.fixture
def observed_at() -> datetime:
    return datetime(2026, 1, 15, 9, 30, tzinfo=UTC)


@pytest.fixture
def pii() -> dict[str, str]:
    """Recognizable personal data: none of these strings may appear in any output table."""
    return {
        "customer_id": "CUST-SECRET-4711",
        "first_name": "Zebulon",
        "last_name": "Quackenbush",
        "email": "zebulon.quackenbush@example.org",
        "phone": "+44 7700 900123",
        "address_line1": "42 Wellness Avenue",
        "city": "Little Snoring",
        "postcode": "NR21 0XY",
    }


@pytest.fixture
def export_row(pii: dict[str, str]) -> dict[str, Any]:
    """One platform export row for a registered kit, every value a string as the export gives it."""
    return {
        "order_id": "ORD-1",
        "kit_id": "BS1-AAA01",
        "purchase_date": "2025-06-15T10:30:00",
        "sample_date": "2025-07-01",
        "sample_type": "Gut",
        "bristol_scale": "4",
        "bm_frequency": "Once daily",
        "country_code": "gb",
        **pii,
    }
