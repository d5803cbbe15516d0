"""The Biomesight sync: poll tracked orders and kits that are not final, fetch results of kits that are ready.

Biomesight has no listing endpoint, so what to poll comes from the warehouse (`warehouse.state`): orders and
kits the platform told us about (its export, our own client, webhooks) whose latest status is not final.
Each task handles a batch of a few hundred ids with async requests inside; the batch lands in the lake as one
file per table (plus the raw responses, so a later fix can reprocess them without asking Biomesight again),
and the run ends with one warehouse load.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from itertools import islice
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.fanout import run_batch
from flows.landing import land, land_result
from flows.locks import run_exclusively
from flows.outcomes import fetch_each, record_failure, should_retry_task
from flows.pipelining import Pipeline, chunks, share_of_concurrency
from flows.progress import KITS, RESULTS
from flows.recorder import RunRecorder
from flows.runtime import async_biomesight_client, data_paths, run_clients, run_settings
from flows.settings import Settings
from flows.tally import RunTally
from flows.webhooks import ingest_biomesight_events
from transform import (
    concat_results,
    transform_biomesight_results,
    transform_biomesight_statuses,
    transform_biomesight_taxonomy,
)
from transform.biomesight import (
    taxonomy_raw_body,
    transform_biomesight_report_pdfs,
    transform_biomesight_taxonomy_answers,
    triage_biomesight_statuses,
)
from transform.failures import FetchFailure, transform_fetch_failures
from transform.raw import RawResponse, transform_raw_responses
from transform.result import TransformResult
from transform.status import Entity
from warehouse.raw import StoredFile, latest_raw_responses, store_file
from warehouse.state import BiomesightPlan, KnownStatus, biomesight_plan

PROVIDER = "biomesight"
STATUS_ENDPOINT: dict[Entity, str] = {"order": "status/order", "kit": "status/kit"}
RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
RESULTS_PDF = "results.pdf"
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class BatchOutcome:
    """What one batch task did: its tally and the kits it found ready for results."""

    tally: RunTally = field(default_factory=RunTally)
    newly_ready: list[str] = field(default_factory=list)


def _successes(
    ids: Sequence[str],
    answers: Sequence[Any | BaseException],
    *,
    entity: str,
    endpoint: str,
    tally: RunTally,
    failures: list[FetchFailure],
) -> dict[str, Any]:
    """id -> payload of each answer that came back; each failure counted (quarantined if it deserves it)."""
    payloads: dict[str, Any] = {}
    for entity_id, answer in zip(ids, answers, strict=True):
        if isinstance(answer, BaseException):
            failure = record_failure(
                answer, provider=PROVIDER, entity=entity, entity_id=entity_id, endpoint=endpoint, tally=tally
            )
            if failure is not None:
                failures.append(failure)
        else:
            payloads[entity_id] = answer
    return payloads


def _raw(endpoint: str, payloads: dict[str, Any]) -> list[RawResponse]:
    return [RawResponse(PROVIDER, endpoint, entity_id, body) for entity_id, body in payloads.items()]


def status_tables(
    orders: dict[str, Any], kits: dict[str, Any], *, source: str, observed_at: datetime
) -> TransformResult:
    """Status payloads of orders and kits -> status events (the same code for fresh and reprocessed ones)."""
    return concat_results(
        transform_biomesight_statuses(
            list(payloads.values()), source=source, observed_at=observed_at, entity=kind
        )
        for kind, payloads in (("order", orders), ("kit", kits))
    )


def stored_results_tables(
    results: dict[str, Any], csv_answers: dict[str, Any], *, observed_at: datetime
) -> TransformResult:
    """Stored results JSON and CSV answers per kit -> results, scores, recommendations, taxonomy (or
    quarantine): the reprocessing of what a sync landed as raw responses."""
    return concat_results(
        (
            transform_biomesight_results(results, observed_at=observed_at),
            transform_biomesight_taxonomy_answers(csv_answers, observed_at=observed_at),
        )
    )


@task(
    name="biomesight-poll-batch",
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=should_retry_task,
    cache_policy=NO_CACHE,
)
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
        order_answers, kit_answers = await fetch_each(
            (order_ids, client.get_order_status), (kit_ids, client.get_kit_status)
        )
    observed_at = datetime.now(UTC)
    orders = _successes(
        order_ids,
        order_answers,
        entity="order",
        endpoint=STATUS_ENDPOINT["order"],
        tally=outcome.tally,
        failures=failures,
    )
    kits = _successes(
        kit_ids,
        kit_answers,
        entity="kit",
        endpoint=STATUS_ENDPOINT["kit"],
        tally=outcome.tally,
        failures=failures,
    )
    triage = triage_biomesight_statuses({"order": orders, "kit": kits}, known)
    changed = triage.changed
    outcome.tally.status_changes += triage.status_changes
    outcome.newly_ready.extend(triage.newly_ready)
    outcome.tally.orders_polled += len(order_ids)
    outcome.tally.kits_polled += len(kit_ids)
    result = concat_results(
        (
            status_tables(changed["order"], changed["kit"], source=source, observed_at=observed_at),
            transform_raw_responses(
                _raw(STATUS_ENDPOINT["order"], changed["order"])
                + _raw(STATUS_ENDPOINT["kit"], changed["kit"]),
                observed_at=observed_at,
            ),
            transform_fetch_failures(failures, observed_at=observed_at),
        )
    )
    result.unknown_statuses.update(triage.still_unknown)
    await land(settings, result, outcome.tally)
    return outcome


def _pdf_name(kit_id: str) -> str:
    """A file name for a kit's PDF: readable, and unique even when the kit code holds unsafe characters."""
    digest = hashlib.sha256(kit_id.encode()).hexdigest()[:8]
    return f"{_UNSAFE_FILE_CHARS.sub('_', kit_id)[:64]}-{digest}.pdf"


def _store_pdfs(settings: Settings, pdfs: dict[str, bytes], observed_at: datetime) -> TransformResult:
    """Write each PDF into the lake's files area and describe it in a report_pdfs row."""
    lake = data_paths(settings).lake
    stored: dict[str, StoredFile] = {
        kit_id: store_file(lake, "biomesight/reports", _pdf_name(kit_id), content)
        for kit_id, content in pdfs.items()
    }
    return transform_biomesight_report_pdfs(stored, observed_at=observed_at)


@task(
    name="biomesight-results-batch",
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=should_retry_task,
    cache_policy=NO_CACHE,
)
async def results_batch(
    settings: Settings, json_kits: list[str], csv_kits: list[str], pdf_kits: list[str] | None = None
) -> RunTally:
    """Fetch JSON results, base64 taxonomy CSVs (and PDFs when asked) for a batch of ready kits; land them."""
    tally = RunTally()
    failures: list[FetchFailure] = []
    pdf_kits = pdf_kits or []
    async with async_biomesight_client(settings) as client:
        json_answers, csv_answers, pdf_answers = await fetch_each(
            (json_kits, lambda kit: client.get_results(kit, "json")),
            (csv_kits, client.get_taxonomy_csv),
            (pdf_kits, client.get_pdf),
        )
    observed_at = datetime.now(UTC)
    common: dict[str, Any] = {"entity": "kit", "tally": tally, "failures": failures}
    results = _successes(json_kits, json_answers, endpoint=RESULTS_JSON, **common)
    csvs = _successes(csv_kits, csv_answers, endpoint=RESULTS_CSV, **common)
    pdfs = _successes(pdf_kits, pdf_answers, endpoint=RESULTS_PDF, **common)
    # The CSV arrives decoded by the client (a corrupt base64 is its MalformedResponse, quarantined above
    # with the kit's id); it is kept as a raw response in the partner's own shape, for reprocessing.
    csv_bodies = {kit_id: taxonomy_raw_body(csv) for kit_id, csv in csvs.items()}
    result = concat_results(
        (
            transform_biomesight_results(results, observed_at=observed_at),
            transform_biomesight_taxonomy(csvs, observed_at=observed_at),
            _store_pdfs(settings, pdfs, observed_at),
            transform_raw_responses(
                _raw(RESULTS_JSON, results) + _raw(RESULTS_CSV, csv_bodies), observed_at=observed_at
            ),
            transform_fetch_failures(failures, observed_at=observed_at),
        )
    )
    tally.results_fetched += len(results)
    await land(settings, result, tally)
    return tally


@task(name="biomesight-reprocess-batch", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
async def reprocess_batch(settings: Settings, order_ids: list[str], kit_ids: list[str]) -> RunTally:
    """Transform the newest stored raw responses of a batch again (no request to Biomesight)."""
    tally = RunTally()
    lake = data_paths(settings).lake
    observed_at = datetime.now(UTC)

    def stored(endpoint: str, ids: list[str]) -> dict[str, Any]:
        return latest_raw_responses(lake, PROVIDER, endpoint, ids)

    results = stored(RESULTS_JSON, kit_ids)
    result = concat_results(
        (
            status_tables(
                stored(STATUS_ENDPOINT["order"], order_ids),
                stored(STATUS_ENDPOINT["kit"], kit_ids),
                source="backfill",
                observed_at=observed_at,
            ),
            stored_results_tables(results, stored(RESULTS_CSV, kit_ids), observed_at=observed_at),
        )
    )
    tally.results_fetched += len(results)
    land_result(settings, result, tally)
    return tally


async def run_biomesight_sync(
    settings: Settings,
    plan: BiomesightPlan,
    *,
    run: RunRecorder,
    source: str = "poll",
    refetch_kits: Sequence[str] = (),
    fetch_pdf: bool = False,
) -> None:
    """Poll the plan's orders and kits in batches and fetch results for every kit that is ready; each
    batch's counts go to `run` (which loads as the rows pile up).

    Results do not wait for the whole poll: as soon as a batch's worth of kits is known to be ready (the
    plan's, then each poll batch's newly ready ones), a results batch goes ahead of the polls still waiting;
    the rest once the last poll is in. Poll and results batches share the run's concurrency as
    BATCHES_IN_FLIGHT batches (`Pipeline`), so the partner never sees more requests in flight than before.
    """
    size = settings.batch_size
    share = share_of_concurrency(settings)
    # Kits first: their polls name the kits ready for results, whose batches then run beside the rest.
    entities = [("kit", i) for i in plan.kits_to_poll] + [("order", i) for i in plan.orders_to_poll]
    run.expect(KITS, len(entities))
    pipeline: Pipeline[BatchOutcome | RunTally] = Pipeline()
    # kit -> the results formats it still needs a batch for, in the order the kits became known
    formats = (RESULTS_JSON, RESULTS_CSV, RESULTS_PDF) if fetch_pdf else (RESULTS_JSON, RESULTS_CSV)
    pending: dict[str, set[str]] = {}
    asked: dict[str, set[str]] = {}

    def want(kits: Iterable[str], *wanted: str) -> None:
        for kit in kits:
            more = set(wanted) - asked.setdefault(kit, set())
            if more:
                asked[kit] |= more
                pending.setdefault(kit, set()).update(more)

    def fetch_results(*, all_known: bool = False) -> None:
        """Queue results batches (ahead of the polls still waiting): full ones now, a short one once
        `all_known` (every poll is in)."""
        while len(pending) >= size or (all_known and pending):
            batch = list(islice(pending, size))
            need = {kit: pending.pop(kit) for kit in batch}
            run.expect(RESULTS, len(batch))
            pipeline.add(
                partial(
                    run_batch,
                    results_batch,
                    share,
                    [k for k in batch if RESULTS_JSON in need[k]],
                    [k for k in batch if RESULTS_CSV in need[k]],
                    [k for k in batch if RESULTS_PDF in need[k]],
                ),
                first=True,
            )

    async def poll(batch: list[tuple[str, str]]) -> BatchOutcome:
        orders = [i for kind, i in batch if kind == "order"]
        kits = [i for kind, i in batch if kind == "kit"]
        # Only the batch's own known statuses: Prefect walks every task argument (visit_collection), and the
        # whole map (every tracked order and kit) cost ~0.1 ms per entry per task, ~11 s a task at 100k kits.
        known = {entity: plan.known[entity] for entity in batch if entity in plan.known}
        return await run_batch(poll_batch, share, orders, kits, known, source)

    want(plan.kits_missing_results, RESULTS_JSON)
    want(plan.kits_missing_taxonomy, RESULTS_CSV)
    if fetch_pdf:
        want(plan.kits_missing_pdf, RESULTS_PDF)
    want(refetch_kits, *formats)
    polls_left = 0
    for batch in chunks(entities, size):
        pipeline.add(partial(poll, batch))
        polls_left += 1
    fetch_results(all_known=not polls_left)
    async with aclosing(pipeline.outcomes()) as outcomes:
        async for outcome in outcomes:
            if isinstance(outcome, BatchOutcome):
                await run.checkpoint(outcome.tally)
                want(outcome.newly_ready, *formats)
                polls_left -= 1
                fetch_results(all_known=not polls_left)
            else:
                await run.checkpoint(outcome)


@flow(name="sync-biomesight", log_prints=True)
async def sync_biomesight(load: bool = True, fetch_pdf: bool | None = None) -> dict[str, Any]:
    """Hourly Biomesight sync: land webhook events, poll what is not final, fetch results that are ready.

    Args:
        load: load the warehouse at the end of the run (off: only the lake is written).
        fetch_pdf: also fetch each ready kit's PDF report into the lake (empty: setting KITSYNC_FETCH_PDF).
    """
    settings = await run_settings()
    want_pdf = settings.fetch_pdf if fetch_pdf is None else fetch_pdf
    parameters = {"load": load, "fetch_pdf": want_pdf}

    async def work() -> dict[str, Any]:
        # The webhook events land first, so one catch-up load (only when something waits) covers them and
        # what other workers landed; one client (one token) serves every batch run in this process.
        async with RunRecorder(
            settings, flow="sync-biomesight", provider=PROVIDER, parameters=parameters, catch_up=False
        ) as run:
            run.final_load = load
            run.report = True
            run.load_when_quiet = False
            run.tally += ingest_biomesight_events(settings)
            await run.catch_up()
            plan = biomesight_plan(data_paths(settings).warehouse, with_pdf=want_pdf)
            async with run_clients(settings, PROVIDER):
                await run_biomesight_sync(settings, plan, run=run, fetch_pdf=want_pdf)
        return run.summary

    return await run_exclusively(settings, PROVIDER, work)
