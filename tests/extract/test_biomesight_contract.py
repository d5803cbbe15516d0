"""Contract: the Biomesight clients against the sandbox over real HTTP (every endpoint, errors, faults).

Expectations come from the sandbox's world objects (what the partner knows), not numbers copied from a run.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta

import pytest

from extract.biomesight import AsyncBiomesightClient, BiomesightClient
from extract.errors import (
    AuthenticationFailed,
    Conflict,
    Forbidden,
    Invalid,
    MalformedResponse,
    NotFound,
    NotReady,
    RateLimited,
    TransportFailure,
)
from extract.http import gather_bounded
from extract.retry import Backoff
from sandbox.accounts import BIOMESIGHT_CLIENT_ID, BIOMESIGHT_CLIENT_SECRET
from sandbox.model import Kit, World, status_at
from sandbox.server import SandboxServer
from sandbox.world import generate_world

NO_WAIT = Backoff(base=0.0, cap=0.0)


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer(generate_world(seed=11, kits=80)) as running:
        yield running


@pytest.fixture
def client(server: SandboxServer) -> Iterator[BiomesightClient]:
    with BiomesightClient(
        server.base_url, BIOMESIGHT_CLIENT_ID, BIOMESIGHT_CLIENT_SECRET, backoff=NO_WAIT, timeout=10
    ) as running:
        yield running


def visible_kits(world: World) -> list[Kit]:
    now = world.clock.now()
    return [kit for kit in world.kits.values() if world.orders[kit.order_id].purchase_date <= now]


def our_kit(world: World, *, results: bool, pdf: bool | None = None) -> Kit:
    """A visible, registered kit of ours whose results (and PDF) are or are not ready now."""
    now = world.clock.now()
    for kit in visible_kits(world):
        if kit.account != BIOMESIGHT_CLIENT_ID or status_at(kit.timeline, now) is None:
            continue
        has_results = (
            kit.result is not None and kit.results_ready_at is not None and kit.results_ready_at <= now
        )
        has_pdf = has_results and kit.pdf_ready_at is not None and kit.pdf_ready_at <= now
        if has_results == results and (pdf is None or has_pdf == pdf):
            return kit
    pytest.skip("the generated world has no such kit")


def new_order(order_id: str) -> dict[str, object]:
    return {
        "order_id": order_id,
        "purchase_date": "2026-10-31T10:30:00",
        "user": {
            "id": "CUST-CONTRACT",
            "first_name": "Jane",
            "last_name": "Smith",
            "email": "jane@example.com",
        },
        "destination_address": {
            "address_line1": "42 Wellness Avenue",
            "city": "London",
            "postcode_zip": "SW1A 1AA",
            "country_code": "GB",
        },
        "items": [{"product_sku": "GUT-1", "quantity": 1}],
    }


def test_results_json_csv_and_pdf(server: SandboxServer, client: BiomesightClient) -> None:
    kit = our_kit(server.world, results=True, pdf=True)
    assert kit.result is not None
    payload = client.get_results(kit.kit_id)
    assert payload["general"]["kit_id"] == kit.kit_id
    assert set(payload["scores"]) == set(kit.result.scores)
    csv = client.get_taxonomy_csv(kit.kit_id)
    rows = csv.decode().strip().splitlines()
    assert len(rows) >= 2  # a header and at least one taxon
    pytest.importorskip("sandbox.pdf", reason="the sandbox's PDF renderer is not there yet")
    assert client.get_pdf(kit.kit_id).startswith(b"%PDF")


def test_results_not_ready_is_202(server: SandboxServer, client: BiomesightClient) -> None:
    kit = our_kit(server.world, results=False)
    with pytest.raises(NotReady) as caught:
        client.get_results(kit.kit_id)
    assert caught.value.status == 202


def test_pdf_lagging_json_is_203(server: SandboxServer, client: BiomesightClient) -> None:
    now = server.clock.now()
    lagging = [
        kit
        for kit in visible_kits(server.world)
        if kit.account == BIOMESIGHT_CLIENT_ID
        and kit.result is not None
        and kit.results_ready_at is not None
        and kit.pdf_ready_at is not None
        and kit.results_ready_at < kit.pdf_ready_at
        and kit.pdf_ready_at > now
    ]
    if not lagging:
        pytest.skip("the generated world has no kit whose PDF lags its JSON")
    kit = lagging[0]
    assert kit.results_ready_at is not None
    server.set_time(max(now, kit.results_ready_at))
    assert client.get_results(kit.kit_id)["general"]["kit_id"] == kit.kit_id
    with pytest.raises(NotReady) as caught:
        client.get_pdf(kit.kit_id)
    assert caught.value.status == 203


def test_foreign_and_unknown_kits(server: SandboxServer, client: BiomesightClient) -> None:
    foreign = next(kit for kit in visible_kits(server.world) if kit.account != BIOMESIGHT_CLIENT_ID)
    with pytest.raises(Forbidden):
        client.get_results(foreign.kit_id)
    with pytest.raises(Forbidden):
        client.get_kit_status(foreign.kit_id)
    with pytest.raises(NotFound):
        client.get_results("BS1-NOSUCHKIT")
    with pytest.raises(NotFound):
        client.get_order_status("ORD-NO-SUCH-ORDER")


def test_kit_and_order_status_match_the_timelines(server: SandboxServer, client: BiomesightClient) -> None:
    now = server.clock.now()
    kit = our_kit(server.world, results=True)
    change = status_at(kit.timeline, now)
    assert change is not None
    assert client.get_kit_status(kit.kit_id)["status"] == change.status
    order = server.world.orders[kit.order_id]
    order_change = status_at(order.timeline, now)
    expected = "Pending" if order_change is None else order_change.status
    status = client.get_order_status(order.order_id)
    assert (status["order_id"], status["status"]) == (order.order_id, expected)


def test_order_then_register_a_kit(server: SandboxServer, client: BiomesightClient) -> None:
    order_id = "ORD-CONTRACT-1"
    created = client.create_order(new_order(order_id))
    assert created["external_order_id"] == order_id
    assert created["status"] == "created"
    with pytest.raises(Conflict):
        client.create_order(new_order(order_id))
    kit_id = server.world.orders[order_id].kit_ids[0]
    today = server.clock.now().date().isoformat()
    registration = {"order_id": order_id, "kit_id": kit_id, "sample_date": today, "bristol_scale": 4}
    assert client.register_kit(registration) == {"status": "Success"}
    with pytest.raises(Invalid, match="already registered"):
        client.register_kit(registration)
    assert client.get_kit_status(kit_id)["kit_id"] == kit_id


def test_invalid_orders(client: BiomesightClient) -> None:
    missing_items = {key: value for key, value in new_order("ORD-CONTRACT-2").items() if key != "items"}
    with pytest.raises(Invalid) as caught:
        client.create_order(missing_items)
    assert caught.value.status == 400
    bad_date = {**new_order("ORD-CONTRACT-3"), "purchase_date": "yesterday"}
    with pytest.raises(Invalid) as caught:
        client.create_order(bad_date)
    assert caught.value.status == 422


def test_wrong_secret_is_authentication_failed(server: SandboxServer) -> None:
    with (
        BiomesightClient(server.base_url, BIOMESIGHT_CLIENT_ID, "not-the-secret", backoff=NO_WAIT) as client,
        pytest.raises(AuthenticationFailed) as caught,
    ):
        client.get_kit_status("BS1-ANY")
    assert BIOMESIGHT_CLIENT_ID in str(caught.value)
    assert "not-the-secret" not in str(caught.value)


def test_an_expired_token_is_refreshed_once(server: SandboxServer, client: BiomesightClient) -> None:
    kit = our_kit(server.world, results=True)
    client.get_kit_status(kit.kit_id)
    server.advance(timedelta(hours=2))  # the sandbox's tokens live one virtual hour
    client.get_kit_status(kit.kit_id)
    server.add_fault("biomesight.kit_status:expire_token:count=1")
    client.get_kit_status(kit.kit_id)
    counts = server.request_counts()
    assert sum(counts["biomesight.token"].values()) == 3
    assert counts["biomesight.kit_status"].get("401") == 2


def test_rate_limits_and_dropped_connections_are_retried(server: SandboxServer) -> None:
    sleeps: list[float] = []
    kit = our_kit(server.world, results=True)
    server.add_fault("biomesight.results:429:count=2,retry_after=1")
    server.add_fault("biomesight.kit_status:drop:count=2")
    server.add_fault("biomesight.kit_status:503:count=1")
    with BiomesightClient(
        server.base_url, BIOMESIGHT_CLIENT_ID, BIOMESIGHT_CLIENT_SECRET, backoff=NO_WAIT, sleep=sleeps.append
    ) as client:
        assert client.get_results(kit.kit_id)["general"]["kit_id"] == kit.kit_id
        assert sleeps == [1.0, 1.0]
        assert client.get_kit_status(kit.kit_id)["kit_id"] == kit.kit_id
    assert len(sleeps) == 2 + 3


def test_persistent_rate_limit_gives_up(server: SandboxServer) -> None:
    kit = our_kit(server.world, results=True)
    server.add_fault("biomesight.results:429:retry_after=0")
    with (
        BiomesightClient(
            server.base_url, BIOMESIGHT_CLIENT_ID, BIOMESIGHT_CLIENT_SECRET, backoff=NO_WAIT, max_retries=2
        ) as client,
        pytest.raises(RateLimited) as caught,
    ):
        client.get_results(kit.kit_id)
    assert caught.value.attempts == 3


@pytest.mark.parametrize("fault", ["truncate", "bad_base64"])
def test_corrupt_bodies_are_malformed(server: SandboxServer, client: BiomesightClient, fault: str) -> None:
    kit = our_kit(server.world, results=True)
    server.add_fault(f"biomesight.results:{fault}:count=1")
    with pytest.raises(MalformedResponse):
        client.get_taxonomy_csv(kit.kit_id)
    assert client.get_taxonomy_csv(kit.kit_id)  # the fault was used up: the next fetch is clean


@pytest.mark.anyio
@pytest.mark.parametrize("use_aiohttp", [False, True], ids=["httpx", "aiohttp"])
async def test_async_client_over_both_transports(server: SandboxServer, use_aiohttp: bool) -> None:
    ready = [
        kit
        for kit in visible_kits(server.world)
        if kit.account == BIOMESIGHT_CLIENT_ID
        and kit.results_ready_at is not None
        and kit.result is not None
        and kit.results_ready_at <= server.clock.now()
    ]
    assert ready
    server.add_fault("biomesight.results:503:count=3")
    server.add_fault("biomesight.results:drop:count=2")
    async with AsyncBiomesightClient(
        server.base_url,
        BIOMESIGHT_CLIENT_ID,
        BIOMESIGHT_CLIENT_SECRET,
        use_aiohttp=use_aiohttp,
        max_concurrency=8,
        backoff=NO_WAIT,
        timeout=10,
    ) as client:
        payloads = await gather_bounded((client.get_results(kit.kit_id) for kit in ready), limit=32)
        csvs = await gather_bounded((client.get_taxonomy_csv(kit.kit_id) for kit in ready[:3]), limit=3)
    assert [payload["general"]["kit_id"] for payload in payloads] == [kit.kit_id for kit in ready]  # type: ignore[index]
    assert all(isinstance(csv, bytes) and csv for csv in csvs)
    assert sum(server.request_counts()["biomesight.token"].values()) == 1


def test_an_unknown_client_secret_stays_out_of_the_error(server: SandboxServer) -> None:
    secret = base64.b64encode(b"wrong").decode()
    with (
        BiomesightClient(server.base_url, "unknown-client", secret, backoff=NO_WAIT) as client,
        pytest.raises(AuthenticationFailed) as caught,
    ):
        client.get_order_status("ORD-1")
    assert secret not in repr(caught.value)


@pytest.mark.anyio
@pytest.mark.parametrize("use_aiohttp", [False, True], ids=["httpx", "aiohttp"])
async def test_a_dropped_order_is_not_resent(server: SandboxServer, use_aiohttp: bool) -> None:
    # The partner may have stored the order before the connection dropped; resending could double it.
    server.add_fault("biomesight.order:drop:count=1")
    async with AsyncBiomesightClient(
        server.base_url,
        BIOMESIGHT_CLIENT_ID,
        BIOMESIGHT_CLIENT_SECRET,
        use_aiohttp=use_aiohttp,
        backoff=NO_WAIT,
    ) as client:
        with pytest.raises(TransportFailure) as caught:
            await client.create_order(new_order("ORD-CONTRACT-DROP"))
    assert caught.value.attempts == 1
    assert sum(server.request_counts()["biomesight.order"].values()) == 1
