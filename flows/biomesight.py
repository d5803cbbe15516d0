"""The Biomesight sync: poll tracked orders and kits that are not final, fetch results of kits that are ready.

Biomesight has no listing endpoint, so what to poll comes from the warehouse (`warehouse.state`): orders and
kits the platform told us about (its export, our own client, webhooks) whose latest status is not final.
Each task handles a batch of a few hundred ids with async requests inside; the batch lands in the lake as one
file per table, and the run ends with one warehouse load.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from extract.biomesight import AsyncBiomesightClient
from flows.outcomes import record_failure
from flows.runs import RunRecorder, chunks, is_change
from flows.runtime import async_biomesight_client, data_paths
from flows.settings import Settings
from flows.tally import RunTally
from flows.webhooks import ingest_biomesight_events
from transform import (
    concat_results,
    to_stage,
    transform_biomesight_results,
    transform_biomesight_statuses,
    transform_biomesight_taxonomy_base64,
)
from transform.failures import FetchFailure, transform_fetch_failures
from transform.result import TransformResult
from warehouse.batches import write_tables
from warehouse.state import BiomesightPlan, KnownStatus, biomesight_plan

PROVIDER = "biomesight"


@dataclass
class BatchOutcome:
    """What one batch task did: its tally and the kits it found ready for results."""

    tally: RunTally = field(default_factory=RunTally)
    newly_ready: list[str] = field(default_factory=list)


async def _fetch_all(
    ids: Sequence[str], fetch: Callable[[str], Awaitable[dict[str, Any]]]
) -> list[dict[str, Any] | BaseException]:
    """One request per id, concurrently (the client bounds how many are in flight); failures stay per id."""
    return await asyncio.gather(*(fetch(i) for i in ids), return_exceptions=True)


def _land(result: TransformResult, settings: Settings, tally: RunTally) -> None:
    """Write a batch's tables to the lake and count them."""
    written = write_tables(data_paths(settings).lake, result.tables, ingest_date=datetime.now(UTC).date())
    tally.count_result(result, written)


async def _poll_entities(
    client: AsyncBiomesightClient,
    entity: str,
    ids: Sequence[str],
    *,
    known: dict[tuple[str, str], KnownStatus],
    source: str,
    outcome: BatchOutcome,
    failures: list[FetchFailure],
) -> TransformResult:
    fetch = client.get_order_status if entity == "order" else client.get_kit_status
    endpoint = f"status/{entity}"
    payloads: list[dict[str, Any]] = []
    for entity_id, answer in zip(ids, await _fetch_all(ids, fetch), strict=True):
        if isinstance(answer, BaseException):
            failure = record_failure(
                answer,
                provider=PROVIDER,
                entity=entity,
                entity_id=entity_id,
                endpoint=endpoint,
                tally=outcome.tally,
            )
            if failure is not None:
                failures.append(failure)
            continue
        payloads.append(answer)
        status = answer.get("status")
        if is_change(known.get((entity, entity_id)), status, answer.get("date")):
            outcome.tally.status_changes += 1
        if entity == "kit" and isinstance(status, str) and to_stage(PROVIDER, status)[0] == "results_ready":
            outcome.newly_ready.append(entity_id)
    observed_at = datetime.now(UTC)
    return transform_biomesight_statuses(payloads, source=source, observed_at=observed_at, entity=entity)


@task(name="biomesight-poll-batch", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
async def poll_batch(
    settings: Settings,
    order_ids: list[str],
    kit_ids: list[str],
    known: dict[tuple[str, str], KnownStatus],
    source: str = "poll",
) -> BatchOutcome:
    """Poll the status of a batch of orders and kits and land what came back."""
    outcome = BatchOutcome()
    failures: list[FetchFailure] = []
    async with async_biomesight_client(settings) as client:
        orders = await _poll_entities(
            client, "order", order_ids, known=known, source=source, outcome=outcome, failures=failures
        )
        kits = await _poll_entities(
            client, "kit", kit_ids, known=known, source=source, outcome=outcome, failures=failures
        )
    outcome.tally.orders_polled += len(order_ids)
    outcome.tally.kits_polled += len(kit_ids)
    failed = transform_fetch_failures(failures, observed_at=datetime.now(UTC))
    _land(concat_results((orders, kits, failed)), settings, outcome.tally)
    return outcome


@task(name="biomesight-results-batch", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
async def results_batch(settings: Settings, json_kits: list[str], csv_kits: list[str]) -> RunTally:
    """Fetch JSON results and base64 taxonomy CSVs for a batch of ready kits and land them.

    The CSV is transformed from its base64 text, so a corrupt encoding becomes a quarantine row that names the
    kit, not an anonymous client error.
    """
    tally = RunTally()
    failures: list[FetchFailure] = []
    results: dict[str, Any] = {}
    taxonomies: dict[str, str] = {}
    async with async_biomesight_client(settings) as client:
        json_answers, csv_answers = await asyncio.gather(
            _fetch_all(json_kits, lambda kit: client.get_results(kit, "json")),
            _fetch_all(csv_kits, lambda kit: client.get_results(kit, "csv")),
        )
    for endpoint, kit_ids, answers, sink, field_name in (
        ("results.json", json_kits, json_answers, results, None),
        ("results.csv", csv_kits, csv_answers, taxonomies, "csv"),
    ):
        for kit_id, answer in zip(kit_ids, answers, strict=True):
            if isinstance(answer, BaseException):
                failure = record_failure(
                    answer, provider=PROVIDER, entity="kit", entity_id=kit_id, endpoint=endpoint, tally=tally
                )
                if failure is not None:
                    failures.append(failure)
                continue
            sink[kit_id] = answer if field_name is None else answer.get(field_name)
    observed_at = datetime.now(UTC)
    result = concat_results(
        (
            transform_biomesight_results(results, observed_at=observed_at),
            transform_biomesight_taxonomy_base64(taxonomies, observed_at=observed_at),
            transform_fetch_failures(failures, observed_at=observed_at),
        )
    )
    tally.results_fetched += len(results)
    _land(result, settings, tally)
    return tally


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


async def run_biomesight_sync(
    settings: Settings,
    plan: BiomesightPlan,
    *,
    source: str = "poll",
    refetch_kits: Sequence[str] = (),
) -> RunTally:
    """Poll the plan's orders and kits in batches, then fetch results for every kit that is ready."""
    tally = RunTally()
    size = settings.batch_size
    newly_ready: list[str] = []
    entities = [("order", i) for i in plan.orders_to_poll] + [("kit", i) for i in plan.kits_to_poll]
    for batch in chunks(entities, size):
        orders = [i for kind, i in batch if kind == "order"]
        kits = [i for kind, i in batch if kind == "kit"]
        outcome = await poll_batch(settings, orders, kits, plan.known, source)
        tally += outcome.tally
        newly_ready.extend(outcome.newly_ready)
    json_kits = _unique([*plan.kits_missing_results, *newly_ready, *refetch_kits])
    csv_kits = _unique([*plan.kits_missing_taxonomy, *newly_ready, *refetch_kits])
    wanted = _unique([*json_kits, *csv_kits])
    json_set, csv_set = set(json_kits), set(csv_kits)
    for batch in chunks(wanted, size):
        tally += await results_batch(
            settings, [k for k in batch if k in json_set], [k for k in batch if k in csv_set]
        )
    return tally


@flow(name="sync-biomesight", log_prints=True)
async def sync_biomesight(load: bool = True) -> dict[str, Any]:
    """Hourly Biomesight sync: land webhook events, poll what is not final, fetch results that are ready."""
    settings = Settings()
    async with RunRecorder(
        settings, flow="sync-biomesight", provider=PROVIDER, parameters={"load": load}
    ) as run:
        run.final_load = load
        run.tally += ingest_biomesight_events(settings)
        await run.load_warehouse()
        plan = biomesight_plan(data_paths(settings).warehouse)
        run.tally += await run_biomesight_sync(settings, plan)
    return run.summary
