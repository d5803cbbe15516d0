"""The lake, the webhook landing and the backfill ledger on a real S3-compatible server (moto's server mode).

Object storage has no rename: a lake file is put whole under its content-addressed key (the put is the
commit, written last), and a landing claim is a conditional PUT. These tests drive the same code as on local
disk through `s3://bucket/prefix` URIs and the standard AWS variables, against a server the tests start.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tests.storage.s3 import S3Server
from tests.warehouse.tables import SPECS, STATUS_EVENTS, at, rows_table
from warehouse import lake
from warehouse.checkpoints import BackfillLedger
from warehouse.files import resolve_root
from warehouse.landing import ObjectLanding, open_landing
from warehouse.load import load

REPO = Path(__file__).resolve().parents[2]
DAY = date(2026, 11, 22)
T0 = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)


def events(kits: range, hour: int = 1) -> object:
    rows = [
        {
            "provider": "biomesight",
            "kit_id": f"k{n}",
            "status": "shipped",
            "source": "poll",
            "observed_at": at(hour),
        }
        for n in kits
    ]
    return rows_table(STATUS_EVENTS, rows)


def test_a_lake_on_s3_lands_lists_compacts_and_loads_like_local_disk(
    s3_server: S3Server, tmp_path: Path
) -> None:
    uri = s3_server.new_bucket()
    local = tmp_path / "local"
    for root in (uri, local):
        lake.write_table(root, STATUS_EVENTS, events(range(3)), ingest_date=DAY)
        lake.write_table(root, STATUS_EVENTS, events(range(3)), ingest_date=DAY)  # identical: same key
        lake.write_table(root, STATUS_EVENTS, events(range(3, 5), hour=2), ingest_date=DAY)

    on_s3 = lake.list_files(uri, "status_events")
    assert [f.path for f in on_s3] == [f.path for f in lake.list_files(local, "status_events")]
    assert len(on_s3) == 2
    assert [k for k in s3_server.keys(uri) if k.startswith("lake/")] == [f.path for f in on_s3]

    s3_report = load(uri, tmp_path / "s3-wh" / "kitsync.duckdb", SPECS, views_dir=tmp_path / "no-views")
    local_report = load(
        local, tmp_path / "local-wh" / "kitsync.duckdb", SPECS, views_dir=tmp_path / "no-views"
    )
    assert s3_report.files_merged == local_report.files_merged == 2
    assert [t.rows_after for t in s3_report.tables] == [t.rows_after for t in local_report.tables]

    compacted = lake.compact(uri, STATUS_EVENTS, on_s3[0].directory)
    assert compacted is not None
    assert [f.path for f in lake.list_files(uri, "status_events")] == [compacted.path]
    again = load(uri, tmp_path / "s3-wh" / "kitsync.duckdb", SPECS, views_dir=tmp_path / "no-views")
    assert (again.files_merged, again.files_covered, again.rows_read) == (0, 1, 0)  # nothing loaded twice


def test_a_write_killed_mid_file_leaves_no_object(s3_server: S3Server) -> None:
    uri = s3_server.new_bucket()
    script = (
        "import sys\n"
        "from datetime import date\n"
        "from tests.warehouse.tables import STATUS_EVENTS, at, rows_table\n"
        "from warehouse import lake\n"
        "batch = rows_table(STATUS_EVENTS, [{'provider': 'biomesight', 'kit_id': 'k1', 'status': 'shipped',\n"
        "    'source': 'poll', 'observed_at': at(1)}])\n"
        "lake.write_table(sys.argv[1], STATUS_EVENTS, batch, ingest_date=date(2026, 11, 22))\n"
    )
    crashed = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script, uri],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "KITSYNC_CRASH_AT": "lake-write:1"},
        capture_output=True,
        check=False,
    )

    assert crashed.returncode == -9, crashed.stderr
    # No data object; the lake journal's marker, put before the file, names a file that never came (a load
    # lists its partition, finds nothing there and moves on: tests/warehouse/test_load_listing.py).
    assert [key for key in s3_server.keys(uri) if not key.startswith("lake-journal/")] == []
    assert lake.list_files(uri, "status_events") == []


def _event(event_id: str, hour: int = 0) -> object:
    from tests.warehouse.test_landing import Event

    return Event("biomesight", event_id, T0.replace(hour=hour), kind="biomesight_kit", body={"n": event_id})


def test_webhook_events_land_once_and_another_machine_consumes_them(s3_server: S3Server) -> None:
    uri = s3_server.new_bucket()
    receiver = open_landing(uri)  # the receiver's machine
    assert isinstance(receiver, ObjectLanding)
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(receiver.land(_event("e1", 2)))) for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 5 + [True]  # the conditional PUT lets exactly one delivery claim it
    assert receiver.land(_event("e0", 1)) is True
    assert receiver.land(_event("e0", 1)) is False

    sync = open_landing(uri)  # a sync on another machine sees the same landing
    assert [r.event_id for r in sync.pending("biomesight")] == ["e0", "e1"]
    assert sync.mark_consumed("biomesight", ["e0", "unknown"]) == 1
    assert [r.event_id for r in open_landing(uri).pending("biomesight")] == ["e1"]
    assert sync.is_landed("biomesight", "e0")
    assert not sync.is_landed("biomesight", "e2")


def test_a_backfill_ledger_in_the_lake_is_seen_from_another_worker(s3_server: S3Server) -> None:
    uri = s3_server.new_bucket()
    BackfillLedger(uri, "abc").mark_done("2026-10-01")
    BackfillLedger(uri, "abc").mark_done("2026-10-02")

    assert BackfillLedger(uri, "abc").done() == {"2026-10-01", "2026-10-02"}
    BackfillLedger(uri, "abc").reset()
    assert BackfillLedger(uri, "abc").done() == set()


@pytest.mark.parametrize("where", ["local", "s3"])
def test_stored_documents_are_put_whole(where: str, s3_server: S3Server, tmp_path: Path) -> None:
    from warehouse.raw import store_file

    root = s3_server.new_bucket() if where == "s3" else tmp_path
    stored = store_file(root, "biomesight/reports", "k1.pdf", b"%PDF-1.7 report")

    assert resolve_root(root).read(stored.path) == b"%PDF-1.7 report"
