"""Tracking: the platform's order/kit export tells kitsync which Biomesight orders and kits to poll."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow

from flows.recorder import RunRecorder
from flows.runtime import data_paths, pseudonym_key, run_settings
from transform import transform_platform_export
from warehouse.batches import write_tables
from warehouse.exports import read_export


@flow(name="track-import", log_prints=True)
async def track_import(path: str) -> dict[str, Any]:
    """Import an export file (CSV or parquet): orders and registered kits become tracked, pseudonymized."""
    settings = await run_settings()
    key = pseudonym_key(settings)
    async with RunRecorder(
        settings, flow="track-import", provider="biomesight", parameters={"file": Path(path).name}
    ) as run:
        for rows in read_export(path, batch_size=max(settings.batch_size, 1000)):
            observed_at = datetime.now(UTC)
            result = transform_platform_export(rows, key=key, observed_at=observed_at)
            written = write_tables(data_paths(settings).lake, result.tables, ingest_date=observed_at.date())
            run.tally.count_result(result, written)
    return run.summary
