"""Biomesight's OAuth2 tokens (cached, refreshed early, once on 401, one at a time) and Gencove's API key."""

from __future__ import annotations

import base64
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

import anyio
import httpx
import pytest

from extract.auth import BiomesightAuth, GencoveAuth
from extract.biomesight import AsyncBiomesightClient, BiomesightClient
from extract.errors import AuthenticationFailed, Unauthorized
from tests.extract.fakes import BASE_URL, CLIENT_ID, CLIENT_SECRET, NO_WAIT, FakeBiomesight

KIT = "BS1-ABC12"
KIT_PATH = f"/api/v1/status/kit/{KIT}"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_client(fake: FakeBiomesight, clock: Clock | None = None, margin: float = 60.0) -> BiomesightClient:
    return BiomesightClient(
        BASE_URL,
        CLIENT_ID,
        CLIENT_SECRET,
        transport=httpx.MockTransport(fake.handle),
        backoff=NO_WAIT,
        sleep=lambda _seconds: None,
        clock=clock or Clock(),
        refresh_margin=margin,
    )


def make_async_client(fake: FakeBiomesight, clock: Clock | None = None) -> AsyncBiomesightClient:
    return AsyncBiomesightClient(
        BASE_URL,
        CLIENT_ID,
        CLIENT_SECRET,
        transport=httpx.MockTransport(fake.handle_async),
        backoff=NO_WAIT,
        max_concurrency=64,
        clock=clock or Clock(),
    )


@pytest.fixture
def kit_route(fake_biomesight: FakeBiomesight) -> FakeBiomesight:
    fake_biomesight.route(KIT_PATH, 200, {"kit_id": KIT, "status": "Lab Processing"})
    return fake_biomesight


def test_token_request_uses_basic_auth_and_the_client_credentials_grant(kit_route: FakeBiomesight) -> None:
    with make_client(kit_route) as client:
        client.get_kit_status(KIT)
    (token_request,) = kit_route.token_requests
    assert token_request.method == "POST"
    assert str(token_request.url) == f"{BASE_URL}/api/v1/auth/token"
    scheme, encoded = token_request.headers["Authorization"].split(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == f"{CLIENT_ID}:{CLIENT_SECRET}"
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(token_request.content.decode()) == {"grant_type": ["client_credentials"]}
    assert kit_route.api_requests[0].headers["Authorization"] == f"Bearer {kit_route.issued[0]}"


def test_the_token_is_cached_across_calls(kit_route: FakeBiomesight) -> None:
    calls = 25
    with make_client(kit_route) as client:
        for _ in range(calls):
            client.get_kit_status(KIT)
    assert len(kit_route.token_requests) == 1
    assert len(kit_route.api_requests) == calls


def test_the_token_is_refreshed_shortly_before_it_expires(kit_route: FakeBiomesight) -> None:
    clock = Clock()
    margin = 60.0
    kit_route.expires_in = 3600
    with make_client(kit_route, clock, margin) as client:
        client.get_kit_status(KIT)
        clock.now += kit_route.expires_in - margin - 1  # still comfortably valid
        client.get_kit_status(KIT)
        assert len(kit_route.token_requests) == 1
        clock.now += 2  # inside the margin: refresh before the partner would reject it
        client.get_kit_status(KIT)
    assert len(kit_route.token_requests) == 2
    assert kit_route.api_requests[-1].headers["Authorization"] == f"Bearer {kit_route.issued[1]}"


def test_a_short_lived_token_is_not_refreshed_on_every_call(kit_route: FakeBiomesight) -> None:
    clock = Clock()
    kit_route.expires_in = 30  # shorter than the 60 s margin
    with make_client(kit_route, clock, margin=60.0) as client:
        client.get_kit_status(KIT)
        clock.now += kit_route.expires_in / 2 - 1
        client.get_kit_status(KIT)
    assert len(kit_route.token_requests) == 1


def test_a_401_refreshes_once_and_resends(kit_route: FakeBiomesight) -> None:
    with make_client(kit_route) as client:
        client.get_kit_status(KIT)
        kit_route.revoked.add(kit_route.issued[0])  # the partner forgets our token early
        assert client.get_kit_status(KIT)["status"] == "Lab Processing"
    assert len(kit_route.token_requests) == 2
    rejected, resent = kit_route.api_requests[1:]
    assert rejected.headers["Authorization"] == f"Bearer {kit_route.issued[0]}"
    assert resent.headers["Authorization"] == f"Bearer {kit_route.issued[1]}"


def test_a_second_401_raises_unauthorized(fake_biomesight: FakeBiomesight) -> None:
    fake_biomesight.route(KIT_PATH, 401, {"error": "IP not whitelisted"})
    with make_client(fake_biomesight) as client, pytest.raises(Unauthorized, match="IP not whitelisted"):
        client.get_kit_status(KIT)
    assert len(fake_biomesight.token_requests) == 2
    assert len(fake_biomesight.api_requests) == 2


@pytest.mark.parametrize("status", [400, 401, 403])
def test_rejected_credentials_raise_authentication_failed(
    fake_biomesight: FakeBiomesight, status: int
) -> None:
    fake_biomesight.token_status = status
    with make_client(fake_biomesight) as client, pytest.raises(AuthenticationFailed) as caught:
        client.get_kit_status(KIT)
    text = f"{caught.value} {caught.value!r}"
    assert CLIENT_ID in text
    assert CLIENT_SECRET not in text
    assert base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode() not in text
    assert fake_biomesight.api_requests == []


def test_auth_repr_hides_the_secret() -> None:
    auth = BiomesightAuth(BASE_URL, CLIENT_ID, CLIENT_SECRET)
    assert CLIENT_SECRET not in repr(auth)
    assert "very-secret-key" not in repr(GencoveAuth("very-secret-key"))


def test_gencove_auth_sends_the_api_key_header() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200)

    with httpx.Client(auth=GencoveAuth("k-123"), transport=httpx.MockTransport(handler)) as client:
        client.get("https://gencove.test/api/v2/samples/x")
    assert seen == ["Api-Key k-123"]


@pytest.mark.anyio
async def test_concurrent_requests_without_a_token_fetch_exactly_one(kit_route: FakeBiomesight) -> None:
    concurrent = 30
    async with make_async_client(kit_route) as client, anyio.create_task_group() as group:
        for _ in range(concurrent):
            group.start_soon(client.get_kit_status, KIT)
    assert len(kit_route.token_requests) == 1
    assert len(kit_route.api_requests) == concurrent


@pytest.mark.anyio
async def test_concurrent_requests_with_an_expired_token_refresh_exactly_once(
    kit_route: FakeBiomesight,
) -> None:
    clock = Clock()
    concurrent = 30
    async with make_async_client(kit_route, clock) as client:
        await client.get_kit_status(KIT)
        clock.now += kit_route.expires_in + 1
        async with anyio.create_task_group() as group:
            for _ in range(concurrent):
                group.start_soon(client.get_kit_status, KIT)
    assert len(kit_route.token_requests) == 2
    assert {request.headers["Authorization"] for request in kit_route.api_requests[1:]} == {
        f"Bearer {kit_route.issued[1]}"
    }


@pytest.mark.anyio
async def test_concurrent_401s_on_a_revoked_token_refresh_exactly_once(kit_route: FakeBiomesight) -> None:
    concurrent = 20
    async with make_async_client(kit_route) as client:
        await client.get_kit_status(KIT)
        kit_route.revoked.add(kit_route.issued[0])
        async with anyio.create_task_group() as group:
            for _ in range(concurrent):
                group.start_soon(client.get_kit_status, KIT)
    assert len(kit_route.token_requests) == 2
    resent = [
        request
        for request in kit_route.api_requests
        if kit_route.issued[1] in request.headers["Authorization"]
    ]
    assert len(resent) == concurrent


@pytest.mark.anyio
async def test_async_second_401_raises_unauthorized(fake_biomesight: FakeBiomesight) -> None:
    fake_biomesight.route(KIT_PATH, 401, {"error": "nope"})
    async with make_async_client(fake_biomesight) as client:
        with pytest.raises(Unauthorized):
            await client.get_kit_status(KIT)
    assert len(fake_biomesight.token_requests) == 2


def test_threads_sharing_a_sync_client_fetch_one_token(kit_route: FakeBiomesight) -> None:
    original = kit_route.handle

    def slow_token_endpoint(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth/token"):
            time.sleep(0.02)  # long enough for every thread to find no token
        return original(request)

    calls = 16
    with (
        BiomesightClient(
            BASE_URL,
            CLIENT_ID,
            CLIENT_SECRET,
            transport=httpx.MockTransport(slow_token_endpoint),
            backoff=NO_WAIT,
        ) as client,
        ThreadPoolExecutor(max_workers=8) as pool,
    ):
        statuses = list(pool.map(lambda _n: client.get_kit_status(KIT)["status"], range(calls)))
    assert statuses == ["Lab Processing"] * calls
    assert len(kit_route.token_requests) == 1


@pytest.mark.anyio
async def test_refused_credentials_are_asked_for_once_however_many_requests_wait(
    kit_route: FakeBiomesight,
) -> None:
    """Twenty requests waiting for a token get the one refusal: the credentials cannot change meanwhile."""
    kit_route.token_status = 401
    outcomes: list[BaseException] = []

    async def poll() -> None:
        try:
            await client.get_kit_status(KIT)
        except AuthenticationFailed as refused:
            outcomes.append(refused)

    async with make_async_client(kit_route) as client, anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(poll)
    assert len(outcomes) == 20
    assert {(error.partner, error.status) for error in outcomes} == {("Biomesight", 401)}
    assert len(kit_route.token_requests) == 1
    assert kit_route.api_requests == []
