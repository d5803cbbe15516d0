"""The webhook receiver: authentication, limits, shapes and landing-before-2xx, in-process and over real HTTP.

Requests are signed with the sandbox's own `gencove_signature` (the partner's side of the contract), so the
receiver is checked against what the simulated partner really sends, not against its own helper.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from extract.webhooks import LandedEvent, biomesight_event_id, create_webhook_app
from flows.receiver import webhook_server_in_thread
from sandbox.accounts import (
    BIOMESIGHT_CLIENT_ID,
    BIOMESIGHT_WEBHOOK_TOKEN,
    GENCOVE_API_KEY,
    GENCOVE_WEBHOOK_SECRET,
)
from sandbox.model import GENCOVE_FINAL_STATUSES, World
from sandbox.server import SandboxServer
from sandbox.webhooks import gencove_signature
from sandbox.wire import biomesight_time
from sandbox.world import generate_world
from warehouse.landing import WebhookLanding

TOKEN = "receiver-test-token"
SECRET = "receiver-test-secret"
NOW = 1_780_000_000.0
LIMIT = 4096

KIT_EVENT = {
    "kit_id": "BS1-ABC12",
    "status": "Sample Received",
    "description": "Lab received sample",
    "date": "2025-07-10T14:22:00Z",
}
ORDER_EVENT = {"order_id": "ORD-1", "status": "Dispatched", "description": "", "date": "2025-07-09T08:00:00Z"}


def gencove_event(event_id: str, *sample_ids: str, status: str = "succeeded") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": "analysis_complete_v2",
        "timestamp": "2025-07-10T14:22:00.123456Z",
        "payload": {
            "project": {"id": "proj-1"},
            "samples": [
                {"id": s, "client_id": f"C-{s}", "last_status": {"status": status}} for s in sample_ids
            ],
        },
    }


class Recorder:
    """The injected `land` callable for in-process tests: remembers events, refuses a repeated id."""

    def __init__(self) -> None:
        self.events: dict[tuple[str, str], LandedEvent] = {}
        self.fail_with: Exception | None = None

    def __call__(self, event: LandedEvent) -> bool:
        if self.fail_with is not None:
            raise self.fail_with
        key = (event.provider, event.event_id)
        if key in self.events:
            return False
        self.events[key] = event
        return True


def biomesight_headers(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def gencove_headers(body: bytes, *, secret: str = SECRET, at: float = NOW) -> dict[str, str]:
    return {"Gencove-Signature": gencove_signature(body, secret, int(at)), "Content-Type": "application/json"}


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def client(recorder: Recorder) -> AsyncIterator[httpx.AsyncClient]:
    app = create_webhook_app(
        biomesight_token=TOKEN, gencove_secret=SECRET, land=recorder, max_body_bytes=LIMIT, now=lambda: NOW
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://receiver"
    ) as client:
        yield client


# --- Biomesight --------------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (KIT_EVENT, "kit_status"),
        (ORDER_EVENT, "order_status"),
        ({**KIT_EVENT, "order_id": "ORD-1"}, "kit_status"),  # the partner doc's example names both
        # both ids with an order's status: the order's update, as the status events will say (one decision)
        ({**ORDER_EVENT, "kit_id": "BS1-ABC12"}, "order_status"),
    ],
)
async def test_biomesight_event_is_landed_before_200(
    client: httpx.AsyncClient, recorder: Recorder, body: dict[str, Any], kind: str
) -> None:
    response = await client.post("/webhooks/biomesight", json=body, headers=biomesight_headers())

    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "duplicates": 0}
    [landed] = recorder.events.values()
    assert (landed.provider, landed.kind, landed.body) == ("biomesight", kind, body)
    assert landed.received_at == datetime.fromtimestamp(NOW, UTC)
    assert landed.event_id == biomesight_event_id(body)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        f"Basic {TOKEN}",
        "Bearer wrong-token",
        f"Bearer {TOKEN}x",
        "Bearer tökén".encode(),  # non-ASCII bytes must not crash the comparison
    ],
)
async def test_biomesight_without_the_right_bearer_is_401(
    client: httpx.AsyncClient, recorder: Recorder, authorization: str | bytes | None
) -> None:
    headers: dict[str, str | bytes] = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = await client.post(
        "/webhooks/biomesight", content=json.dumps(KIT_EVENT).encode(), headers=headers
    )

    assert response.status_code == 401
    assert set(response.json()) == {"error"}
    assert TOKEN not in response.text
    assert recorder.events == {}


@pytest.mark.anyio
async def test_a_redelivered_change_is_a_duplicate_and_a_new_status_is_not(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    reworded = {**KIT_EVENT, "description": "reworded", "date": "2025-07-10T14:22:00+00:00"}
    next_status = {**KIT_EVENT, "status": "Lab Processing", "date": "2025-07-11T09:00:00Z"}

    answers = [
        (await client.post("/webhooks/biomesight", json=body, headers=biomesight_headers())).json()
        for body in (KIT_EVENT, KIT_EVENT, reworded, next_status)
    ]

    assert answers == [
        {"accepted": 1, "duplicates": 0},
        {"accepted": 0, "duplicates": 1},
        {"accepted": 0, "duplicates": 1},
        {"accepted": 1, "duplicates": 0},
    ]
    assert [e.body for e in recorder.events.values()] == [KIT_EVENT, next_status]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({k: v for k, v in KIT_EVENT.items() if k != "status"}, "status is missing"),
        ({k: v for k, v in KIT_EVENT.items() if k != "date"}, "date is missing"),
        ({**KIT_EVENT, "date": "last tuesday"}, "date is not an ISO 8601 timestamp"),
        ({**KIT_EVENT, "kit_id": 42}, "kit_id must be a non-empty string"),
        ({k: v for k, v in KIT_EVENT.items() if k != "kit_id"}, "order_id or kit_id is missing"),
        ({**ORDER_EVENT, "order_id": ""}, "order_id must be a non-empty string"),
        ([KIT_EVENT], "expected a JSON object"),
    ],
)
async def test_biomesight_wrong_shape_is_422_naming_the_field(
    client: httpx.AsyncClient, recorder: Recorder, body: Any, named: str
) -> None:
    response = await client.post("/webhooks/biomesight", json=body, headers=biomesight_headers())

    assert response.status_code == 422
    assert named in response.json()["error"]
    assert recorder.events == {}


# --- Gencove -----------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_gencove_events_are_landed_one_by_one(client: httpx.AsyncClient, recorder: Recorder) -> None:
    events = [gencove_event("ev-1", "s1", "s2"), gencove_event("ev-2", "s3", status="failed qc")]
    body = json.dumps(events).encode()

    response = await client.post("/webhooks/gencove", content=body, headers=gencove_headers(body))

    assert response.status_code == 200
    assert response.json() == {"accepted": 2, "duplicates": 0}
    assert {key: e.body for key, e in recorder.events.items()} == {
        ("gencove", e["event_id"]): e for e in events
    }
    assert {e.kind for e in recorder.events.values()} == {"gencove_event"}


@pytest.mark.anyio
async def test_gencove_redelivery_counts_duplicates_per_event(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    first = json.dumps([gencove_event("ev-1", "s1")]).encode()
    both = json.dumps([gencove_event("ev-1", "s1"), gencove_event("ev-2", "s2")]).encode()

    await client.post("/webhooks/gencove", content=first, headers=gencove_headers(first))
    response = await client.post("/webhooks/gencove", content=both, headers=gencove_headers(both))

    assert response.json() == {"accepted": 1, "duplicates": 1}
    assert sorted(event_id for _, event_id in recorder.events) == ["ev-1", "ev-2"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "signature",
    [
        "wrong secret",
        "tampered body",
        "stale",
        "from the future",
        "missing",
        "t=abc,v1=00ff",
        "v1=00ff",
        "t=1780000000",
        "t=1780000000,v1=not-hex",
        "garbage",
    ],
)
async def test_gencove_bad_signatures_are_401(
    client: httpx.AsyncClient, recorder: Recorder, signature: str
) -> None:
    body = json.dumps([gencove_event("ev-1", "s1")]).encode()
    sent = body
    headers = gencove_headers(body)
    tolerance = 300
    if signature == "wrong secret":
        headers = gencove_headers(body, secret="not-the-secret")
    elif signature == "tampered body":
        sent = body.replace(b"succeeded", b"failed")
    elif signature == "stale":
        headers = gencove_headers(body, at=NOW - tolerance - 1)
    elif signature == "from the future":
        headers = gencove_headers(body, at=NOW + tolerance + 1)
    elif signature == "missing":
        del headers["Gencove-Signature"]
    else:
        headers["Gencove-Signature"] = signature

    response = await client.post("/webhooks/gencove", content=sent, headers=headers)

    assert response.status_code == 401
    assert "error" in response.json()
    assert SECRET not in response.text
    assert recorder.events == {}


@pytest.mark.anyio
async def test_gencove_signature_within_tolerance_is_accepted(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    body = json.dumps([gencove_event("ev-1", "s1")]).encode()
    response = await client.post(
        "/webhooks/gencove", content=body, headers=gencove_headers(body, at=NOW - 299)
    )
    assert response.status_code == 200
    assert list(recorder.events) == [("gencove", "ev-1")]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("events", "named"),
    [
        ({"event_id": "ev-1"}, "expected a JSON array of events"),
        ([gencove_event("ev-1", "s1"), {**gencove_event("x", "s2"), "event_id": None}], "events[1].event_id"),
        ([{**gencove_event("ev-1", "s1"), "event_id": "../../etc"}], "events[0].event_id"),
        ([{**gencove_event("ev-1", "s1"), "payload": {"samples": []}}], "events[0].payload.project"),
        ([{**gencove_event("ev-1"), "payload": {"project": {"id": "p"}}}], "events[0].payload.samples"),
        (
            [{**gencove_event("ev-1"), "payload": {"project": {"id": "p"}, "samples": [{"id": "s"}]}}],
            "events[0].payload.samples[0].last_status",
        ),
        ([{k: v for k, v in gencove_event("ev-1", "s1").items() if k != "timestamp"}], "events[0].timestamp"),
    ],
)
async def test_gencove_wrong_shape_is_422_and_lands_nothing(
    client: httpx.AsyncClient, recorder: Recorder, events: Any, named: str
) -> None:
    body = json.dumps(events).encode()
    response = await client.post("/webhooks/gencove", content=body, headers=gencove_headers(body))

    assert response.status_code == 422
    assert named in response.json()["error"]
    assert recorder.events == {}


# --- limits, content and failures ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_oversize_declared_body_is_413(client: httpx.AsyncClient, recorder: Recorder) -> None:
    body = {**KIT_EVENT, "description": "x" * LIMIT}
    response = await client.post("/webhooks/biomesight", json=body, headers=biomesight_headers())
    assert response.status_code == 413
    assert recorder.events == {}


@pytest.mark.anyio
@pytest.mark.parametrize("route", ["biomesight", "gencove"])
async def test_oversize_streamed_body_is_413_without_reading_the_rest(
    client: httpx.AsyncClient, recorder: Recorder, route: str
) -> None:
    chunk = b" " * 1024
    chunks_total = 4 * LIMIT // len(chunk)
    sent: list[int] = []

    async def stream() -> AsyncIterator[bytes]:
        for number in range(chunks_total):
            sent.append(number)
            yield chunk

    headers = biomesight_headers() if route == "biomesight" else gencove_headers(b"")
    response = await client.post(f"/webhooks/{route}", content=stream(), headers=headers)

    assert response.status_code == 413
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert len(sent) * len(chunk) <= LIMIT + len(chunk) < chunks_total * len(chunk)
    assert recorder.events == {}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b'{"kit_id": "K", "status": NaN}', "application/json", 400),
        (b"\xff\xfe\x00garbage", "application/json", 400),
        (json.dumps(KIT_EVENT).encode(), "text/plain", 415),
        (json.dumps(KIT_EVENT).encode(), None, 415),
        (json.dumps(KIT_EVENT).encode(), "application/json; charset=utf-8", 200),
    ],
)
async def test_content_type_and_json_are_checked(
    client: httpx.AsyncClient, recorder: Recorder, content: bytes, content_type: str | None, status: int
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await client.post("/webhooks/biomesight", content=content, headers=headers)

    assert response.status_code == status
    assert len(recorder.events) == (1 if status == 200 else 0)


@pytest.mark.anyio
async def test_landing_failure_is_503_and_the_retry_lands(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    recorder.fail_with = OSError(28, "No space left on device")
    body = json.dumps([gencove_event("ev-1", "s1")]).encode()

    failed = await client.post("/webhooks/gencove", content=body, headers=gencove_headers(body))
    recorder.fail_with = None
    retried = await client.post("/webhooks/gencove", content=body, headers=gencove_headers(body))

    assert failed.status_code == 503
    assert "Retry-After" in failed.headers
    assert "error" in failed.json()
    assert retried.json() == {"accepted": 1, "duplicates": 0}


@pytest.mark.anyio
async def test_health_and_unknown_routes_answer_json(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    wrong_method = await client.get("/webhooks/gencove")
    assert wrong_method.status_code == 405
    assert "error" in wrong_method.json()
    assert (await client.post("/webhooks/other")).status_code == 404


def test_the_app_refuses_empty_secrets() -> None:
    with pytest.raises(ValueError, match="token"):
        create_webhook_app(biomesight_token="", gencove_secret=SECRET, land=Recorder())
    with pytest.raises(ValueError, match="secret"):
        create_webhook_app(biomesight_token=TOKEN, gencove_secret="", land=Recorder())


# --- over real HTTP, into the real landing store ------------------------------------------------------------


@pytest.fixture
def landing(tmp_path: Path) -> WebhookLanding:
    return WebhookLanding(tmp_path)


@pytest.fixture
def receiver_url(landing: WebhookLanding) -> Iterator[str]:
    app = create_webhook_app(
        biomesight_token=TOKEN, gencove_secret=SECRET, land=landing.land, max_body_bytes=LIMIT
    )
    with webhook_server_in_thread(app) as url:
        yield url


def landed_files(landing: WebhookLanding, provider: str) -> list[Path]:
    return sorted((landing.base / provider).glob("????-??-??/*.json"))


def test_real_http_lands_files_and_rejects(receiver_url: str, landing: WebhookLanding) -> None:
    events = [gencove_event("ev-1", "s1"), gencove_event("ev-2", "s2")]
    body = json.dumps(events).encode()
    with httpx.Client(base_url=receiver_url, timeout=10) as http:
        ok = http.post("/webhooks/biomesight", json=KIT_EVENT, headers=biomesight_headers())
        again = http.post("/webhooks/biomesight", json=KIT_EVENT, headers=biomesight_headers())
        signed = http.post("/webhooks/gencove", content=body, headers=gencove_headers(body, at=time.time()))
        unauthorised = http.post("/webhooks/biomesight", json=ORDER_EVENT, headers=biomesight_headers("nope"))
        streamed = http.post(
            "/webhooks/biomesight",
            content=iter([b" " * 1024] * (2 * LIMIT // 1024)),
            headers=biomesight_headers(),
        )
        declared = http.post("/webhooks/biomesight", content=b" " * (LIMIT + 1), headers=biomesight_headers())

    assert (ok.json(), again.json()) == ({"accepted": 1, "duplicates": 0}, {"accepted": 0, "duplicates": 1})
    assert signed.json() == {"accepted": 2, "duplicates": 0}
    assert (unauthorised.status_code, streamed.status_code, declared.status_code) == (401, 413, 413)
    [kit_file] = landed_files(landing, "biomesight")
    assert kit_file.name == f"{biomesight_event_id(KIT_EVENT)}.json"
    assert json.loads(kit_file.read_text())["body"] == KIT_EVENT
    assert {
        json.loads(p.read_text())["event_id"]: json.loads(p.read_text())["body"]
        for p in landed_files(landing, "gencove")
    } == {e["event_id"]: e for e in events}


def test_a_body_trickling_past_the_timeout_is_408_and_lands_nothing(landing: WebhookLanding) -> None:
    app = create_webhook_app(
        biomesight_token=TOKEN, gencove_secret=SECRET, land=landing.land, body_timeout_seconds=0.5
    )
    body = json.dumps(KIT_EVENT).encode()
    with webhook_server_in_thread(app) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            head = (
                f"POST /webhooks/biomesight HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            connection.sendall(head.encode() + body[:5])  # then nothing: the rest never comes
            started = time.monotonic()
            answer = connection.recv(4096)
            waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408")
    assert 0.4 < waited < 5
    assert landed_files(landing, "biomesight") == []


def test_concurrent_duplicate_deliveries_land_once(receiver_url: str, landing: WebhookLanding) -> None:
    body = json.dumps([gencove_event("ev-dup", "s1")]).encode()
    senders = 8
    barrier = threading.Barrier(senders)
    answers: list[dict[str, int]] = []
    lock = threading.Lock()

    def deliver() -> None:
        with httpx.Client(base_url=receiver_url, timeout=10) as http:
            barrier.wait()
            answer = http.post(
                "/webhooks/gencove", content=body, headers=gencove_headers(body, at=time.time())
            )
        with lock:
            answers.append(answer.json())

    threads = [threading.Thread(target=deliver) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(a["accepted"] for a in answers) == 1
    assert sum(a["duplicates"] for a in answers) == senders - 1
    assert len(landed_files(landing, "gencove")) == 1


def test_a_store_that_cannot_write_gets_503_and_claims_nothing(
    receiver_url: str, landing: WebhookLanding, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = os.fsync

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    with httpx.Client(base_url=receiver_url, timeout=10) as http:
        monkeypatch.setattr(os, "fsync", disk_full)
        failed = http.post("/webhooks/biomesight", json=KIT_EVENT, headers=biomesight_headers())
        monkeypatch.setattr(os, "fsync", real_fsync)
        claimed_after_failure = landing.is_landed("biomesight", biomesight_event_id(KIT_EVENT))
        retried = http.post("/webhooks/biomesight", json=KIT_EVENT, headers=biomesight_headers())

    assert failed.status_code == 503
    assert not claimed_after_failure
    assert retried.json() == {"accepted": 1, "duplicates": 0}
    assert len(landed_files(landing, "biomesight")) == 1


# --- the real sandbox pushing into the receiver -------------------------------------------------------------


def expected_pushes(
    world: World, old: datetime, new: datetime
) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]]]:
    """What the partners made visible in (old, new], from the world's timelines (not from the dispatcher)."""
    biomesight = {
        ("order_id", order.order_id, change.status, biomesight_time(change.at))
        for order in world.orders.values()
        if order.account == BIOMESIGHT_CLIENT_ID
        for change in order.timeline
        if old < change.at <= new and change.status != "Pending"
    } | {
        ("kit_id", kit.kit_id, change.status, biomesight_time(change.at))
        for kit in world.kits.values()
        if kit.account == BIOMESIGHT_CLIENT_ID
        for change in kit.timeline
        if old < change.at <= new
    }
    gencove = {
        (sample.project_id, sample.sample_id, change.status)
        for sample in world.samples.values()
        if sample.account == GENCOVE_API_KEY
        for change in sample.timeline
        if old < change.at <= new and change.status in GENCOVE_FINAL_STATUSES
    }
    return biomesight, gencove


def test_sandbox_pushes_land_exactly_the_changes_of_the_window(tmp_path: Path) -> None:
    landing = WebhookLanding(tmp_path)
    app = create_webhook_app(
        biomesight_token=BIOMESIGHT_WEBHOOK_TOKEN, gencove_secret=GENCOVE_WEBHOOK_SECRET, land=landing.land
    )
    world = generate_world(seed=11, kits=60)
    with webhook_server_in_thread(app) as url, SandboxServer(world, webhook_retry_delay=0.05) as sandbox:
        sandbox.set_webhook_urls(biomesight=f"{url}/webhooks/biomesight", gencove=f"{url}/webhooks/gencove")
        old = sandbox.clock.now()
        new = old
        for _ in range(5):
            new = sandbox.advance(timedelta(days=1))
        sandbox.wait_webhooks()
        stats = sandbox.state.webhooks.stats if sandbox.state.webhooks else None

    expected_biomesight, expected_gencove = expected_pushes(world, old, new)
    landed_biomesight = [r.body for r in landing.pending("biomesight")]
    landed_gencove = list(landing.pending("gencove"))

    assert expected_biomesight  # the window has to exercise both partners
    assert expected_gencove
    assert stats is not None
    assert (stats.abandoned, stats.failed_attempts) == (0, 0)
    got_biomesight = {
        (key, body[key], body["status"], body["date"])
        for body in landed_biomesight
        for key in ("order_id", "kit_id")
        if key in body
    }
    assert got_biomesight == expected_biomesight
    assert len(landed_biomesight) == len(expected_biomesight)  # one file per distinct change
    got_gencove = [
        (r.body["payload"]["project"]["id"], sample["id"], sample["last_status"]["status"])
        for r in landed_gencove
        for sample in r.body["payload"]["samples"]
    ]
    assert set(got_gencove) == expected_gencove
    assert len(got_gencove) == len(expected_gencove)
