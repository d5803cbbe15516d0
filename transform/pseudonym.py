"""Pseudonymous customers: a keyed hash instead of the platform's customer id; PII scrubbed from free JSON.

A keyed hash (HMAC) rather than a plain hash, because customer ids are guessable: without the key nobody can
rebuild the id -> pseudonym table, while the same id always gives the same key so cohorts still join.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any, Final

MIN_KEY_BYTES: Final = 16
KEY_HEX_CHARS: Final = 32  # 128 bits: collisions are not a concern at any realistic customer count

# Keys (lower-cased, non-alphanumerics removed) whose values are platform customer ids: kept as pseudonyms.
_CUSTOMER_ID_KEYS: Final = frozenset(
    {
        "customerid",
        "clientid",
        "userid",
        "customer",
        "customerkey",
        "user",
        "externalcustomerid",
        "memberid",
        "patientid",
        "accountid",
    }
)
# Fragments of keys whose values are (or may be) personal data: dropped with their whole subtree.
_PII_KEY_FRAGMENTS: Final = (
    "name",
    "email",
    "mail",
    "phone",
    "mobile",
    "tel",
    "fax",
    "address",
    "street",
    "line1",
    "line2",
    "line3",
    "city",
    "town",
    "postcode",
    "postal",
    "zip",
    "birth",
    "dob",
    "ssn",
    "passport",
    "recipient",
    "instructions",
    "ipaddr",
)
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")


def customer_key(customer_id: str, key: bytes) -> str:
    """The stable pseudonym of a platform customer id (hex HMAC-SHA256, 32 characters)."""
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the pseudonym key must be at least {MIN_KEY_BYTES} bytes")
    digest = hmac.new(key, customer_id.strip().encode("utf-8", "surrogatepass"), hashlib.sha256)
    return digest.hexdigest()[:KEY_HEX_CHARS]


def optional_customer_key(customer_id: object, key: bytes) -> str | None:
    """customer_key for a present id; None for a missing or blank one (no pseudonym for 'nobody')."""
    if isinstance(customer_id, bool) or not isinstance(customer_id, str | int):
        return None
    text = str(customer_id).strip()
    return customer_key(text, key) if text else None


def _key_shape(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.casefold())


def is_pii_key(name: str) -> bool:
    """Whether a JSON key names personal data (broad on purpose: dropping a harmless key costs little)."""
    shape = _key_shape(name)
    return any(fragment in shape for fragment in _PII_KEY_FRAGMENTS)


def is_customer_id_key(name: str) -> bool:
    return _key_shape(name) in _CUSTOMER_ID_KEYS


def scrub_json(value: Any, key: bytes) -> Any:
    """A copy of free-form partner JSON fit to store: customer ids pseudonymized, personal data dropped.

    Customer-id-like keys keep their name and carry the pseudonym; PII-like keys are removed with everything
    below them; any string that looks like an e-mail address is removed wherever it appears.
    """
    clean = _scrub(value, key)
    return None if clean is _DROP else clean


def strip_personal_data(value: Any) -> Any:
    """A copy of partner JSON without personal data, customer ids left as they are.

    For payloads kept to be transformed again later (raw responses): pseudonymizing there would make a
    re-run pseudonymize a pseudonym, so ids stay verbatim and only names, contacts and addresses go.
    """
    clean = _scrub(value, None)
    return None if clean is _DROP else clean


def _scrub(value: Any, key: bytes | None) -> Any:
    if isinstance(value, dict):
        scrubbed: dict[str, Any] = {}
        for name, item in value.items():
            label = str(name)
            if key is not None and is_customer_id_key(label):
                pseudonym = optional_customer_key(item, key)
                if pseudonym is not None:
                    scrubbed[label] = pseudonym
            elif not is_pii_key(label):
                clean = _scrub(item, key)
                if clean is not _DROP:
                    scrubbed[label] = clean
        return scrubbed
    if isinstance(value, list | tuple):
        return [clean for clean in (_scrub(item, key) for item in value) if clean is not _DROP]
    if isinstance(value, str) and _EMAIL.search(value):
        return _DROP
    return value


class _Dropped:
    """Marks a value removed by scrub_json (None would be a legitimate JSON value)."""


_DROP: Final = _Dropped()
