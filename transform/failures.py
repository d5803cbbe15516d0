"""Fetches that failed for good (404, 403, a malformed body...) as quarantine rows a person can act on.

The flows translate client exceptions into `FetchFailure`s; this module turns them into rows, so quarantine
rows have one shape whether the payload was bad or the fetch was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from transform.result import TableRows, TransformResult


@dataclass(frozen=True)
class FetchFailure:
    """One request that will not succeed by retrying now; `detail` must already be free of secrets."""

    provider: str
    entity: str  # "order" | "kit"
    entity_id: str
    endpoint: str  # e.g. "results.json", "status/kit"
    reason: str  # short code: not_found, forbidden, malformed_response, invalid_request, unauthorized
    detail: str


def transform_fetch_failures(failures: Iterable[FetchFailure], *, observed_at: datetime) -> TransformResult:
    """Quarantine rows for failed fetches; a failure seen again dedupes on (endpoint, reason, detail)."""
    rows = TableRows(observed_at)
    for failure in failures:
        rows.quarantine(
            provider=failure.provider,
            entity=failure.entity,
            entity_id=failure.entity_id,
            stage=f"extract:{failure.endpoint}",
            reason=failure.reason,
            detail=failure.detail,
            payload={"endpoint": failure.endpoint, "reason": failure.reason, "detail": failure.detail},
            excerpt=False,
        )
    return rows.result()
