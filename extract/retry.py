"""The one place kitsync retries HTTP: transports that wrap the real one and resend on transient failures.

Wrapping the transport (rather than each call site) means every request a client makes — the token request,
each page of a listing, a resend after a 401 — gets the same policy: exponential backoff with full jitter,
`Retry-After` honoured on 429/503, and a bound after which the last response is handed back (the client turns
it into `RateLimited`/`ServerError`) or a `TransportFailure` is raised.

POSTs are only resent when the partner certainly did not act on them (connection never made, 429, 503):
Gencove's `sample-kit` has no idempotency key, so blindly resending after a read timeout could ship a
second kit.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import anyio
import httpx

from extract.errors import TransportFailure, Unreachable
from extract.redaction import describe_request, redact_text

logger = logging.getLogger("kitsync.extract")

RETRIABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Statuses with which a server says it did not process the request at all, so even a POST may be resent.
_REJECTED_UNPROCESSED = frozenset({429, 503})
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
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

    def delay(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number `retry` (0 for the first retry)."""
        ceiling = min(self.cap, self.base * self.multiplier**retry)
        return rng.uniform(0.0, ceiling) if ceiling > 0 else 0.0


def give_up_seconds(max_retries: int, backoff: Backoff, connect_timeout: float) -> float:
    """The longest one request to a partner that cannot be reached takes before `Unreachable` is raised: each
    attempt waits out its connect timeout, each retry its longest backoff."""
    waits = sum(min(backoff.cap, backoff.base * backoff.multiplier**retry) for retry in range(max_retries))
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


def _origin(url: httpx.URL) -> str:
    """The host root a partner is configured with: scheme, host and port, never userinfo or a query."""
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{url.host}{port}"


def _safe_to_resend(
    request: httpx.Request, *, status: int | None = None, exc: Exception | None = None
) -> bool:
    if request.method in _IDEMPOTENT_METHODS or request.extensions.get(IDEMPOTENT_EXTENSION):
        return True
    if status is not None:
        return status in _REJECTED_UNPROCESSED
    unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    return unsent and exc is not None and not _caused_by_dropped_connection(exc)


@dataclass
class RetryPolicy:
    """When to resend and how long to wait; shared by the sync and async transports."""

    max_retries: int = 5
    backoff: Backoff = field(default_factory=Backoff)
    rng: random.Random = field(default_factory=random.Random)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def after_response(self, request: httpx.Request, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before resending, or None to hand this response back."""
        response.extensions[ATTEMPTS_EXTENSION] = attempt
        status = response.status_code
        if status not in RETRIABLE_STATUSES or attempt > self.max_retries:
            return None
        if not _safe_to_resend(request, status=status):
            return None
        hint = (
            parse_retry_after(response.headers.get("Retry-After"), self.now())
            if status in (429, 503)
            else None
        )
        if hint is not None:
            if hint > self.backoff.max_retry_after:
                logger.info(
                    "%s -> %d asks to wait %.0f s (more than %.0f s): not retrying now",
                    describe_request(request),
                    status,
                    hint,
                    self.backoff.max_retry_after,
                )
                return None
            delay = hint
        else:
            delay = self.backoff.delay(attempt - 1, self.rng)
        logger.info(
            "%s -> %d; retry %d/%d in %.2f s",
            describe_request(request),
            status,
            attempt,
            self.max_retries,
            delay,
        )
        return delay

    def after_error(self, request: httpx.Request, exc: httpx.TransportError, attempt: int) -> float:
        """Seconds to wait before resending; raises `TransportFailure` when we must stop."""
        endpoint = describe_request(request)
        reason = redact_text(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        retriable = isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)
        if not retriable:
            raise TransportFailure(reason, endpoint=endpoint, attempts=attempt) from exc
        if not _safe_to_resend(request, exc=exc):
            message = (
                f"{reason}; not resent because the partner may already have acted on this {request.method}"
            )
            raise TransportFailure(message, endpoint=endpoint, attempts=attempt) from exc
        if attempt > self.max_retries:
            if never_connected(exc):
                # The transport's own words ("Connect call failed", "Name or service not known"): httpx-
                # aiohttp names even a refused connection ConnectTimeout, which would mislead.
                said = redact_text(str(exc)) or type(exc).__name__
                unreachable = Unreachable(said, endpoint=endpoint, attempts=attempt)
                unreachable.url = _origin(request.url)
                raise unreachable from exc
            raise TransportFailure(reason, endpoint=endpoint, attempts=attempt) from exc
        delay = self.backoff.delay(attempt - 1, self.rng)
        logger.info(
            "%s failed (%s); retry %d/%d in %.2f s", endpoint, reason, attempt, self.max_retries, delay
        )
        return delay


def _log_response(request: httpx.Request, response: httpx.Response, started: float) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.debug("%s -> %d in %.1f ms", describe_request(request), response.status_code, elapsed_ms)


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
        self._sleep = sleep

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                response = self._transport.handle_request(request)
            except httpx.TransportError as exc:
                self._sleep(self._policy.after_error(request, exc, attempt))
                continue
            _log_response(request, response, started)
            delay = self._policy.after_response(request, response, attempt)
            if delay is None:
                return response
            response.close()
            self._sleep(delay)

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
        self._sleep = sleep

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                response = await self._transport.handle_async_request(request)
            except httpx.TransportError as exc:
                await self._sleep(self._policy.after_error(request, exc, attempt))
                continue
            _log_response(request, response, started)
            delay = self._policy.after_response(request, response, attempt)
            if delay is None:
                return response
            await response.aclose()
            await self._sleep(delay)

    async def aclose(self) -> None:
        await self._transport.aclose()
