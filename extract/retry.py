"""The one place kitsync retries HTTP: transports that wrap the real one and resend on transient failures.

Wrapping the transport (rather than each call site) means every request a client makes — the token request,
each page of a listing, a resend after a 401 — gets the same policy: exponential backoff with full jitter,
`Retry-After` honoured on 429/503, and a bound after which the last response is handed back (the client turns
it into `RateLimited`/`ServerError`) or a `TransportFailure` is raised.

The retry loop itself is tenacity's (`Retrying` and `AsyncRetrying`: attempts, stop, waits, the injectable
sleep, the hook before each sleep). What is kitsync's own, and so written here as tenacity's predicates and
hooks, is what a partner's answer means:
- POSTs are only resent when the partner certainly did not act on them (connection never made, 429, 503):
  Gencove's `sample-kit` has no idempotency key, so blindly resending after a read timeout could ship a
  second kit (`may_resend`);
- httpx-aiohttp names a connection dropped after sending `ConnectTimeout`, so the class alone does not
  prove a request never left (`never_connected`);
- a `Retry-After` longer than `Backoff.max_retry_after` ends the retries at once (a later run waits better),
  and an HTTP-date one is read against an injectable clock (`parse_retry_after`);
- a partner never connected to after the retries is `Unreachable`, which ends the whole run (`give_up`).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import anyio
import httpx
import tenacity

from extract.errors import TransportFailure, Unreachable
from extract.redaction import describe_request, redact_text

logger = logging.getLogger("kitsync.extract")

RETRIABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Statuses with which a server says it did not process the request at all, so even a POST may be resent.
_REJECTED_UNPROCESSED = frozenset({429, 503})
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
# Failures a later attempt may not meet; anything else (an invalid URL, an unsupported protocol) will recur.
_TRANSIENT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
# A request extension a caller sets to declare a non-idempotent method safe to resend (e.g. a token request).
IDEMPOTENT_EXTENSION = "kitsync.idempotent"
# A response extension recording how many attempts it took, for the errors built from it.
ATTEMPTS_EXTENSION = "kitsync.attempts"


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: wait uniform(0, min(cap, base * multiplier**retry)).

    `max_retry_after` bounds how long a partner's Retry-After may make us wait; a longer hint ends the retries
    at once (a later scheduled run is the better place to wait an hour).
    """

    base: float = 0.5
    cap: float = 30.0
    multiplier: float = 2.0
    max_retry_after: float = 120.0

    def ceiling(self, retry: int) -> float:
        """The longest wait before retry number `retry` (0 for the first retry)."""
        return min(self.cap, self.base * self.multiplier**retry)

    def delay(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number `retry` (0 for the first retry).

        Drawn from `rng`, not from the `random` module as tenacity's `wait_random_exponential` does, so a
        test can make the jitter reproducible.
        """
        ceiling = self.ceiling(retry)
        return rng.uniform(0.0, ceiling) if ceiling > 0 else 0.0


def give_up_seconds(max_retries: int, backoff: Backoff, connect_timeout: float) -> float:
    """The longest one request to a partner that cannot be reached takes before `Unreachable` is raised: each
    attempt waits out its connect timeout, each retry its longest backoff."""
    waits = sum(backoff.ceiling(retry) for retry in range(max_retries))
    return (max_retries + 1) * connect_timeout + waits


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from `now` a Retry-After header (delta-seconds or HTTP-date) asks for; None if unusable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _caused_by_dropped_connection(exc: BaseException) -> bool:
    """True when an httpx connect error really wraps a connection dropped after sending (aiohttp transport).

    httpx-aiohttp maps every aiohttp ClientConnectionError (including ServerDisconnectedError) to
    ConnectTimeout, so the class alone does not prove the request never left; only aiohttp's
    ClientConnectorError does.
    """
    cause = exc.__cause__
    if cause is None or not type(cause).__module__.startswith("aiohttp"):
        return False
    return not any(klass.__name__ == "ClientConnectorError" for klass in type(cause).__mro__)


def never_connected(exc: BaseException) -> bool:
    """True when no connection to the partner could be opened at all (refused, unroutable, DNS, TLS, connect
    timeout), as opposed to one that was made and then dropped or timed out while reading."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout) and not _caused_by_dropped_connection(
        exc
    )


def may_resend(request: httpx.Request, outcome: httpx.Response | BaseException) -> bool:
    """Whether resending `request` after `outcome` cannot make the partner act twice.

    Idempotent methods (and requests marked with `IDEMPOTENT_EXTENSION`) always may; any other only after a
    status that says the request was not processed (429, 503), or a failure before it was sent at all.
    """
    if request.method in _IDEMPOTENT_METHODS or request.extensions.get(IDEMPOTENT_EXTENSION):
        return True
    if isinstance(outcome, httpx.Response):
        return outcome.status_code in _REJECTED_UNPROCESSED
    unsent = isinstance(outcome, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    return unsent and not _caused_by_dropped_connection(outcome)


def _origin(url: httpx.URL) -> str:
    """The host root a partner is configured with: scheme, host and port, never userinfo or a query."""
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{url.host}{port}"


def _reason(exc: BaseException) -> str:
    return redact_text(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


def _request_of(state: tenacity.RetryCallState) -> httpx.Request:
    """The request being retried: the one argument the transports hand to `Retrying`."""
    request = state.args[0]
    assert isinstance(request, httpx.Request)  # noqa: S101 - the transports below always pass it
    return request


@dataclass
class RetryPolicy:
    """When to resend and how long to wait, as tenacity's stop, retry, wait and before-sleep callables.

    Shared by the sync and async transports; `rng` draws the jitter and `now` reads HTTP-date Retry-After
    headers, both injectable for tests.
    """

    max_retries: int = 5
    backoff: Backoff = field(default_factory=Backoff)
    rng: random.Random = field(default_factory=random.Random)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def tenacity_options(self) -> dict[str, Any]:
        """The keyword arguments of a `tenacity.Retrying`/`AsyncRetrying` that applies this policy."""
        return {
            "stop": tenacity.stop_after_attempt(self.max_retries + 1),
            "retry": self.should_resend,
            "wait": self.wait,
            "before_sleep": self.log_retry,
            # Out of attempts: hand the last response back (or raise its failure), not tenacity's RetryError.
            "retry_error_callback": lambda state: state.outcome.result(),
        }

    def _retry_after(self, response: httpx.Response) -> float | None:
        if response.status_code not in _REJECTED_UNPROCESSED:
            return None
        return parse_retry_after(response.headers.get("Retry-After"), self.now())

    def should_resend(self, state: tenacity.RetryCallState) -> bool:
        """tenacity's `retry`: whether this attempt's outcome calls for another (the stop bounds how many).

        It also stamps each response with its attempt number (`ATTEMPTS_EXTENSION`): every outcome passes
        through here, and the errors the client builds from the last response report it.
        """
        request = _request_of(state)
        assert state.outcome is not None  # noqa: S101 - tenacity asks only once an attempt ended
        if state.outcome.failed:
            exc = state.outcome.exception()
            return isinstance(exc, _TRANSIENT_ERRORS) and may_resend(request, exc)
        response: httpx.Response = state.outcome.result()
        response.extensions[ATTEMPTS_EXTENSION] = state.attempt_number
        if response.status_code not in RETRIABLE_STATUSES or not may_resend(request, response):
            return False
        hint = self._retry_after(response)
        if hint is not None and hint > self.backoff.max_retry_after:
            logger.info(
                "%s -> %d asks to wait %.0f s (more than %.0f s): not retrying now",
                describe_request(request),
                response.status_code,
                hint,
                self.backoff.max_retry_after,
            )
            return False
        return True

    def wait(self, state: tenacity.RetryCallState) -> float:
        """tenacity's `wait`: what a 429/503's Retry-After asks, else the jittered backoff."""
        assert state.outcome is not None  # noqa: S101 - tenacity asks only once an attempt ended
        if not state.outcome.failed:
            hint = self._retry_after(state.outcome.result())
            if hint is not None:
                return hint
        return self.backoff.delay(state.attempt_number - 1, self.rng)

    def log_retry(self, state: tenacity.RetryCallState) -> None:
        """tenacity's `before_sleep`: one line saying what failed and when the retry comes."""
        assert state.outcome is not None  # noqa: S101 - tenacity sleeps only after an attempt
        endpoint = describe_request(_request_of(state))
        what = (
            f"failed ({_reason(state.outcome.exception())})"
            if state.outcome.failed
            else f"-> {state.outcome.result().status_code}"
        )
        logger.info(
            "%s %s; retry %d/%d in %.2f s",
            endpoint,
            what,
            state.attempt_number,
            self.max_retries,
            state.upcoming_sleep,
        )

    def give_up(self, request: httpx.Request, exc: httpx.TransportError, attempts: int) -> TransportFailure:
        """The typed error for a transport failure that was not (or no longer) retried."""
        endpoint = describe_request(request)
        reason = _reason(exc)
        if not isinstance(exc, _TRANSIENT_ERRORS):
            return TransportFailure(reason, endpoint=endpoint, attempts=attempts)
        if not may_resend(request, exc):
            message = (
                f"{reason}; not resent because the partner may already have acted on this {request.method}"
            )
            return TransportFailure(message, endpoint=endpoint, attempts=attempts)
        if never_connected(exc):
            # The transport's own words ("Connect call failed", "Name or service not known"): httpx-aiohttp
            # names even a refused connection ConnectTimeout, which would mislead.
            said = redact_text(str(exc)) or type(exc).__name__
            unreachable = Unreachable(said, endpoint=endpoint, attempts=attempts)
            unreachable.url = _origin(request.url)
            return unreachable
        return TransportFailure(reason, endpoint=endpoint, attempts=attempts)


def _log_response(request: httpx.Request, response: httpx.Response, started: float) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.debug("%s -> %d in %.1f ms", describe_request(request), response.status_code, elapsed_ms)


def _attempts(retrying: tenacity.BaseRetrying) -> int:
    return int(retrying.statistics.get("attempt_number", 1))


# The transports make the first attempt themselves and call on tenacity only when its outcome may call for
# another: tenacity's per-call machinery costs ~50 us of CPU a request (sync, ~80 us async, measured on the
# shared 2-core machine), a third of what a whole request costs on httpx-aiohttp, for the ~all requests that
# succeed at once. Its first attempt then replays the outcome already in hand.


def _final(response: httpx.Response) -> bool:
    """A first answer no retry rule applies to (the usual case): stamped as one attempt and handed back."""
    if response.status_code in RETRIABLE_STATUSES:
        return False
    response.extensions[ATTEMPTS_EXTENSION] = 1
    return True


def _replayed(outcome: httpx.Response | httpx.TransportError) -> httpx.Response:
    """The first attempt's outcome, as tenacity's first attempt (its exception keeps its `__cause__`)."""
    if isinstance(outcome, httpx.TransportError):
        raise outcome
    return outcome


class RetryTransport(httpx.BaseTransport):
    """Wraps a sync transport; resends per `RetryPolicy`, sleeping with the injectable `sleep`."""

    def __init__(
        self,
        transport: httpx.BaseTransport,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._transport = transport
        self._policy = policy or RetryPolicy()
        options = self._policy.tenacity_options()
        log = options["before_sleep"]

        def close_and_log(state: tenacity.RetryCallState) -> None:
            assert state.outcome is not None  # noqa: S101 - tenacity sleeps only after an attempt
            if not state.outcome.failed:
                state.outcome.result().close()  # hand its connection back before waiting
            log(state)

        self._retrying = tenacity.Retrying(sleep=sleep, **options | {"before_sleep": close_and_log})

    def _send(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        response = self._transport.handle_request(request)
        _log_response(request, response, started)
        return response

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        first: httpx.Response | httpx.TransportError
        try:
            first = self._send(request)
        except httpx.TransportError as exc:
            first = exc
        else:
            if _final(first):
                return first
        retrying = self._retrying.copy()  # its own state: a Retrying is not safe to share between requests
        pending = [first]

        def attempt(request: httpx.Request) -> httpx.Response:
            return _replayed(pending.pop()) if pending else self._send(request)

        try:
            return retrying(attempt, request)
        except httpx.TransportError as exc:
            raise self._policy.give_up(request, exc, _attempts(retrying)) from exc

    def close(self) -> None:
        self._transport.close()


class AsyncRetryTransport(httpx.AsyncBaseTransport):
    """Wraps an async transport (httpx's or httpx-aiohttp's); resends per `RetryPolicy`."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._transport = transport
        self._policy = policy or RetryPolicy()
        options = self._policy.tenacity_options()
        log = options["before_sleep"]

        async def close_and_log(state: tenacity.RetryCallState) -> None:
            assert state.outcome is not None  # noqa: S101 - tenacity sleeps only after an attempt
            if not state.outcome.failed:
                await state.outcome.result().aclose()  # hand its connection back before waiting
            log(state)

        self._retrying = tenacity.AsyncRetrying(sleep=sleep, **options | {"before_sleep": close_and_log})

    async def _send(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        response = await self._transport.handle_async_request(request)
        _log_response(request, response, started)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        first: httpx.Response | httpx.TransportError
        try:
            first = await self._send(request)
        except httpx.TransportError as exc:
            first = exc
        else:
            if _final(first):
                return first
        # A copy per request: an AsyncRetrying keeps per-call state that concurrent requests would share.
        retrying = self._retrying.copy()
        pending = [first]

        async def attempt(request: httpx.Request) -> httpx.Response:
            return _replayed(pending.pop()) if pending else await self._send(request)

        try:
            return await retrying(attempt, request)
        except httpx.TransportError as exc:
            raise self._policy.give_up(request, exc, _attempts(retrying)) from exc

    async def aclose(self) -> None:
        await self._transport.aclose()
