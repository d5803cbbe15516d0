"""The async clients: same payloads and errors as the sync ones, bounded concurrency, aiohttp transport."""

from __future__ import annotations

import base64

import anyio
import anyio.lowlevel
import httpx
import pytest
from httpx_aiohttp import AiohttpTransport

from extract.biomesight import AsyncBiomesightClient
from extract.errors import MalformedResponse, NotFound, NotReady, ServerError, TransportFailure
from extract.gencove import AsyncGencoveClient
from extract.http import build_async_client, gather_bounded
from extract.retry import AsyncRetryTransport
from tests.extract.fakes import (
    API_KEY,
    BASE_URL,
    CLIENT_ID,
    CLIENT_SECRET,
    GENCOVE_URL,
    NO_WAIT,
    FakeBiomesight,
    respond,
)

KIT = "BS1-ASYNC1"


def make_client(fake: FakeBiomesight, **kwargs: object) -> AsyncBiomesightClient:
    return AsyncBiomesightClient(
        BASE_URL,
        CLIENT_ID,
        CLIENT_SECRET,
        transport=httpx.MockTransport(fake.handle_async),
        backoff=NO_WAIT,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.anyio
async def test_async_biomesight_endpoints(fake_biomesight: FakeBiomesight) -> None:
    csv = b"taxonomy,abundance\n"
    fake_biomesight.route(
        "/api/v1/order", 201, {"status": "created", "sale_id": 1, "external_order_id": "O-1"}
    )
    fake_biomesight.route("/api/v1/register_kit", 200, {"status": "Success"})
    fake_biomesight.route(f"/api/v1/status/kit/{KIT}", 200, {"kit_id": KIT, "status": "Results Processed"})
    fake_biomesight.route("/api/v1/status/order/O-1", 200, {"order_id": "O-1", "status": "Shipped"})

    def results(request: httpx.Request) -> httpx.Response:
        fmt = request.url.params["format"]
        if fmt == "pdf":
            return respond(203, {"error": "PDF report not ready"})
        if fmt == "csv":
            return respond(200, {"kit_id": KIT, "csv": base64.b64encode(csv).decode()})
        return respond(200, {"scores": {"gut_health": 1.0}})

    fake_biomesight.routes[f"/api/v1/results/{KIT}"] = results
    async with make_client(fake_biomesight) as client:
        assert (await client.create_order({"order_id": "O-1"}))["sale_id"] == 1
        assert await client.register_kit({"kit_id": KIT}) == {"status": "Success"}
        assert await client.get_results(KIT) == {"scores": {"gut_health": 1.0}}
        assert await client.get_taxonomy_csv(KIT) == csv
        with pytest.raises(NotReady) as caught:
            await client.get_pdf(KIT)
        assert caught.value.status == 203
        assert (await client.get_kit_status(KIT))["status"] == "Results Processed"
        assert (await client.get_order_status("O-1"))["status"] == "Shipped"
        with pytest.raises(NotFound):
            await client.get_kit_status("BS1-NOPE")


@pytest.mark.anyio
async def test_async_retries_use_the_injected_sleep(fake_biomesight: FakeBiomesight) -> None:
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    fake_biomesight.route(f"/api/v1/status/kit/{KIT}", 503, {"error": "down"}, headers={"Retry-After": "4"})
    async with make_client(fake_biomesight, sleep=record, max_retries=2) as client:
        with pytest.raises(ServerError) as caught:
            await client.get_kit_status(KIT)
    assert caught.value.attempts == 3
    assert slept == [4.0, 4.0]


@pytest.mark.anyio
async def test_concurrent_requests_each_keep_their_own_retries() -> None:
    """Requests retried side by side through one client each count their own attempts (tenacity keeps a
    call's statistics on its Retrying object, so each request needs its own)."""
    max_retries = 2
    sample_ids = [f"s{n}" for n in range(8)]
    seen: dict[str, int] = dict.fromkeys(sample_ids, 0)

    async def times_out(request: httpx.Request) -> httpx.Response:
        seen[request.url.path.rsplit("/", 1)[-1]] += 1
        await anyio.sleep(0.001)
        raise httpx.ReadTimeout("read timed out")

    async def next_turn(_seconds: float) -> None:
        await anyio.lowlevel.checkpoint()  # let the other requests move on while this one waits

    async with AsyncGencoveClient(
        GENCOVE_URL,
        API_KEY,
        transport=httpx.MockTransport(times_out),
        max_retries=max_retries,
        backoff=NO_WAIT,
        sleep=next_turn,
        max_concurrency=len(sample_ids),
    ) as client:
        failures = await gather_bounded(
            (client.get_sample(sample) for sample in sample_ids),
            limit=len(sample_ids),
            return_exceptions=True,
        )
    assert all(isinstance(failure, TransportFailure) for failure in failures)
    assert [failure.attempts for failure in failures] == [max_retries + 1] * len(sample_ids)  # type: ignore[union-attr]
    assert seen == dict.fromkeys(sample_ids, max_retries + 1)


@pytest.mark.anyio
async def test_async_malformed_json(fake_biomesight: FakeBiomesight) -> None:
    fake_biomesight.route(f"/api/v1/results/{KIT}", 200, b'{"scores": {')
    async with make_client(fake_biomesight) as client:
        with pytest.raises(MalformedResponse):
            await client.get_results(KIT)


class InFlight:
    """An async handler that records the most requests it ever had in flight at once."""

    def __init__(self) -> None:
        self.current = 0
        self.peak = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.current += 1
        self.peak = max(self.peak, self.current)
        await anyio.sleep(0.005)
        self.current -= 1
        return respond(200, {"id": request.url.path.rsplit("/", 1)[-1]})


@pytest.mark.anyio
async def test_client_never_exceeds_max_concurrency() -> None:
    handler = InFlight()
    limit = 4
    sample_ids = [f"s{n}" for n in range(25)]
    async with AsyncGencoveClient(
        GENCOVE_URL, API_KEY, transport=httpx.MockTransport(handler), max_concurrency=limit
    ) as client:
        samples = await gather_bounded((client.get_sample(sample) for sample in sample_ids), limit=100)
    assert [sample["id"] for sample in samples] == sample_ids  # type: ignore[index]
    assert handler.peak == limit


@pytest.mark.anyio
async def test_gather_bounded_limits_and_keeps_order() -> None:
    running = 0
    peak = 0

    async def work(number: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.001 * (number % 3))
        running -= 1
        if number == 5:
            raise NotReady("kit 5 still in the lab", status=202)
        return number * number

    results = await gather_bounded((work(n) for n in range(12)), limit=3, return_exceptions=True)
    assert peak == 3
    assert [r for n, r in enumerate(results) if n != 5] == [n * n for n in range(12) if n != 5]
    assert isinstance(results[5], NotReady)


@pytest.mark.anyio
async def test_use_aiohttp_picks_the_aiohttp_transport_inside_the_retry_wrapper() -> None:
    http = build_async_client(GENCOVE_URL, httpx.Auth(), use_aiohttp=True, max_concurrency=8)
    async with http:
        retry = http._transport  # httpx has no public accessor for the mounted transport
        assert isinstance(retry, AsyncRetryTransport)
        assert isinstance(retry._transport, AiohttpTransport)
        assert retry._transport.limits.max_connections == 8
