"""Partner webhook pushes: status changes that became visible as the virtual clock moved, sent with retries.

Biomesight: one POST per order or kit status change of our account (never "Pending"), JSON
`{order_id | kit_id, status, description, date}`, with `Authorization: Bearer <BIOMESIGHT_WEBHOOK_TOKEN>`.
Gencove: for samples of our organisation reaching a final status, one POST per project whose body is a JSON
array of `analysis_complete_v2` events (at most 100 samples each), signed
`Gencove-Signature: t=<unix seconds>,v1=<hex HMAC-SHA512(secret, f"{t}.{body}")>`, re-signed on every attempt.
A failed delivery (connection error, timeout or non-2xx) is retried with exponential backoff, so receivers can
see the same event (same event_id) more than once. Delivery runs as tasks on the server's event loop.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import hmac
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import aiohttp
import orjson

from sandbox.accounts import (
    BIOMESIGHT_CLIENT_ID,
    BIOMESIGHT_WEBHOOK_TOKEN,
    GENCOVE_API_KEY,
    GENCOVE_WEBHOOK_SECRET,
)
from sandbox.model import GENCOVE_FINAL_STATUSES, Kit, Order, World
from sandbox.wire import biomesight_time, gencove_time

_EVENT_NAMESPACE = uuid.UUID("5a0f3c1e-8d2b-4e59-9f3a-6b7c8d9e0f12")
SAMPLES_PER_EVENT = 100


# --- what to push -----------------------------------------------------------------------------------------


def _biomesight_body(entity: Order | Kit, status: str, description: str, at: datetime) -> dict[str, Any]:
    key = "order_id" if isinstance(entity, Order) else "kit_id"
    ident = entity.order_id if isinstance(entity, Order) else entity.kit_id
    return {key: ident, "status": status, "description": description, "date": biomesight_time(at)}


@dataclass
class ChangeIndex:
    """Every pushable change of our accounts, sorted by time, so a clock window is two bisects."""

    key: tuple[int, ...] = ()
    biomesight_times: list[datetime] = field(default_factory=list)
    biomesight: list[dict[str, Any]] = field(default_factory=list)
    gencove_times: list[datetime] = field(default_factory=list)
    gencove: list[tuple[str, str, str, str, datetime]] = field(
        default_factory=list
    )  # project, id, client, status

    @classmethod
    def build(cls, world: World, key: tuple[int, ...]) -> ChangeIndex:
        """Index the whole world (done once per world generation)."""
        pushes: list[tuple[datetime, dict[str, Any]]] = []
        for order in world.orders.values():
            if order.account == BIOMESIGHT_CLIENT_ID:
                pushes.extend(
                    (c.at, _biomesight_body(order, c.status, c.description, c.at))
                    for c in order.timeline
                    if c.status != "Pending"
                )
        for kit in world.kits.values():
            if kit.account == BIOMESIGHT_CLIENT_ID:
                pushes.extend(
                    (c.at, _biomesight_body(kit, c.status, c.description, c.at)) for c in kit.timeline
                )
        pushes.sort(key=lambda push: push[0])
        finals = [
            (change.at, (sample.project_id, sample.sample_id, sample.client_id, change.status, change.at))
            for sample in world.samples.values()
            if sample.account == GENCOVE_API_KEY
            for change in sample.timeline
            if change.status in GENCOVE_FINAL_STATUSES
        ]
        finals.sort(key=lambda final: (final[0], final[1][1]))
        return cls(
            key,
            [at for at, _ in pushes],
            [body for _, body in pushes],
            [at for at, _ in finals],
            [final for _, final in finals],
        )

    def biomesight_between(self, old: datetime, new: datetime) -> list[dict[str, Any]]:
        """Biomesight bodies for changes in (old, new], oldest first."""
        lo = bisect.bisect_right(self.biomesight_times, old)
        hi = bisect.bisect_right(self.biomesight_times, new)
        return self.biomesight[lo:hi]

    def gencove_between(self, old: datetime, new: datetime) -> dict[str, list[dict[str, Any]]]:
        """Gencove event arrays per project for samples reaching a final status in (old, new]."""
        lo = bisect.bisect_right(self.gencove_times, old)
        hi = bisect.bisect_right(self.gencove_times, new)
        by_project: dict[str, list[tuple[str, str, str, str, datetime]]] = {}
        for final in self.gencove[lo:hi]:
            by_project.setdefault(final[0], []).append(final)
        return {project: gencove_events(project, finals) for project, finals in by_project.items()}


def gencove_events(
    project_id: str, finals: list[tuple[str, str, str, str, datetime]]
) -> list[dict[str, Any]]:
    """`analysis_complete_v2` events for one project, chunked; event ids are deterministic."""
    events = []
    for start in range(0, len(finals), SAMPLES_PER_EVENT):
        chunk = finals[start : start + SAMPLES_PER_EVENT]
        fingerprint = "|".join(f"{sid}:{status}:{at.isoformat()}" for _, sid, _, status, at in chunk)
        events.append(
            {
                "event_id": str(uuid.uuid5(_EVENT_NAMESPACE, f"{project_id}|{fingerprint}")),
                "event_type": "analysis_complete_v2",
                "timestamp": gencove_time(max(at for *_, at in chunk)),
                "payload": {
                    "project": {"id": project_id},
                    "samples": [
                        {"id": sid, "client_id": client, "last_status": {"status": status}}
                        for _, sid, client, status, _ in chunk
                    ],
                },
            }
        )
    return events


def gencove_signature(body: bytes, secret: str = GENCOVE_WEBHOOK_SECRET, at: int | None = None) -> str:
    """The `Gencove-Signature` header value for `body`, signed at unix time `at` (now by default)."""
    stamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha512).hexdigest()
    return f"t={stamp},v1={digest}"


# --- delivery ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One webhook POST to make (and remake until it succeeds or runs out of attempts)."""

    partner: str
    url: str
    body: bytes
    attempt: int = 1


@dataclass
class DeliveryStats:
    """What happened to pushes so far, for the admin endpoint and tests."""

    queued: int = 0
    delivered: int = 0
    failed_attempts: int = 0
    abandoned: int = 0
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=200))


class WebhookDispatcher:
    """Queues webhook pushes and delivers them from the server's event loop with bounded concurrency."""

    def __init__(
        self,
        biomesight_url: str | None = None,
        gencove_url: str | None = None,
        *,
        max_attempts: int = 5,
        retry_delay: float = 0.5,
        timeout: float = 10.0,
        concurrency: int = 4,
    ) -> None:
        self.biomesight_url = biomesight_url
        self.gencove_url = gencove_url
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.timeout = timeout
        self.concurrency = concurrency
        self.stats = DeliveryStats()
        # How bodies are spelled before they are sent (a variance profile's `respell`; None: as built).
        self.respell: Callable[[str, Any], Any] | None = None
        self._index = ChangeIndex()
        self._queue: asyncio.Queue[Delivery] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._retries: set[asyncio.TimerHandle] = set()
        self._pending = 0
        self._idle: asyncio.Event | None = None

    # lifecycle (called on the server's loop)
    async def start(self) -> None:
        """Create the queue, the HTTP session and the workers."""
        self._queue = asyncio.Queue()
        self._idle = asyncio.Event()
        self._idle.set()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        self._workers = [asyncio.create_task(self._work()) for _ in range(self.concurrency)]

    async def stop(self) -> None:
        """Cancel workers and pending retries; undelivered pushes are dropped."""
        for handle in self._retries:
            handle.cancel()
        self._retries.clear()
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        if self._session is not None:
            await self._session.close()

    async def wait_idle(self) -> None:
        """Until every queued push was delivered or abandoned (retries included)."""
        if self._idle is not None:
            await self._idle.wait()

    def config(self) -> dict[str, Any]:
        """Targets and delivery counters, for the admin endpoint."""
        return {
            "biomesight_url": self.biomesight_url,
            "gencove_url": self.gencove_url,
            "queued": self.stats.queued,
            "delivered": self.stats.delivered,
            "failed_attempts": self.stats.failed_attempts,
            "abandoned": self.stats.abandoned,
            "pending": self._pending,
            "recent": list(self.stats.recent),
        }

    # what to send
    def push_window(self, world: World, old: datetime, new: datetime, generation: int) -> int:
        """Queue every change that became visible in (old, new]; returns how many POSTs were queued."""
        if not (self.biomesight_url or self.gencove_url) or new <= old:
            return 0
        key = (generation, len(world.orders), len(world.kits), len(world.samples))
        if self._index.key != key:
            with world.lock:
                self._index = ChangeIndex.build(world, key)
        queued = 0
        if self.biomesight_url:
            for body in self._index.biomesight_between(old, new):
                self._enqueue(
                    Delivery("biomesight", self.biomesight_url, self._encode("webhook.biomesight", body))
                )
                queued += 1
        if self.gencove_url:
            for events in self._index.gencove_between(old, new).values():
                self._enqueue(Delivery("gencove", self.gencove_url, self._encode("webhook.gencove", events)))
                queued += 1
        return queued

    def push_entity(self, entity: Order | Kit, moment: datetime) -> int:
        """Queue the visible changes of an order or kit the API just created or registered."""
        if not self.biomesight_url or entity.account != BIOMESIGHT_CLIENT_ID:
            return 0
        bodies = [
            _biomesight_body(entity, c.status, c.description, c.at)
            for c in entity.timeline
            if c.at <= moment and c.status != "Pending"
        ]
        for body in bodies:
            self._enqueue(
                Delivery("biomesight", self.biomesight_url, self._encode("webhook.biomesight", body))
            )
        return len(bodies)

    def _encode(self, kind: str, body: Any) -> bytes:
        return orjson.dumps(body if self.respell is None else self.respell(kind, body))

    def _enqueue(self, delivery: Delivery) -> None:
        if self._queue is None or self._idle is None:
            raise RuntimeError("the webhook dispatcher is not started")
        self._pending += 1
        self._idle.clear()
        self.stats.queued += 1
        self._queue.put_nowait(delivery)

    def _settled(self) -> None:
        self._pending -= 1
        if self._pending == 0 and self._idle is not None:
            self._idle.set()

    # how it is sent
    async def _work(self) -> None:
        assert self._queue is not None  # noqa: S101 - started before any worker runs
        while True:
            delivery = await self._queue.get()
            try:
                ok, outcome = await self._post(delivery)
                self.stats.recent.append(
                    {"partner": delivery.partner, "attempt": delivery.attempt, "outcome": outcome}
                )
                if ok:
                    self.stats.delivered += 1
                    self._settled()
                else:
                    self.stats.failed_attempts += 1
                    self._retry_or_abandon(delivery)
            finally:
                self._queue.task_done()

    def _retry_or_abandon(self, delivery: Delivery) -> None:
        if delivery.attempt >= self.max_attempts:
            self.stats.abandoned += 1
            self._settled()
            return
        delay = self.retry_delay * 2 ** (delivery.attempt - 1)
        loop = asyncio.get_running_loop()
        again = replace(delivery, attempt=delivery.attempt + 1)

        def requeue() -> None:
            self._retries.discard(handle)
            if self._queue is not None:
                self._queue.put_nowait(again)

        handle = loop.call_later(delay, requeue)
        self._retries.add(handle)

    async def _post(self, delivery: Delivery) -> tuple[bool, str]:
        assert self._session is not None  # noqa: S101 - started before any worker runs
        headers = {"Content-Type": "application/json"}
        if delivery.partner == "biomesight":
            headers["Authorization"] = f"Bearer {BIOMESIGHT_WEBHOOK_TOKEN}"
        else:
            headers["Gencove-Signature"] = gencove_signature(delivery.body)
        try:
            async with self._session.post(delivery.url, data=delivery.body, headers=headers) as response:
                await response.read()
                return 200 <= response.status < 300, str(response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return False, type(exc).__name__
