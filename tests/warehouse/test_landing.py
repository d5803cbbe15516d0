"""The webhook landing store: one durable file per event, dedupe on id, at-least-once consumption."""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from warehouse.landing import LandedEventRecord, WebhookLanding

T0 = datetime(2026, 11, 3, 23, 59, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Event:
    """An event of the shape `land` takes (extract's LandedEvent has the same attributes)."""

    provider: str
    event_id: str
    received_at: datetime
    kind: str = "gencove_event"
    body: dict[str, Any] = field(default_factory=dict)


def gencove(event_id: str, received_at: datetime = T0, status: str = "succeeded") -> Event:
    body = {
        "event_id": event_id,
        "event_type": "analysis_complete_v2",
        "timestamp": "2026-11-03T23:59:00.000000Z",
        "payload": {
            "project": {"id": "p1"},
            "samples": [{"id": "s-" + event_id, "last_status": {"status": status}}],
        },
    }
    return Event("gencove", event_id, received_at, body=body)


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


def test_land_writes_one_owner_only_file_per_event(tmp_path: Path) -> None:
    landing = WebhookLanding(tmp_path)
    event = gencove("e1")

    assert landing.land(event) is True

    path = tmp_path / "landing" / "webhooks" / "gencove" / T0.date().isoformat() / "e1.json"
    document = json.loads(path.read_text())
    assert document["body"] == event.body
    assert document["event_id"] == "e1"
    assert document["kind"] == event.kind
    assert datetime.fromisoformat(document["received_at"]) == T0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in [p for p in (tmp_path / "landing").rglob("*") if p.is_dir()]:
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert landing.is_landed("gencove", "e1")
    assert not list((tmp_path / "landing" / "webhooks" / "gencove" / "tmp").iterdir())


def test_same_id_lands_once_even_on_another_day(tmp_path: Path) -> None:
    landing = WebhookLanding(tmp_path)
    first = gencove("e1")
    again = gencove("e1", received_at=T0 + timedelta(days=2), status="failed")

    assert landing.land(first) is True
    assert landing.land(again) is False
    assert (
        landing.land(Event("biomesight", "e1", T0, "kit_status", {"kit_id": "K"})) is True
    )  # other provider

    records = list(landing.pending("gencove"))
    assert [(r.event_id, r.body) for r in records] == [("e1", first.body)]
    assert not (tmp_path / "landing" / "webhooks" / "gencove" / again.received_at.date().isoformat()).exists()


def test_concurrent_duplicate_deliveries_land_exactly_once(tmp_path: Path) -> None:
    landing = WebhookLanding(tmp_path)
    threads_count = 16
    barrier = threading.Barrier(threads_count)
    results: list[bool] = []
    lock = threading.Lock()

    def deliver(offset: int) -> None:
        event = gencove("same", received_at=T0 + timedelta(seconds=offset * 20))  # straddles midnight
        barrier.wait()
        outcome = landing.land(event)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False] * (threads_count - 1) + [True]
    dated = [p for p in files_under(tmp_path / "landing" / "webhooks" / "gencove") if p.suffix == ".json"]
    assert len(dated) == 1
    assert not list((tmp_path / "landing" / "webhooks" / "gencove" / "tmp").iterdir())


@pytest.mark.parametrize(
    "event",
    [
        Event("gencove", "../escape", T0),
        Event("gencove", "", T0),
        Event("../x", "e1", T0),
        Event("gencove", "e1", T0.replace(tzinfo=None)),
        Event("gencove", "e1", T0, body={"nan": float("nan")}),
    ],
)
def test_unusable_events_are_refused_and_leave_nothing(tmp_path: Path, event: Event) -> None:
    landing = WebhookLanding(tmp_path)
    with pytest.raises(ValueError, match=r"\S"):
        landing.land(event)
    assert files_under(tmp_path) == []


def test_a_failed_write_claims_nothing_so_a_retry_lands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = WebhookLanding(tmp_path)
    real_fsync = os.fsync

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        landing.land(gencove("e1"))
    monkeypatch.setattr(os, "fsync", real_fsync)

    assert not landing.is_landed("gencove", "e1")
    assert files_under(tmp_path) == []
    assert landing.land(gencove("e1")) is True
    assert [r.event_id for r in landing.pending("gencove")] == ["e1"]


def test_pending_is_in_received_order_and_mark_consumed_moves_events(tmp_path: Path) -> None:
    landing = WebhookLanding(tmp_path)
    offsets = {"c": 3, "a": 1, "d": 26, "b": 2}  # hours after T0: crosses into the next dates
    for event_id, hours in offsets.items():
        landing.land(gencove(event_id, received_at=T0 + timedelta(hours=hours)))

    pending = list(landing.pending("gencove"))
    assert [r.event_id for r in pending] == sorted(offsets, key=offsets.__getitem__)
    assert all(isinstance(r, LandedEventRecord) and r.path.exists() for r in pending)

    assert landing.mark_consumed("gencove", ["a", "d", "unknown"]) == 2
    assert [r.event_id for r in landing.pending("gencove")] == ["b", "c"]
    assert landing.mark_consumed("gencove", ["a"]) == 0  # idempotent
    consumed = tmp_path / "landing" / "webhooks" / "gencove" / "consumed"
    assert sorted(p.name for p in files_under(consumed)) == ["a.json", "d.json"]
    assert landing.land(gencove("a")) is False  # consumed events still deduplicate
    assert list(landing.pending("biomesight")) == []


def test_a_crash_between_reading_and_marking_leaves_events_pending(tmp_path: Path) -> None:
    WebhookLanding(tmp_path).land(gencove("e1"))
    WebhookLanding(tmp_path).land(gencove("e2", received_at=T0 + timedelta(seconds=1)))

    first_sync = [r.event_id for r in WebhookLanding(tmp_path).pending("gencove")]
    # ...the sync dies here, before mark_consumed; the next one sees the same events.
    second_sync = WebhookLanding(tmp_path)
    assert [r.event_id for r in second_sync.pending("gencove")] == first_sync == ["e1", "e2"]
    second_sync.mark_consumed("gencove", first_sync)
    assert list(WebhookLanding(tmp_path).pending("gencove")) == []


def test_a_crash_after_the_claim_is_recovered_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = WebhookLanding(tmp_path, stale_after=0)
    event = gencove("e1")
    real_replace = os.replace

    def crash(source: Any, target: Any) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "replace", crash)
    assert landing.land(event) is True  # claimed and durable under ids/, only not filed by date
    monkeypatch.setattr(os, "replace", real_replace)
    assert landing.land(event) is False

    records = list(landing.pending("gencove"))
    assert [(r.event_id, r.body) for r in records] == [("e1", event.body)]
    assert (
        records[0].path == tmp_path / "landing" / "webhooks" / "gencove" / T0.date().isoformat() / "e1.json"
    )


def test_unclaimed_leftovers_are_discarded_only_once_stale(tmp_path: Path) -> None:
    landing = WebhookLanding(tmp_path)
    landing.land(gencove("e1"))
    leftover = tmp_path / "landing" / "webhooks" / "gencove" / "tmp" / "e2.deadbeef.tmp"
    leftover.write_text(json.dumps({"half": "written"}))

    assert [r.event_id for r in landing.pending("gencove")] == ["e1"]
    assert leftover.exists()  # could be a landing in progress in another process
    assert [r.event_id for r in WebhookLanding(tmp_path, stale_after=0).pending("gencove")] == ["e1"]
    assert not leftover.exists()
    assert not landing.is_landed("gencove", "e2")
