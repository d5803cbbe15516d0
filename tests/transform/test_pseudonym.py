"""Pseudonyms are stable, key-dependent and irreversible; scrubbing drops PII from free JSON."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from transform.pseudonym import customer_key, optional_customer_key, scrub_json


def test_customer_key_is_stable_and_an_hmac(key: bytes) -> None:
    first = customer_key("CUST-1", key)
    assert first == customer_key("CUST-1", key) == customer_key(" CUST-1 ", key)
    assert first == hmac.new(key, b"CUST-1", hashlib.sha256).hexdigest()[:32]
    assert len(first) == 32
    assert int(first, 16) >= 0


def test_customer_key_depends_on_key_and_id(key: bytes) -> None:
    assert customer_key("CUST-1", key) != customer_key("CUST-1", key + b"x")
    assert customer_key("CUST-1", key) != customer_key("CUST-2", key)
    assert "CUST-1" not in customer_key("CUST-1", key)


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        customer_key("CUST-1", b"short")


def test_optional_customer_key_has_no_pseudonym_for_nobody(key: bytes) -> None:
    assert optional_customer_key("", key) is None
    assert optional_customer_key(None, key) is None
    assert optional_customer_key({"id": 1}, key) is None
    assert optional_customer_key(12345, key) == customer_key("12345", key)


def test_scrub_json_pseudonymizes_ids_and_drops_pii(key: bytes, pii: dict[str, str]) -> None:
    metadata = {
        "customer_id": pii["customer_id"],
        "order_number": "ORD-9",
        "recipient": {"name": pii["first_name"]},
        "contact": {"Email": pii["email"], "phoneNumber": pii["phone"], "tier": "gold"},
        "shipping": [
            {"address_line1": pii["address_line1"], "postcode": pii["postcode"], "city": pii["city"]}
        ],
        "notes": [pii["email"], "fragile"],
        "firstName": pii["first_name"],
        "LastName": pii["last_name"],
    }
    scrubbed = scrub_json(metadata, key)
    text = json.dumps(scrubbed)
    for value in pii.values():
        assert value not in text
    assert scrubbed["customer_id"] == customer_key(pii["customer_id"], key)
    assert scrubbed["order_number"] == "ORD-9"
    assert scrubbed["contact"] == {"tier": "gold"}
    assert scrubbed["notes"] == ["fragile"]
    assert scrubbed["shipping"] == [{}]


def test_scrub_json_leaves_plain_values_alone(key: bytes) -> None:
    assert scrub_json([1, 2.5, None, True, "x"], key) == [1, 2.5, None, True, "x"]
    assert scrub_json("a@b.co", key) is None
