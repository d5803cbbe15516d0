"""What the sync and async partner clients share: building httpx clients, running one `Call`, bounded gathers.

A partner client describes each endpoint once as a `Call` (method, path, query, body and how to read the
response); the thin sync and async classes only decide whether to `await` it. That keeps request-building and
response interpretation in one place for both flavours.
"""

from __future__ import annotations

import asyncio
import functools
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import anyio
import httpx

from extract.errors import PartnerError, PartnerUnusable
from extract.redaction import redact_url
from extract.retry import AsyncRetryTransport, Backoff, RetryPolicy, RetryTransport

T = TypeVar("T")
C = TypeVar("C", httpx.Client, httpx.AsyncClient)

USER_AGENT = "kitsync/0.1 (+https://github.com/kitsync)"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 5
DEFAULT_MAX_CONCURRENCY = 16


def timeouts(request: float, connect: float) -> httpx.Timeout:
    """A request's timeouts: `request` seconds for each read and write, at most `connect` (and never more
    than `request`) to open the connection, so an unreachable partner is known within a few seconds."""
    return httpx.Timeout(request, connect=min(connect, request))


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request to a partner and how to turn its response into a payload (or a typed error)."""

    method: str
    url: str
    read: Callable[[httpx.Response], T]
    params: dict[str, Any] | None = None
    json: Any = None


def retry_policy(
    max_retries: int, backoff: Backoff | None, rng: random.Random | None, now: Callable[[], datetime] | None
) -> RetryPolicy:
    return RetryPolicy(
        max_retries=max_retries,
        backoff=backoff or Backoff(),
        rng=rng or random.Random(),
        now=now or (lambda: datetime.now(UTC)),
    )


class SetCookieOnly(httpx.Cookies):
    """httpx's cookie store, minus its work on responses that set no cookie.

    httpx hands every response to `extract_cookies`, which builds urllib request and response adapters
    (re-parsing the URL) before the jar finds no `Set-Cookie` header: ~6% of a first sync's client CPU.
    Partners authenticate by header, but a cookie one does set is still kept, as httpx would keep it.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


def _lean(client: C) -> C:
    """The client with `SetCookieOnly` as its cookie store (httpx offers no public way to choose the
    store's class: `cookies=` copies into a plain `Cookies`; tests/extract/test_http_lean.py pins this)."""
    client._cookies = SetCookieOnly(client.cookies)
    return client


def build_client(
    base_url: str,
    auth: httpx.Auth,
    *,
    transport: httpx.BaseTransport | None = None,
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
    max_retries: int = DEFAULT_MAX_RETRIES,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    now: Callable[[], datetime] | None = None,
) -> httpx.Client:
    """An httpx.Client whose transport (the given one, or httpx's) is wrapped in the retry policy."""
    inner = transport if transport is not None else httpx.HTTPTransport()
    client = httpx.Client(
        base_url=base_url,
        auth=auth,
        transport=RetryTransport(inner, retry_policy(max_retries, backoff, rng, now), sleep=sleep),
        timeout=timeout,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        follow_redirects=False,
    )
    return _lean(client)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """The default verifying TLS context, built once per process.

    Building one loads the CA bundle (~70 ms here), and the flows build a client per batch task: shared, it
    is paid once per run instead of once per batch. The context holds no per-connection state.
    """
    return httpx.create_ssl_context()


def default_async_transport(max_concurrency: int, *, use_aiohttp: bool) -> httpx.AsyncBaseTransport:
    """httpx's own async transport, or httpx-aiohttp's (~4x the request rate on loopback, see MEASURED.md)."""
    limits = httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency)
    if use_aiohttp:
        from httpx_aiohttp import AiohttpTransport

        return AiohttpTransport(verify=_ssl_context(), limits=limits)
    return httpx.AsyncHTTPTransport(verify=_ssl_context(), limits=limits)


def build_async_client(
    base_url: str,
    auth: httpx.Auth,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    use_aiohttp: bool = False,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
    max_retries: int = DEFAULT_MAX_RETRIES,
    backoff: Backoff | None = None,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    rng: random.Random | None = None,
    now: Callable[[], datetime] | None = None,
) -> httpx.AsyncClient:
    """An httpx.AsyncClient over the given transport (or a default one), wrapped in the retry policy."""
    inner = (
        transport
        if transport is not None
        else default_async_transport(max_concurrency, use_aiohttp=use_aiohttp)
    )
    client = httpx.AsyncClient(
        base_url=base_url,
        auth=auth,
        transport=AsyncRetryTransport(inner, retry_policy(max_retries, backoff, rng, now), sleep=sleep),
        timeout=timeout,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        follow_redirects=False,
    )
    return _lean(client)


def joinable_base(base_url: httpx.URL) -> str:
    """The client's base URL as `request_url` joins onto it ("" when it has none, or a query of its own)."""
    text = str(base_url)
    if not text or "?" in text or "#" in text:
        return ""
    return text if text.endswith("/") else text + "/"  # httpx joins onto its raw path, "/" at least


def request_url(base_url: str, call: Call[Any]) -> tuple[str, dict[str, Any] | None]:
    """The URL and params to hand httpx for `call`: one absolute URL with its query already encoded.

    httpx parses a relative URL, then the merge with the client's base URL, then the URL with the params
    merged in: three passes of its validating parser (~0.4 ms a request here). Joined the way httpx joins them
    (the base URL ends in "/", the path's leading "/" is dropped, the params encoded by `httpx.QueryParams`),
    the request is the same and is parsed once. A URL of another shape (absolute, or carrying its own query)
    is left to httpx.
    """
    url = call.url
    if not base_url or "://" in url or "?" in url or "#" in url:
        return url, call.params
    joined = base_url + url.lstrip("/")
    if call.params:
        joined += "?" + str(httpx.QueryParams(call.params))
    return joined, None


class _UnusableGuard:
    """What both client flavours share once a partner turned out unusable (credentials refused, unreachable).

    The error is raised again, unsent, for every later request of this client: asking a hundred times what
    the first refusal already answered only costs the partner's patience (and, unreachable, minutes of
    retries). A partner client names itself in `PARTNER` and may override `classify` to say which of its
    answers mean "our credentials are refused".
    """

    PARTNER = "the partner"
    _unusable: PartnerUnusable | None = None

    def classify(self, error: PartnerError) -> PartnerError:
        """The error to raise for `error` (by default itself)."""
        return error

    def _refuse_if_unusable(self) -> None:
        if self._unusable is not None:
            raise self._unusable

    @contextmanager
    def _classified(self) -> Iterator[None]:
        """Around one call of either flavour: a partner error leaves as `classify` names it, and one that
        makes the partner unusable is remembered (with the partner's name and host) for every later call."""
        try:
            yield
        except PartnerError as error:
            raised = self.classify(error)
            if isinstance(raised, PartnerUnusable):
                raised.partner = raised.partner or self.PARTNER
                raised.url = raised.url or redact_url(self._base_url()).rstrip("/")
                self._unusable = raised
            if raised is error:
                raise
            raise raised from error

    def _base_url(self) -> httpx.URL:
        raise NotImplementedError


class SyncPartnerClient(_UnusableGuard):
    """Runs `Call`s on an httpx.Client; closes it on exit."""

    def __init__(self, http: httpx.Client) -> None:
        self._http = http
        self._base = joinable_base(http.base_url)

    def _base_url(self) -> httpx.URL:
        return self._http.base_url

    def _run(self, call: Call[T]) -> T:
        self._refuse_if_unusable()
        with self._classified():
            url, params = request_url(self._base, call)
            return call.read(self._http.request(call.method, url, params=params, json=call.json))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncPartnerClient(_UnusableGuard):
    """Runs `Call`s on an httpx.AsyncClient, at most `max_concurrency` in flight; closes it on exit."""

    def __init__(self, http: httpx.AsyncClient, max_concurrency: int = DEFAULT_MAX_CONCURRENCY) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._http = http
        self._base = joinable_base(http.base_url)
        # fast_acquire: a free slot is taken without a trip through the event loop (~20 µs a request
        # otherwise); the request awaited right after is the cancellation point.
        self._in_flight = anyio.Semaphore(max_concurrency, fast_acquire=True)

    def _base_url(self) -> httpx.URL:
        return self._http.base_url

    async def _run(self, call: Call[T]) -> T:
        with self._classified():
            async with self._in_flight:
                self._refuse_if_unusable()  # checked once admitted: an earlier request may just have failed
                url, params = request_url(self._base, call)
                response = await self._http.request(call.method, url, params=params, json=call.json)
            return call.read(response)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


async def gather_bounded(
    awaitables: Iterable[Awaitable[T]], limit: int, *, return_exceptions: bool = False
) -> list[T | BaseException]:
    """Await all, at most `limit` at a time, results in input order.

    With `return_exceptions` a failure (e.g. `NotReady` for one kit) becomes that kit's result instead of
    cancelling the whole batch: what a batch of kit polls wants.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    gate = asyncio.Semaphore(limit)

    async def gated(awaitable: Awaitable[T]) -> T:
        async with gate:
            return await awaitable

    return await asyncio.gather(*(gated(item) for item in awaitables), return_exceptions=return_exceptions)
