"""Biomesight Partner API clients (sync and async): orders, kit registration, results and statuses.

Biomesight has no listing endpoint, so these clients only ever fetch what the caller names; which kits to poll
is the flows' business.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

import anyio
import httpx

from extract.auth import BiomesightAuth
from extract.http import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    AsyncPartnerClient,
    Call,
    SyncPartnerClient,
    build_async_client,
    build_client,
)
from extract.responses import base64_field, json_object
from extract.retry import Backoff

API = "/api/v1"
ResultsFormat = Literal["json", "pdf", "csv"]
_RESULTS_REQUIRED: dict[str, tuple[str, ...]] = {"json": ("scores",), "pdf": ("pdf",), "csv": ("csv",)}


def _segment(identifier: str) -> str:
    """An id as one URL path segment: kit codes are partner-printed text, so '/' or '?' must not escape."""
    return quote(str(identifier), safe="")


def _object(*required: str) -> Callable[[httpx.Response], dict[str, Any]]:
    return lambda response: json_object(response, required)


def create_order_call(order: dict[str, Any]) -> Call[dict[str, Any]]:
    return Call("POST", f"{API}/order", _object(), json=order)


def register_kit_call(registration: dict[str, Any]) -> Call[dict[str, Any]]:
    return Call("POST", f"{API}/register_kit", _object(), json=registration)


def results_call(kit_id: str, results_format: ResultsFormat = "json") -> Call[dict[str, Any]]:
    if results_format not in _RESULTS_REQUIRED:
        raise ValueError(f"format must be one of {sorted(_RESULTS_REQUIRED)}, not {results_format!r}")
    return Call(
        "GET",
        f"{API}/results/{_segment(kit_id)}",
        _object(*_RESULTS_REQUIRED[results_format]),
        params={"format": results_format},
    )


def taxonomy_csv_call(kit_id: str) -> Call[bytes]:
    return Call(
        "GET", f"{API}/results/{_segment(kit_id)}", lambda r: base64_field(r, "csv"), params={"format": "csv"}
    )


def pdf_call(kit_id: str) -> Call[bytes]:
    return Call(
        "GET", f"{API}/results/{_segment(kit_id)}", lambda r: base64_field(r, "pdf"), params={"format": "pdf"}
    )


def kit_status_call(kit_id: str) -> Call[dict[str, Any]]:
    return Call("GET", f"{API}/status/kit/{_segment(kit_id)}", _object("status"))


def order_status_call(order_id: str) -> Call[dict[str, Any]]:
    return Call("GET", f"{API}/status/order/{_segment(order_id)}", _object("status"))


class BiomesightClient(SyncPartnerClient):
    """Synchronous Biomesight client. `base_url` is the host root (e.g. https://app.biomesight.com).

    Raises the `extract.errors` types: `NotReady` (202/203) for results still in the lab, `Forbidden` for a
    kit that is not ours, `NotFound`, `Conflict` for a duplicate order, `Invalid` for rejected input, and the
    retriable family once the retry budget is spent.
    """

    PARTNER = "Biomesight"

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        now: Callable[[], datetime] | None = None,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.auth = BiomesightAuth(
            base_url, client_id, client_secret, refresh_margin=refresh_margin, clock=clock
        )
        super().__init__(
            build_client(
                base_url,
                self.auth,
                transport=transport,
                timeout=timeout,
                max_retries=max_retries,
                backoff=backoff,
                sleep=sleep,
                rng=rng,
                now=now,
            )
        )

    def create_order(self, order: dict[str, Any]) -> dict[str, Any]:
        """Place an order (201 `{"status", "sale_id", ...}`); reusing an order_id raises `Conflict`."""
        return self._run(create_order_call(order))

    def register_kit(self, registration: dict[str, Any]) -> dict[str, Any]:
        return self._run(register_kit_call(registration))

    def get_results(self, kit_id: str, format: ResultsFormat = "json") -> dict[str, Any]:
        """The results payload as Biomesight sends it (scores and recommendations for "json")."""
        return self._run(results_call(kit_id, format))

    def get_taxonomy_csv(self, kit_id: str) -> bytes:
        """The taxonomy CSV, decoded from base64."""
        return self._run(taxonomy_csv_call(kit_id))

    def get_pdf(self, kit_id: str) -> bytes:
        """The PDF report, decoded from base64; `NotReady` with status 203 while only JSON results exist."""
        return self._run(pdf_call(kit_id))

    def get_kit_status(self, kit_id: str) -> dict[str, Any]:
        return self._run(kit_status_call(kit_id))

    def get_order_status(self, order_id: str) -> dict[str, Any]:
        return self._run(order_status_call(order_id))


class AsyncBiomesightClient(AsyncPartnerClient):
    """The async twin of `BiomesightClient`, with at most `max_concurrency` requests in flight.

    `use_aiohttp=True` runs httpx over httpx-aiohttp's transport (same API, much less client CPU per request).
    """

    PARTNER = "Biomesight"

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
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
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.auth = BiomesightAuth(
            base_url, client_id, client_secret, refresh_margin=refresh_margin, clock=clock
        )
        http = build_async_client(
            base_url,
            self.auth,
            transport=transport,
            use_aiohttp=use_aiohttp,
            max_concurrency=max_concurrency,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            sleep=sleep,
            rng=rng,
            now=now,
        )
        super().__init__(http, max_concurrency)

    async def create_order(self, order: dict[str, Any]) -> dict[str, Any]:
        return await self._run(create_order_call(order))

    async def register_kit(self, registration: dict[str, Any]) -> dict[str, Any]:
        return await self._run(register_kit_call(registration))

    async def get_results(self, kit_id: str, format: ResultsFormat = "json") -> dict[str, Any]:
        return await self._run(results_call(kit_id, format))

    async def get_taxonomy_csv(self, kit_id: str) -> bytes:
        return await self._run(taxonomy_csv_call(kit_id))

    async def get_pdf(self, kit_id: str) -> bytes:
        return await self._run(pdf_call(kit_id))

    async def get_kit_status(self, kit_id: str) -> dict[str, Any]:
        return await self._run(kit_status_call(kit_id))

    async def get_order_status(self, order_id: str) -> dict[str, Any]:
        return await self._run(order_status_call(order_id))
