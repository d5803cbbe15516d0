"""The webhook receiver as production wires it (flows.receiver: settings -> receiver -> durable landing), over
real loopback HTTP, under hostile and heavy traffic.

Requests are signed with the sandbox's `gencove_signature` (the partner's side of the contract). Every attack
must get a 4xx and land nothing; every valid event must land exactly once, however often and however
concurrently it is delivered. tests/extract/test_webhooks.py checks the same rules in-process one by one;
here they run together against the real store, and in bulk.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from extract.webhooks import biomesight_event_id
from flows.receiver import webhook_app, webhook_server_in_thread
from flows.settings import Settings
from sandbox.webhooks import gencove_signature
from tests.reliability.figures import FIGURES
from warehouse.landing import WebhookLanding

TOKEN = "reliability-bearer-Q8zK3"
SECRET = "reliability-signing-secret-7Hw2"
LIMIT = 8192
TOLERANCE = 300


@dataclass
class Receiver:
    url: str
    landing: WebhookLanding

    def landed(self, provider: str) -> list[str]:
        """Event ids landed for a provider (pending or consumed), from the store's claim index."""
        ids = self.landing.base / provider / "ids"
        return sorted(p.name for p in ids.iterdir()) if ids.is_dir() else []

    def files(self) -> list[Path]:
        """Every event file the store holds (dated or consumed), whatever its name."""
        return sorted(p for p in self.landing.base.rglob("*.json") if p.is_file())


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    settings = Settings(
        data_dir=tmp_path / "data",
        biomesight_webhook_token=SecretStr(TOKEN),
        gencove_webhook_secret=SecretStr(SECRET),
        webhook_max_body_bytes=LIMIT,
        webhook_signature_tolerance_seconds=TOLERANCE,
    )
    with webhook_server_in_thread(webhook_app(settings)) as url:
        yield Receiver(url, WebhookLanding(settings.data_dir.absolute()))


def kit_event(n: int, status: str = "Sample Received") -> dict[str, Any]:
    return {
        "kit_id": f"BS1-K{n:05d}",
        "status": status,
        "description": "",
        "date": f"2026-02-01T10:{n % 60:02d}:00Z",
    }


def gencove_events(first: int, count: int = 1) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"ev-{n:05d}",
            "event_type": "analysis_complete_v2",
            "timestamp": "2026-02-01T10:00:00.000000Z",
            "payload": {
                "project": {"id": "proj-1"},
                "samples": [{"id": f"s-{n:05d}", "client_id": "", "last_status": {"status": "succeeded"}}],
            },
        }
        for n in range(first, first + count)
    ]


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def signed(body: bytes, *, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    stamp = int(time.time() if at is None else at)
    return {"Gencove-Signature": gencove_signature(body, secret, stamp), "Content-Type": "application/json"}


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


@dataclass(frozen=True)
class Attack:
    """One hostile request: where, what body, which headers, and the status the receiver must answer."""

    name: str
    route: str
    body: Callable[[], bytes]
    headers: Callable[[bytes], dict[str, str]]
    status: int


def bearer_h(_: bytes) -> dict[str, str]:
    return bearer()


GOOD_KIT = _dumps(kit_event(1))
GOOD_GENCOVE = _dumps(gencove_events(1))
DEEP = b"[" * 4000 + b"]" * 4000  # within the size limit; nested past json's recursion limit

ATTACKS = [
    # Biomesight: the bearer token
    Attack(
        "no Authorization",
        "biomesight",
        lambda: GOOD_KIT,
        lambda b: {"Content-Type": "application/json"},
        401,
    ),
    Attack(
        "empty bearer",
        "biomesight",
        lambda: GOOD_KIT,
        lambda b: {**bearer(), "Authorization": "Bearer"},
        401,
    ),
    Attack("wrong token", "biomesight", lambda: GOOD_KIT, lambda b: bearer("not-the-token"), 401),
    Attack("token prefix", "biomesight", lambda: GOOD_KIT, lambda b: bearer(TOKEN[:-1]), 401),
    Attack("token plus a char", "biomesight", lambda: GOOD_KIT, lambda b: bearer(TOKEN + "x"), 401),
    Attack(
        "token as Basic",
        "biomesight",
        lambda: GOOD_KIT,
        lambda b: {**bearer(), "Authorization": f"Basic {TOKEN}"},
        401,
    ),
    Attack("Gencove signature instead", "biomesight", lambda: GOOD_KIT, signed, 401),
    # Biomesight: the body
    Attack("invalid JSON", "biomesight", lambda: b"{not json", bearer_h, 400),
    Attack("NaN in JSON", "biomesight", lambda: b'{"kit_id": "K", "status": NaN}', bearer_h, 400),
    Attack("not UTF-8", "biomesight", lambda: b"\xff\xfe\x00\x01", bearer_h, 400),
    Attack("nested past the recursion limit", "biomesight", lambda: DEEP, bearer_h, 400),
    Attack("empty body", "biomesight", lambda: b"", bearer_h, 400),
    Attack(
        "text/plain",
        "biomesight",
        lambda: GOOD_KIT,
        lambda b: {**bearer(), "Content-Type": "text/plain"},
        415,
    ),
    Attack(
        "form encoded",
        "biomesight",
        lambda: b"kit_id=K&status=x",
        lambda b: {**bearer(), "Content-Type": "application/x-www-form-urlencoded"},
        415,
    ),
    Attack(
        "oversize body",
        "biomesight",
        lambda: _dumps({**kit_event(2), "description": "x" * LIMIT}),
        bearer_h,
        413,
    ),
    Attack("a JSON array", "biomesight", lambda: _dumps([kit_event(3)]), bearer_h, 422),
    Attack(
        "no status",
        "biomesight",
        lambda: _dumps({"kit_id": "K", "date": "2026-01-01T00:00:00Z"}),
        bearer_h,
        422,
    ),
    Attack(
        "date is prose", "biomesight", lambda: _dumps({**kit_event(4), "date": "last tuesday"}), bearer_h, 422
    ),
    Attack("kit id is a number", "biomesight", lambda: _dumps({**kit_event(5), "kit_id": 5}), bearer_h, 422),
    # Gencove: the signature
    Attack(
        "no signature", "gencove", lambda: GOOD_GENCOVE, lambda b: {"Content-Type": "application/json"}, 401
    ),
    Attack("wrong secret", "gencove", lambda: GOOD_GENCOVE, lambda b: signed(b, secret="guess"), 401),
    Attack(
        "stale signature",
        "gencove",
        lambda: GOOD_GENCOVE,
        lambda b: signed(b, at=time.time() - TOLERANCE - 5),
        401,
    ),
    Attack(
        "signed in the future",
        "gencove",
        lambda: GOOD_GENCOVE,
        lambda b: signed(b, at=time.time() + TOLERANCE + 5),
        401,
    ),
    Attack(
        "signature of another body",
        "gencove",
        lambda: _dumps(gencove_events(2)),
        lambda b: signed(GOOD_GENCOVE),
        401,
    ),
    Attack(
        "v1 is not hex",
        "gencove",
        lambda: GOOD_GENCOVE,
        lambda b: {**signed(b), "Gencove-Signature": f"t={int(time.time())},v1=zz"},
        401,
    ),
    Attack(
        "no timestamp",
        "gencove",
        lambda: GOOD_GENCOVE,
        lambda b: {**signed(b), "Gencove-Signature": signed(b)["Gencove-Signature"].split(",", 1)[1]},
        401,
    ),
    Attack("bearer token instead", "gencove", lambda: GOOD_GENCOVE, bearer_h, 401),
    # Gencove: a validly signed body that is still wrong
    Attack("signed invalid JSON", "gencove", lambda: b"[{", signed, 400),
    Attack(
        "signed, text/plain",
        "gencove",
        lambda: GOOD_GENCOVE,
        lambda b: {**signed(b), "Content-Type": "text/plain"},
        415,
    ),
    Attack("signed object, not array", "gencove", lambda: _dumps(gencove_events(3)[0]), signed, 422),
    Attack(
        "event id walks the tree",
        "gencove",
        lambda: _dumps([{**gencove_events(4)[0], "event_id": "../../etc/passwd"}]),
        signed,
        422,
    ),
    Attack(
        "one bad event spoils the batch",
        "gencove",
        lambda: _dumps([*gencove_events(5), {**gencove_events(6)[0], "payload": {}}]),
        signed,
        422,
    ),
    Attack("signed oversize", "gencove", lambda: _dumps(gencove_events(10, 60)), signed, 413),
]


def _post(client: httpx.Client, attack: Attack) -> httpx.Response:
    body = attack.body()
    return client.post(f"/webhooks/{attack.route}", content=body, headers=attack.headers(body))


def test_every_attack_is_refused_and_lands_nothing(receiver: Receiver) -> None:
    with httpx.Client(base_url=receiver.url, timeout=10) as client:
        answers = {attack.name: _post(client, attack) for attack in ATTACKS}

    wrong = {
        name: (r.status_code, r.text[:80])
        for name, r in answers.items()
        if r.status_code != attack_status(name)
    }
    assert not wrong
    for response in answers.values():
        assert set(response.json()) == {"error"}
        assert TOKEN not in response.text
        assert SECRET not in response.text
    assert receiver.files() == []
    FIGURES.add("bad_inputs", len(ATTACKS), what="webhook attacks")


def attack_status(name: str) -> int:
    return next(a.status for a in ATTACKS if a.name == name)


def test_a_replayed_delivery_lands_once_and_a_stale_replay_is_refused(receiver: Receiver) -> None:
    body = _dumps(gencove_events(100, 2))
    headers = signed(body)
    with httpx.Client(base_url=receiver.url, timeout=10) as client:
        first = client.post("/webhooks/gencove", content=body, headers=headers)
        replayed = client.post("/webhooks/gencove", content=body, headers=headers)  # same signature again
        stale = client.post(
            "/webhooks/gencove", content=body, headers=signed(body, at=time.time() - 2 * TOLERANCE)
        )
        kit = _dumps(kit_event(100))
        bm = [client.post("/webhooks/biomesight", content=kit, headers=bearer()).json() for _ in range(3)]

    assert first.json() == {"accepted": 2, "duplicates": 0}
    assert replayed.json() == {"accepted": 0, "duplicates": 2}
    assert stale.status_code == 401
    assert bm == [{"accepted": 1, "duplicates": 0}] + [{"accepted": 0, "duplicates": 1}] * 2
    assert receiver.landed("gencove") == ["ev-00100", "ev-00101"]
    assert receiver.landed("biomesight") == [biomesight_event_id(kit_event(100))]
    FIGURES.add("bad_inputs", 3, what="webhook replays")
    FIGURES.add("events_delivered", 2 + 2 + 3, what="replays")


def _raw_request(url: str, route: str, body: bytes, *, pause: float, stop_after: int | None = None) -> bytes:
    """Send a Biomesight push byte by byte with a pause between bytes (a slow client); optionally hang up
    after `stop_after` bytes. Returns the raw answer ("" if we hung up)."""
    host, port = url.removeprefix("http://").split(":")
    head = (
        f"POST /webhooks/{route} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(head)
        for index in range(len(body)):
            if stop_after is not None and index >= stop_after:
                return b""
            connection.sendall(body[index : index + 1])
            time.sleep(pause)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_slow_client_does_not_hold_up_others_and_a_hang_up_lands_nothing(receiver: Receiver) -> None:
    slow_body = _dumps(kit_event(200))
    answers: dict[str, bytes] = {}
    slow = threading.Thread(
        target=lambda: answers.update(slow=_raw_request(receiver.url, "biomesight", slow_body, pause=0.02))
    )
    quitter_body = _dumps(kit_event(201))
    quitter = threading.Thread(
        target=lambda: answers.update(
            quitter=_raw_request(receiver.url, "biomesight", quitter_body, pause=0.01, stop_after=20)
        )
    )
    slow.start()
    quitter.start()
    time.sleep(0.1)
    timings = []
    with httpx.Client(base_url=receiver.url, timeout=10) as client:
        for n in range(202, 222):
            started = time.perf_counter()
            response = client.post("/webhooks/biomesight", content=_dumps(kit_event(n)), headers=bearer())
            timings.append(time.perf_counter() - started)
            assert response.json() == {"accepted": 1, "duplicates": 0}
    assert slow.is_alive(), "the slow client should still be sending while the others were served"
    slow.join(timeout=30)
    quitter.join(timeout=30)

    assert max(timings) < 1.0
    assert answers["slow"].startswith(b"HTTP/1.1 200")
    landed = set(receiver.landed("biomesight"))
    assert biomesight_event_id(kit_event(200)) in landed
    assert biomesight_event_id(kit_event(201)) not in landed
    assert len(landed) == 21
    FIGURES.add("bad_inputs", 2, what="webhook slow clients")
    FIGURES.add("events_delivered", 21, what="beside slow clients")


def test_hundreds_of_concurrent_deliveries_land_each_valid_event_exactly_once(receiver: Receiver) -> None:
    """A bounded load test: 300 distinct events, each delivered twice, interleaved with 100 forged ones, at up
    to 64 requests in flight."""
    kits = [kit_event(n) for n in range(150)]
    batches = [gencove_events(1000 + 3 * n, 3) for n in range(50)]  # 150 Gencove events in 50 pushes
    deliveries: list[tuple[str, bytes, bool]] = []
    for body in kits:
        deliveries += [("biomesight", _dumps(body), True)] * 2
    for events in batches:
        deliveries += [("gencove", _dumps(events), True)] * 2
    for n in range(50):
        deliveries.append(("biomesight", _dumps(kit_event(5000 + n)), False))  # wrong token
        deliveries.append(("gencove", _dumps(gencove_events(9000 + n)), False))  # wrong secret
    order = list(range(len(deliveries)))
    random.Random(5).shuffle(order)

    async def deliver_all() -> list[tuple[int, dict[str, Any]]]:
        gate = asyncio.Semaphore(64)
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=receiver.url, timeout=30, limits=limits) as client:

            async def deliver(index: int) -> tuple[int, dict[str, Any]]:
                route, body, valid = deliveries[index]
                if route == "biomesight":
                    headers = bearer() if valid else bearer("forged")
                else:
                    headers = signed(body) if valid else signed(body, secret="forged")
                async with gate:
                    for attempt in range(3):  # as a partner does: a delivery cut off is delivered again
                        try:
                            response = await client.post(f"/webhooks/{route}", content=body, headers=headers)
                            break
                        except httpx.TransportError:
                            if attempt == 2:
                                raise
                            FIGURES.add("events_delivered", what="redelivered after a dropped connection")
                return response.status_code, response.json()

            return await asyncio.gather(*(deliver(i) for i in order))

    answers = asyncio.run(deliver_all())

    by_index = dict(zip(order, answers, strict=True))
    valid = [by_index[i] for i, d in enumerate(deliveries) if d[2]]
    forged = [by_index[i] for i, d in enumerate(deliveries) if not d[2]]
    assert {status for status, _ in valid} == {200}
    assert {status for status, _ in forged} == {401}
    assert sum(body["accepted"] for _, body in valid) == 300
    assert sum(body["duplicates"] for _, body in valid) == 300
    assert receiver.landed("biomesight") == sorted(biomesight_event_id(k) for k in kits)
    assert receiver.landed("gencove") == sorted(e["event_id"] for events in batches for e in events)
    pending = [r.event_id for p in ("biomesight", "gencove") for r in receiver.landing.pending(p)]
    assert len(pending) == len(set(pending)) == 300
    FIGURES.add("events_delivered", 600, what="load test (300 events, each twice)")
    FIGURES.add("bad_inputs", 100, what="forged deliveries in the load test")
