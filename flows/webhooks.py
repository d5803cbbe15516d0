"""Landed webhook events into the sync: Biomesight pushes become status events, Gencove pushes name samples
to re-query (Gencove's events carry no status dates; its API is the source of truth, as its docs advise).

Events are marked consumed only after what they produced is in the lake, so a crash in between replays them;
replays are harmless because status events deduplicate on their key.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flows.runtime import data_paths
from flows.settings import Settings
from flows.tally import RunTally
from transform import transform_biomesight_statuses
from transform.gencove import pushed_samples
from warehouse.batches import write_tables
from warehouse.landing import Landing, open_landing


def landing(settings: Settings) -> Landing:
    return open_landing(data_paths(settings).landing)


def ingest_biomesight_events(settings: Settings) -> RunTally:
    """Turn every pending Biomesight push into status events (source "webhook") and mark them consumed."""
    store = landing(settings)
    tally = RunTally()
    records = list(store.pending("biomesight"))
    if not records:
        return tally
    observed_at = datetime.now(UTC)
    result = transform_biomesight_statuses(
        [record.body for record in records], source="webhook", observed_at=observed_at
    )
    written = write_tables(data_paths(settings).lake, result.tables, ingest_date=observed_at.date())
    tally.count_result(result, written)
    store.mark_consumed("biomesight", [record.event_id for record in records])
    tally.rows_written["webhook_events"] += len(records)
    return tally


def pending_gencove_samples(settings: Settings) -> tuple[dict[str, str], list[str]]:
    """Samples named by pending Gencove pushes (sample id -> project id) and event ids to consume later."""
    samples: dict[str, str] = {}
    event_ids: list[str] = []
    for record in landing(settings).pending("gencove"):
        event_ids.append(record.event_id)
        samples.update(pushed_samples(record.body))
    return samples, event_ids


def consume_gencove_events(settings: Settings, event_ids: list[str]) -> None:
    if event_ids:
        landing(settings).mark_consumed("gencove", event_ids)
