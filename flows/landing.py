"""A batch's tables into the lake: the one way a sync lands what it fetched, and counts it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from flows.runtime import data_paths
from flows.settings import Settings
from flows.tally import RunTally
from transform.result import TransformResult
from warehouse.batches import write_tables


def land_result(settings: Settings, result: TransformResult, tally: RunTally) -> None:
    """Write a batch's tables to the lake (one file per table and partition) and count them."""
    written = write_tables(data_paths(settings).lake, result.tables, ingest_date=datetime.now(UTC).date())
    tally.count_result(result, written)


async def land(settings: Settings, result: TransformResult, tally: RunTally) -> None:
    """`land_result` from a task on the request loop: the parquet encoding and file writes run in a worker
    thread (pyarrow releases the GIL), so the other batch's requests keep flowing meanwhile."""
    lake, today = data_paths(settings).lake, datetime.now(UTC).date()
    written = await asyncio.to_thread(write_tables, lake, result.tables, ingest_date=today)
    tally.count_result(result, written)
