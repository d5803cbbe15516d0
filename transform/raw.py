"""Partner responses as fetched -> raw_responses rows, fit to keep: no personal data, no presigned URLs.

Only the parts of a response that can hold personal data are touched: Gencove's free-form `metadata` loses
PII-like keys (customer ids stay verbatim, so a later re-run pseudonymizes them exactly once) and deliverable
`download_url`s, which are expiring credentials, are dropped. Everything a transform reads stays as sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from transform.pseudonym import strip_personal_data
from transform.result import TransformResult, build_table
from transform.values import to_json

_CREDENTIAL_KEYS = frozenset({"download_url"})


@dataclass(frozen=True)
class RawResponse:
    """One fetched payload: which partner endpoint it came from and which kit, order or sample it is about."""

    provider: str
    endpoint: str
    entity_id: str
    body: Any


def fit_to_keep(value: Any) -> Any:
    """`value` without presigned URLs anywhere and without personal data under any `metadata` key."""
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        for name, item in value.items():
            if name in _CREDENTIAL_KEYS:
                continue
            kept[name] = strip_personal_data(item) if name == "metadata" else fit_to_keep(item)
        return kept
    if isinstance(value, list):
        return [fit_to_keep(item) for item in value]
    return value


def transform_raw_responses(responses: Iterable[RawResponse], *, observed_at: datetime) -> TransformResult:
    """Responses -> raw_responses rows (one per response; the body as canonical JSON text)."""
    rows = [
        {
            "provider": response.provider,
            "endpoint": response.endpoint,
            "entity_id": response.entity_id,
            "body_json": to_json(fit_to_keep(response.body)),
            "observed_at": observed_at,
        }
        for response in responses
    ]
    return TransformResult(tables={"raw_responses": build_table("raw_responses", rows)})
