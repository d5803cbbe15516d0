"""How one failed request counts: left for the next run, quarantined with a reason a person can act on, or,
when the partner refused our credentials or cannot be reached, the end of the whole run (`RunCannotWork`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from extract.errors import (
    CredentialsRefused,
    Forbidden,
    IncompleteListing,
    Invalid,
    MalformedResponse,
    NotFound,
    NotReady,
    PartnerError,
    PartnerUnusable,
    RetriableError,
    Unauthorized,
    Unreachable,
)
from flows.settings import Settings
from flows.tally import RunTally
from transform.failures import FetchFailure


class RunCannotWork(Exception):  # noqa: N818 - the domain's words, as extract.errors
    """The run stopped because a partner refused our credentials or could not be reached.

    Its message is the one line a person needs: what happened and which setting (or URL) to check. It never
    holds a secret: the partner errors it is built from are sanitized (see `extract.errors`).
    """


def _setting(settings: Settings, name: str) -> str:
    """The variable that holds `name` for this run: its Prefect Secret block's, when one is configured."""
    block = getattr(settings, f"{name}_block", None)
    return f"KITSYNC_{name.upper()}_BLOCK (Secret block {block!r})" if block else f"KITSYNC_{name.upper()}"


def run_cannot_work(error: PartnerUnusable, settings: Settings) -> RunCannotWork:
    """The run's failure for a partner that cannot be used, naming the setting or URL to check."""
    partner = error.partner or "the partner"
    prefix = partner.lower()
    if isinstance(error, CredentialsRefused):
        if prefix == "gencove":
            check = _setting(settings, "gencove_api_key")
        else:
            check = f"KITSYNC_{prefix.upper()}_CLIENT_ID and {_setting(settings, f'{prefix}_client_secret')}"
        return RunCannotWork(f"{error.message}: check {check}")
    if isinstance(error, Unreachable):
        tries = f"{error.attempts} attempt{'s' if error.attempts != 1 else ''}"
        return RunCannotWork(
            f"cannot reach {partner} at {error.url} ({error.message}; gave up after {tries}): "
            f"check KITSYNC_{prefix.upper()}_BASE_URL and that {partner} is up"
        )
    return RunCannotWork(f"{partner}: {error.message}")


def should_retry_task(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's `retry_condition_fn` for batch tasks: never retry one that met an unusable partner (a
    second try would be refused, or wait out the retries, all over again). Prefect hands the failure's
    exception over as the Failed state's data."""
    return not isinstance(getattr(state, "data", None), PartnerUnusable)


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

Fetch = tuple[Sequence[str], Callable[[str], Awaitable[Any]]]


async def fetch_each(*fetches: Fetch) -> list[list[Any]]:
    """For each (ids, fetch): one request per id, all concurrently (the client bounds how many are in
    flight); the answers per id, in order, a failure being that id's answer.

    Except a partner that cannot be used at all: the first such error cancels every request not yet answered
    (of every fetch) and is raised, so a refused key costs one request, not one per id.
    """

    async def one(fetch: Callable[[str], Awaitable[Any]], entity_id: str) -> Any:
        try:
            return await fetch(entity_id)
        except PartnerUnusable:
            raise
        except Exception as error:  # a record's failure is its answer, judged by the caller
            return error

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [[group.create_task(one(fetch, i)) for i in ids] for ids, fetch in fetches]
    except* PartnerUnusable as unusable:
        first = unusable.exceptions[0]
        raise first from first.__cause__
    return [[task.result() for task in row] for row in tasks]


def record_failure(
    error: BaseException, *, provider: str, entity: str, entity_id: str, endpoint: str, tally: RunTally
) -> FetchFailure | None:
    """Count `error` in the tally; return the quarantine record it deserves, or None if it only defers work.

    Every failure but "not ready yet" (the partner's own answer: nothing to read yet) leaves something unread,
    so it also counts against the run's completeness. Anything that is not a partner error (a bug in our code)
    is re-raised: hiding it would lose kits silently; so is a partner that cannot be used at all (refused
    credentials, unreachable): that is the run's failure.
    """
    if isinstance(error, PartnerUnusable):
        raise error
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
