"""Webhook pushes: what a clock advance makes each partner send, how it is authenticated, and retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

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

TIMEOUT = 10


class Receiver:
    """A webhook receiver on 127.0.0.1 that records every POST and can fail the first few."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = fail_first
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.received.append((dict(self.headers.items()), body))
                    failing = receiver.fail_first > 0
                    receiver.fail_first -= 1
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def biomesight_truth(world: World, old: Any, new: Any) -> list[dict[str, str]]:
    expected = []
    for order in world.orders.values():
        if order.account == BIOMESIGHT_CLIENT_ID:
            expected += [
                {"order_id": order.order_id, "status": c.status, "date": biomesight_time(c.at)}
                for c in order.timeline
                if old < c.at <= new and c.status != "Pending"
            ]
    for kit in world.kits.values():
        if kit.account == BIOMESIGHT_CLIENT_ID:
            expected += [
                {"kit_id": kit.kit_id, "status": c.status, "date": biomesight_time(c.at)}
                for c in kit.timeline
                if old < c.at <= new
            ]
    return expected


def gencove_truth(world: World, old: Any, new: Any) -> set[tuple[str, str]]:
    return {
        (sample.sample_id, change.status)
        for sample in world.samples.values()
        if sample.account == GENCOVE_API_KEY
        for change in sample.timeline
        if change.status in GENCOVE_FINAL_STATUSES and old < change.at <= new
    }


def _key(body: dict[str, Any]) -> tuple[str, str, str]:
    return (body.get("order_id") or body["kit_id"], body["status"], body["date"])


def test_biomesight_pushes_every_change_of_the_window(world: World, receiver: Receiver) -> None:
    with SandboxServer(world, biomesight_webhook_url=receiver.url) as server:
        old = world.clock.now()
        new = server.advance(timedelta(days=3))
        server.wait_webhooks()
    expected = biomesight_truth(world, old, new)
    assert expected, "the hand-built world has kit and order changes within three days"
    bodies = [json.loads(body) for _, body in receiver.received]
    assert sorted(map(_key, bodies)) == sorted(map(_key, expected))
    for headers, body in receiver.received:
        assert headers["Authorization"] == f"Bearer {BIOMESIGHT_WEBHOOK_TOKEN}"
        assert headers["Content-Type"] == "application/json"
        assert set(json.loads(body)) in (
            {"order_id", "status", "description", "date"},
            {"kit_id", "status", "description", "date"},
        )
    assert all(
        json.loads(body)["kit_id"] != "BS1-FOREIGN" for _, body in receiver.received if b"kit_id" in body
    )


def test_gencove_pushes_signed_event_arrays(world: World, receiver: Receiver) -> None:
    with SandboxServer(world, gencove_webhook_url=receiver.url) as server:
        old = world.clock.now()
        new = server.advance(timedelta(days=4))
        server.wait_webhooks()
    expected = gencove_truth(world, old, new)
    assert expected
    seen = set()
    for headers, body in receiver.received:
        stamp, _, signature = headers["Gencove-Signature"].partition(",")
        assert stamp.startswith("t=")
        assert signature.startswith("v1=")
        wanted = hmac.new(
            GENCOVE_WEBHOOK_SECRET.encode(), f"{stamp[2:]}.".encode() + body, hashlib.sha512
        ).hexdigest()
        assert hmac.compare_digest(signature[3:], wanted)
        events = json.loads(body)
        assert isinstance(events, list)
        for event in events:
            assert event["event_type"] == "analysis_complete_v2"
            assert event["timestamp"].endswith("Z")
            project = event["payload"]["project"]["id"]
            for sample in event["payload"]["samples"]:
                assert world.samples[sample["id"]].project_id == project
                assert sample["client_id"] == world.samples[sample["id"]].client_id
                seen.add((sample["id"], sample["last_status"]["status"]))
    assert seen == expected


def test_failed_deliveries_are_retried_with_the_same_event_ids(world: World) -> None:
    with Receiver(fail_first=2) as flaky:
        with SandboxServer(world, gencove_webhook_url=flaky.url, webhook_retry_delay=0.05) as server:
            server.advance(timedelta(days=4))
            server.wait_webhooks()
            stats = requests.get(f"{server.base_url}/_sandbox/webhooks", timeout=TIMEOUT).json()
        ids = [event["event_id"] for _, body in flaky.received for event in json.loads(body)]
    assert stats["failed_attempts"] == 2
    assert stats["abandoned"] == 0
    assert stats["delivered"] == stats["queued"]
    assert len(ids) > len(set(ids)), "retried deliveries repeat their event ids"


def test_deliveries_give_up_after_the_last_attempt(world: World) -> None:
    with (
        Receiver(fail_first=1000) as broken,
        SandboxServer(
            world, biomesight_webhook_url=broken.url, webhook_retry_delay=0.01, webhook_max_attempts=3
        ) as server,
    ):
        old = world.clock.now()
        new = server.advance(timedelta(days=3))
        server.wait_webhooks()
        stats = requests.get(f"{server.base_url}/_sandbox/webhooks", timeout=TIMEOUT).json()
    pushes = len(biomesight_truth(world, old, new))
    assert stats["abandoned"] == pushes
    assert len(broken.received) == 3 * pushes


def test_webhooks_configured_and_triggered_through_admin(world: World, receiver: Receiver) -> None:
    with SandboxServer(world) as server:
        admin = f"{server.base_url}/_sandbox"
        quiet = requests.post(f"{admin}/clock", json={"advance_hours": 1}, timeout=TIMEOUT).json()
        assert quiet["webhooks_queued"] == 0  # no target configured yet
        config = requests.post(
            f"{admin}/webhooks",
            json={"biomesight_url": receiver.url, "gencove_url": receiver.url},
            timeout=TIMEOUT,
        ).json()
        assert config["biomesight_url"] == receiver.url
        old = world.clock.now()
        moved = requests.post(f"{admin}/clock", json={"advance_days": 4}, timeout=TIMEOUT).json()
        server.wait_webhooks()
    new = world.clock.now()
    gencove_posts = sum(1 for headers, _ in receiver.received if "Gencove-Signature" in headers)
    assert moved["webhooks_queued"] == len(receiver.received)
    assert len(receiver.received) - gencove_posts == len(biomesight_truth(world, old, new))


def test_signature_helper_matches_the_documented_scheme() -> None:
    body = b'[{"event_id": "x"}]'
    header = gencove_signature(body, at=1_700_000_000)
    expected = hmac.new(GENCOVE_WEBHOOK_SECRET.encode(), b"1700000000." + body, hashlib.sha512).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
