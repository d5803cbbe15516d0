"""The load flow: bring the warehouse up to date with the lake (and, when asked, compact the lake first)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from prefect import flow

from flows.recorder import RunRecorder
from flows.runtime import data_paths, run_settings
from transform.schemas import ALL_SPECS
from warehouse.maintenance import compact_lake


@flow(name="load-warehouse", log_prints=True)
async def load_warehouse(compact: bool = False) -> dict[str, Any]:
    """Load every lake file not loaded yet into DuckDB and publish the analysts' snapshot.

    Args:
        compact: first merge the small files of partitions from before today (content is unchanged).
    """
    settings = await run_settings()
    paths = data_paths(settings)
    async with RunRecorder(
        settings, flow="load-warehouse", provider="all", parameters={"compact": compact}
    ) as run:
        if compact:
            report = await asyncio.to_thread(
                compact_lake,
                paths.lake,
                paths.warehouse,
                ALL_SPECS,
                before=datetime.now(UTC).date(),
                lock_timeout=settings.load_timeout_seconds,
            )
            run.summary_extra["files_compacted"] = report.files_merged
        loaded = await run.load_warehouse()
        run.summary_extra["files_loaded"] = loaded.files_merged
        run.summary_extra["rows_loaded"] = loaded.rows_read
    return run.summary
