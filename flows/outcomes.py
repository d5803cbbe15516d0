"""How one failed request counts: left for the next run, or quarantined with a reason a person can act on."""

from __future__ import annotations

from extract.errors import (
    Forbidden,
    IncompleteListing,
    Invalid,
    MalformedResponse,
    NotFound,
    NotReady,
    PartnerError,
    RetriableError,
    Unauthorized,
)
from flows.tally import RunTally
from transform.failures import FetchFailure

# Fatal partner answers that a later identical request would get again: quarantined (and still retried next
# run, since nothing marks the kit done, but reported so a person can look).
_QUARANTINE_REASONS: tuple[tuple[type[PartnerError], str], ...] = (
    (IncompleteListing, "incomplete_listing"),
    (NotFound, "not_found"),
    (Forbidden, "forbidden"),
    (MalformedResponse, "malformed_response"),
    (Invalid, "invalid_request"),
    (Unauthorized, "unauthorized"),
)


def record_failure(
    error: BaseException, *, provider: str, entity: str, entity_id: str, endpoint: str, tally: RunTally
) -> FetchFailure | None:
    """Count `error` in the tally; return the quarantine record it deserves, or None if it only defers work.

    Every failure but "not ready yet" (the partner's own answer: nothing to read yet) leaves something unread,
    so it also counts against the run's completeness. Anything that is not a partner error (a bug in our code)
    is re-raised: hiding it would lose kits silently.
    """
    if isinstance(error, NotReady):
        tally.deferred[f"{endpoint}: not ready ({error.status})"] += 1
        return None
    if isinstance(error, RetriableError):
        tally.requests_failed += 1
        tally.deferred[f"{endpoint}: {type(error).__name__} after retries"] += 1
        tally.incomplete[f"{provider} {endpoint}: {type(error).__name__} after retries"] += 1
        return None
    for error_type, reason in _QUARANTINE_REASONS:
        if isinstance(error, error_type):
            tally.requests_failed += 1
            tally.incomplete[f"{provider} {endpoint}: {reason}"] += 1
            return FetchFailure(provider, entity, entity_id, endpoint, reason, str(error))
    if isinstance(error, PartnerError):
        tally.requests_failed += 1
        tally.incomplete[f"{provider} {endpoint}: partner_error"] += 1
        return FetchFailure(provider, entity, entity_id, endpoint, "partner_error", str(error))
    raise error
