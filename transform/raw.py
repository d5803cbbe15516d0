"""Partner responses as fetched -> raw_responses rows, fit to keep: no personal data, no presigned URLs.

Only the parts of a response that can hold personal data are touched: a Gencove sample's free-form `metadata`
keeps only its customer id (verbatim, so a later re-run pseudonymizes it exactly once) and the fields declared
safe (`transform.gencove.METADATA_SAFE_FIELDS`); other `metadata` (Gencove's own, e.g. an ancestry report's
`{"value": ...}`) loses PII-like keys; deliverable `download_url`s, which are expiring credentials, are
dropped. Everything a transform reads stays as sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from transform.gencove import declared_metadata
from transform.pseudonym import strip_personal_data
from transform.result import TransformResult, build_table
from transform.values import to_json

_CREDENTIAL_KEYS = frozenset({"download_url"})
_SCRUBBED_KEYS = _CREDENTIAL_KEYS | {"metadata"}  # the keys `fit_to_keep` changes the value of
_ESCAPED = bytes(range(0x20)) + b'"\\'  # the ASCII characters JSON writes escaped


@dataclass(frozen=True)
class RawResponse:
    """One fetched payload: which partner endpoint it came from and which kit, order or sample it is about."""

    provider: str
    endpoint: str
    entity_id: str
    body: Any


def _kept_metadata(metadata: Any) -> Any:
    """Gencove's own report metadata (`{"value": ...}`) minus PII-like keys; a sample's metadata (bare, or the
    metadata endpoint's answer `{"metadata": ...}`, whose other fields are not the sample's) reduced to what
    may be kept, in the same wrapper."""
    if isinstance(metadata, dict) and set(metadata) == {"value"}:
        return strip_personal_data(metadata)
    if isinstance(metadata, dict) and "metadata" in metadata:
        return {"metadata": declared_metadata(metadata["metadata"])}
    return declared_metadata(metadata)


def fit_to_keep(value: Any) -> Any:
    """`value` without presigned URLs anywhere and without personal data under any `metadata` key."""
    if isinstance(value, dict):
        return _fit_dict(value)
    if isinstance(value, list):
        return _fit_list(value)
    return value


# The walk visits every value of every response (~200k per 1,000 kits): scalars are kept without a call.
def _fit_dict(value: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for name, item in value.items():
        if name in _CREDENTIAL_KEYS:
            continue
        if name == "metadata":
            kept[name] = _kept_metadata(item)
        elif isinstance(item, dict | list):
            kept[name] = fit_to_keep(item)
        else:
            kept[name] = item
    return kept


def _fit_list(value: list[Any]) -> list[Any]:
    return [fit_to_keep(item) if isinstance(item, dict | list) else item for item in value]


def _plain(text: object) -> bool:
    """Whether `text` is a string JSON writes as it is, between quotes (ASCII, no control character, quote
    or backslash): true of base64 and of most ids. A C-level byte filter: `str.isprintable` is ~5x slower."""
    if text.__class__ is not str or not text.isascii():
        return False
    raw = text.encode("ascii")
    return len(raw.translate(None, _ESCAPED)) == len(raw)


def body_json(body: Any) -> str:
    """A response body fit to keep, as canonical JSON text (`to_json`).

    An object of plain strings only (a taxonomy CSV's `{"csv": base64}`: ~17 MB of a 1,000-kit sync, a third
    of the raw responses' JSON time) has nothing to scrub and nothing to escape: its text is joined directly,
    the very text `to_json` writes (tests/transform/test_raw_fast.py checks they agree).
    """
    if (
        body.__class__ is dict
        and body
        and all(_plain(name) and _plain(value) for name, value in body.items())
        and not (body.keys() & _SCRUBBED_KEYS)
    ):
        return "{" + ",".join(f'"{name}":"{value}"' for name, value in sorted(body.items())) + "}"
    return to_json(fit_to_keep(body))


def transform_raw_responses(responses: Iterable[RawResponse], *, observed_at: datetime) -> TransformResult:
    """Responses -> raw_responses rows (one per response; the body as canonical JSON text)."""
    rows = [
        {
            "provider": response.provider,
            "endpoint": response.endpoint,
            "entity_id": response.entity_id,
            "body_json": body_json(response.body),
            "observed_at": observed_at,
        }
        for response in responses
    ]
    return TransformResult(tables={"raw_responses": build_table("raw_responses", rows)})
