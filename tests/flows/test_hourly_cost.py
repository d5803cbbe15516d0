"""What an hourly Biomesight run costs besides its polls: one token, no load when nothing waits, no publish
when nothing but its own sync_runs row changed (issue 14). Counted from the sandbox's request counter and the
files on disk, never timed."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from flows.biomesight import sync_biomesight
from flows.demo import environment
from tests.flows.truth import requests
from tests.synced import SyncedWorld
from transform import transform_biomesight_statuses
from warehouse.batches import write_tables
from warehouse.lake import list_files
from warehouse.state import biomesight_plan


def _file_state(path: Path) -> tuple[int, int, int]:
    """What a publish (copy, then rename over the file) changes: the inode, the mtime and the size."""
    status = os.stat(path)
    return status.st_ino, status.st_mtime_ns, status.st_size


def _lake_run_ids(data_dir: Path) -> set[str]:
    return {
        run_id
        for lake_file in list_files(data_dir, "sync_runs")
        for run_id in pq.read_table(data_dir / lake_file.path, columns=["run_id"])["run_id"].to_pylist()
    }


def test_one_token_serves_every_batch_of_a_run(prefect_api: str, tmp_path: Path) -> None:
    with SyncedWorld.start(tmp_path / "data", kits=150, rounds=1, webhooks=False) as synced:
        server = synced.server
        server.advance(timedelta(days=2))
        plan = biomesight_plan(synced.warehouse)
        polls = len(plan.orders_to_poll) + len(plan.kits_to_poll)
        batch_size = 5
        assert polls > 4 * batch_size  # several poll batches, two of them at a time
        server.reset_request_counts()
        with environment({"KITSYNC_BATCH_SIZE": str(batch_size)}):
            summary = asyncio.run(sync_biomesight())
        counts = server.request_counts()
        assert summary["state"] == "completed"
        polled = requests(counts, "biomesight.order_status") + requests(counts, "biomesight.kit_status")
        assert polled == polls
        assert requests(counts, "biomesight.results") > 0  # results batches use the same client
        assert requests(counts, "biomesight.token") == 1


def test_a_run_with_nothing_new_neither_loads_nor_publishes(prefect_api: str, tmp_path: Path) -> None:
    with SyncedWorld.start(tmp_path / "data", kits=150, rounds=1, webhooks=False) as synced:
        data_dir, published = synced.data_dir, synced.warehouse
        before = _file_state(published)
        quiet = asyncio.run(sync_biomesight())  # the same virtual time as the last sync: nothing changed
        assert quiet["state"] == "completed"
        assert quiet["complete"] is True
        assert quiet["status_changes"] == 0
        assert quiet["kits_polled"] > 0
        assert quiet["warehouse_loads"] == 0  # nothing waited before planning, nothing new after
        assert _file_state(published) == before
        # Its row waits in the lake, not in the analysts' warehouse...
        assert quiet["run_id"] in _lake_run_ids(data_dir)
        assert synced.scalar("SELECT count(*) FROM sync_runs WHERE run_id = ?", [quiet["run_id"]]) == 0

        # ...until a load has anything else to do. A status another worker landed (not loaded here) waits in
        # the lake: the next run loads it before planning (that order is not polled again), and the waiting
        # sync_runs row with it.
        plan = biomesight_plan(published)
        delivered = plan.orders_to_poll[0]
        now = synced.server.clock.now()
        landed = transform_biomesight_statuses(
            [{"order_id": delivered, "status": "Delivered", "date": now.isoformat()}],
            source="poll",
            observed_at=datetime.now(UTC),
            entity="order",
        )
        write_tables(data_dir, landed.tables, ingest_date=now.date())
        synced.server.reset_request_counts()
        caught_up = asyncio.run(sync_biomesight())
        orders_polled = requests(synced.server.request_counts(), "biomesight.order_status")
        assert orders_polled == len(plan.orders_to_poll) - 1
        assert caught_up["warehouse_loads"] == 1  # the catch-up; the run itself landed nothing
        assert _file_state(published) != before
        assert synced.scalar("SELECT count(*) FROM sync_runs WHERE run_id = ?", [quiet["run_id"]]) == 1

        # A run that lands changes loads once, at the end, and publishes every row that waited.
        synced.server.advance(timedelta(days=2))
        changed = asyncio.run(sync_biomesight())
        assert changed["status_changes"] > 0
        assert changed["warehouse_loads"] == 1
        recorded = {r[0] for r in synced.rows("SELECT run_id FROM sync_runs WHERE flow = 'sync-biomesight'")}
        assert {quiet["run_id"], caught_up["run_id"], changed["run_id"]} <= recorded
