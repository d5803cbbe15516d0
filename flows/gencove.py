"""The Gencove sync: list each project's samples changed since the last run, fetch results of final ones.

Discovery is automatic (Gencove lists a project's samples); each run resumes from the newest `modified` the
warehouse holds minus an overlap, and pages by keyset so samples changing mid-listing are never skipped.
Samples that reached a final status and whose details are not loaded get their details, status history,
QC, trait scores and ancestry fetched, a batch of samples per task. What Gencove sent is kept as raw
responses too, so a fixed transform can reprocess it without asking Gencove again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import aclosing
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from extract.gencove import AsyncGencoveClient
from extract.pagination import ModifiedCursor
from flows.fanout import run_batch
from flows.landing import land, land_result
from flows.limits import requests_in_flight
from flows.locks import run_exclusively
from flows.outcomes import fetch_each, record_failure, should_retry_task
from flows.pipelining import Pipeline, share_of_concurrency
from flows.progress import RESULTS
from flows.recorder import RunRecorder
from flows.runtime import async_gencove_client, data_paths, pseudonym_key, run_clients, run_settings
from flows.settings import Settings
from flows.tally import RunTally
from flows.webhooks import consume_gencove_events, pending_gencove_samples
from transform import concat_results, transform_gencove_project_samples, transform_gencove_sample_customers
from transform.failures import FetchFailure, transform_fetch_failures
from transform.gencove import (
    detail_as_list_item,
    final_status,
    has_results,
    sample_bundle,
    sample_id_of,
    sample_project,
    sample_status,
    samples_without_customer_id,
    transform_gencove_bundles,
    triage_gencove_listing,
)
from transform.raw import RawResponse, transform_raw_responses
from transform.result import TransformResult
from warehouse.raw import latest_raw_responses
from warehouse.state import GencovePlan, KnownStatus, gencove_plan

PROVIDER = "gencove"
SAMPLE_BUNDLE = "sample-bundle"  # raw endpoint: a sample's details, metadata, statuses and results together
SAMPLE_METADATA = "sample-metadata"  # raw endpoint: the metadata of a listed sample not final yet


def listing_endpoint(project_id: str) -> str:
    """The raw endpoint name of a project's listing (list items carry no project id of their own)."""
    return f"project-samples/{project_id}"


def listing_tables(
    items: list[Any], *, project_id: str, key: bytes, source: str, observed_at: datetime
) -> TransformResult:
    return transform_gencove_project_samples(
        items, project_id=project_id, key=key, observed_at=observed_at, source=source
    )


async def _list_pages(
    client: AsyncGencoveClient,
    project_id: str,
    *,
    created_window: tuple[date, date] | None,
    cursor: ModifiedCursor,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Incremental listing by `modified` (hourly syncs), or a creation-date window (backfills).

    A window is paged by offset, so it is sorted by `created`, which never changes: sorted by `modified`, a
    sample changing mid-listing would jump to the end and shift an unread one onto a page already read.
    """
    if created_window is None:
        async for page in client.iter_changed_sample_pages(project_id, cursor=cursor):
            yield page
        return
    first, last = created_window
    page: list[dict[str, Any]] = []
    async for item in client.iter_project_samples(
        project_id,
        created_after=datetime.combine(first, time.min, UTC),
        created_before=datetime.combine(last + timedelta(days=1), time.min, UTC),
        sort_by="created",
    ):
        page.append(item)
        if len(page) >= 200:
            yield page
            page = []
    if page:
        yield page


@task(
    name="gencove-list-project",
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=should_retry_task,
    cache_policy=NO_CACHE,
)
async def list_project(
    settings: Settings,
    project_id: str,
    modified_after: datetime | None,
    known: dict[str, KnownStatus],
    *,
    source: str = "poll",
    created_window: tuple[date, date] | None = None,
    on_final: Callable[[dict[str, str]], None] | None = None,
) -> tuple[RunTally, dict[str, str]]:
    """Page one project's changed samples into the lake; return the tally and the samples now final.

    `on_final` hears of each page's final samples (maybe none) as soon as the page is read, so their
    details can be fetched while the listing goes on. The customer reads of a page's new in-flight samples
    run beside the next pages (each keyset page waits only for the page before it), the page landing with
    them; all of them finish before this returns.
    """
    tally = RunTally()
    final: dict[str, str] = {}
    key = pseudonym_key(settings)
    cursor = ModifiedCursor(modified_after)
    reads: list[asyncio.Future[None]] = []
    # The customer reads leave one of the client's requests in flight to the pages: the next page never
    # queues behind a burst of reads.
    reads_gate = asyncio.Semaphore(max(1, requests_in_flight(settings, PROVIDER) - 1))
    async with async_gencove_client(settings) as client:

        async def land_with_customers(listed: TransformResult, unkeyed: list[str]) -> None:
            # A page lands with its new samples' customer keys, in the same files: a run killed between the
            # two left samples known without their customer, and a known sample's metadata is not read again.
            customers = await _sample_customers(client, unkeyed, key, source, reads_gate)
            await land(settings, concat_results((listed, customers)), tally)

        try:
            try:
                async for page in _list_pages(
                    client, project_id, created_window=created_window, cursor=cursor
                ):
                    _raise_failed(reads)  # a refused key met by a customer read stops the listing now
                    observed_at = datetime.now(UTC)
                    raw = [
                        RawResponse(PROVIDER, listing_endpoint(project_id), sample_id_of(i), i) for i in page
                    ]
                    result = concat_results(
                        (
                            listing_tables(
                                page, project_id=project_id, key=key, source=source, observed_at=observed_at
                            ),
                            transform_raw_responses(raw, observed_at=observed_at),
                        )
                    )
                    tally.kits_polled += len(page)
                    triage = triage_gencove_listing(page, known)
                    tally.status_changes += triage.status_changes
                    now_final = dict.fromkeys(triage.final, project_id)
                    final.update(now_final)
                    unkeyed = [
                        s for s in samples_without_customer_id(page) if s not in known and s not in final
                    ]
                    if unkeyed:
                        reads.append(asyncio.ensure_future(land_with_customers(result, unkeyed)))
                    else:
                        await land(settings, result, tally)
                    if on_final is not None:
                        on_final(now_final)
            except Exception as error:
                failure = record_failure(
                    error,
                    provider=PROVIDER,
                    entity="project",
                    entity_id=project_id,
                    endpoint="project-samples",
                    tally=tally,
                )
                if failure is not None:
                    await land(
                        settings, transform_fetch_failures([failure], observed_at=datetime.now(UTC)), tally
                    )
            await asyncio.gather(*reads)
        finally:
            for read in reads:
                read.cancel()
            await asyncio.gather(*reads, return_exceptions=True)
    # how far the landed pages got, even when the listing then failed
    if created_window is None and cursor.newest is not None:
        tally.listed_through[project_id] = cursor.newest.isoformat()
    return tally, final


def _raise_failed(reads: list[asyncio.Future[None]]) -> None:
    """Raise the error of the first finished background read that failed (a refused key, a bug)."""
    for read in reads:
        if read.done() and not read.cancelled() and read.exception() is not None:
            raise read.exception()  # type: ignore[misc]


class DetailNotFinalError(Exception):
    """A sample asked for as final whose `samples/{id}` shows another status: the status is kept (as a listing
    item's would be), its details and results are asked for again on the next run."""

    def __init__(self, status: object, sample: Mapping[str, Any]) -> None:
        super().__init__(f"samples/{{id}} shows status {status!r}, not a final one: asked again next run")
        self.status = status
        self.sample = sample


async def _sample_customers(
    client: AsyncGencoveClient,
    sample_ids: list[str],
    key: bytes,
    source: str,
    gate: asyncio.Semaphore | None = None,
) -> TransformResult:
    """Customer keys of newly listed samples whose id is only in their metadata (the kit-ordering guide's
    way), read once so in-flight samples count for their customer; final ones get it with their details.
    `gate` bounds how many of these reads are in flight (beside the client's own bound)."""

    async def read(sample_id: str) -> Any:
        if gate is None:
            return await client.get_sample_metadata(sample_id)
        async with gate:
            return await client.get_sample_metadata(sample_id)

    (answers,) = await fetch_each((sample_ids, read))
    # A failed read loses nothing: the metadata is read again with the sample's details once it is final.
    metadata = {s: a for s, a in zip(sample_ids, answers, strict=True) if not isinstance(a, Exception)}
    observed_at = datetime.now(UTC)
    raw = [RawResponse(PROVIDER, SAMPLE_METADATA, sample_id, body) for sample_id, body in metadata.items()]
    return concat_results(
        (
            transform_gencove_sample_customers(metadata, key=key, observed_at=observed_at, source=source),
            transform_raw_responses(raw, observed_at=observed_at),
        )
    )


async def _collect(items: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in items]


async def _sample_bundle(client: AsyncGencoveClient, sample_id: str) -> dict[str, Any]:
    """Everything kitsync keeps about one final sample: its quality controls whatever the outcome (a failed-QC
    sample's checks say why it failed), trait scores and ancestry only for succeeded ones."""
    sample = await client.get_sample(sample_id)
    status = final_status(sample)
    if status is None:
        # Not final in its own detail (a webhook or the listing ran ahead of it, or an undocumented status):
        # landing the detail now would mark the sample fetched without what its final status brings (results,
        # QC, deliverables, the whole history), and it would never be asked again. Ask again next run.
        raise DetailNotFinalError(sample_status(sample)[0], sample)
    metadata, statuses, qc = await asyncio.gather(
        client.get_sample_metadata(sample_id),
        _collect(client.iter_sample_statuses(sample_id)),
        client.get_quality_controls(sample_id),
    )
    traits = ancestry = None
    if has_results(status):
        traits, ancestry = await asyncio.gather(
            _collect(client.iter_trait_scores(sample_id)), client.get_ancestry(sample_id)
        )
    return sample_bundle(
        sample=sample, metadata=metadata, statuses=statuses, qc=qc, traits=traits, ancestry=ancestry
    )


@task(
    name="gencove-details-batch",
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=should_retry_task,
    cache_policy=NO_CACHE,
)
async def details_batch(settings: Settings, sample_ids: list[str], source: str = "poll") -> RunTally:
    """Fetch details and results for a batch of final samples and land them as one file per table."""
    tally = RunTally()
    failures: list[FetchFailure] = []
    async with async_gencove_client(settings) as client:
        (answers,) = await fetch_each((sample_ids, lambda sample_id: _sample_bundle(client, sample_id)))
    bundles: dict[str, dict[str, Any]] = {}
    not_final: dict[str, list[Mapping[str, Any]]] = {}
    for sample_id, answer in zip(sample_ids, answers, strict=True):
        if isinstance(answer, DetailNotFinalError):
            tally.deferred[f"sample: not final in its detail ({answer.status})"] += 1
            not_final.setdefault(sample_project(answer.sample), []).append(answer.sample)
        elif isinstance(answer, BaseException):
            failure = record_failure(
                answer, provider=PROVIDER, entity="kit", entity_id=sample_id, endpoint="sample", tally=tally
            )
            if failure is not None:
                failures.append(failure)
        else:
            bundles[sample_id] = answer
    observed_at = datetime.now(UTC)
    raw = [RawResponse(PROVIDER, SAMPLE_BUNDLE, sample_id, bundle) for sample_id, bundle in bundles.items()]
    key = pseudonym_key(settings)
    result = concat_results(
        (
            transform_gencove_bundles(bundles, key=key, source=source, observed_at=observed_at),
            transform_raw_responses(raw, observed_at=observed_at),
            transform_fetch_failures(failures, observed_at=observed_at),
            *(
                listing_tables(
                    [detail_as_list_item(item) for item in items],
                    project_id=project_id,
                    key=key,
                    source=source,
                    observed_at=observed_at,
                )
                for project_id, items in not_final.items()
            ),
        )
    )
    tally.results_fetched += len(bundles)
    await land(settings, result, tally)
    return tally


@task(name="gencove-reprocess-batch", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
async def reprocess_batch(settings: Settings, samples: dict[str, str]) -> RunTally:
    """Transform the newest stored raw responses of a batch of samples (id -> project) again, offline."""
    tally = RunTally()
    lake = data_paths(settings).lake
    key = pseudonym_key(settings)
    observed_at = datetime.now(UTC)
    parts = [
        transform_gencove_bundles(
            latest_raw_responses(lake, PROVIDER, SAMPLE_BUNDLE, list(samples)),
            key=key,
            source="backfill",
            observed_at=observed_at,
        )
    ]
    for project_id in sorted(set(samples.values())):
        ids = [sample_id for sample_id, project in samples.items() if project == project_id]
        items = latest_raw_responses(lake, PROVIDER, listing_endpoint(project_id), ids)
        parts.append(
            listing_tables(
                list(items.values()),
                project_id=project_id,
                key=key,
                source="backfill",
                observed_at=observed_at,
            )
        )
    result = concat_results(parts)
    tally.results_fetched += result.table("kits").num_rows
    land_result(settings, result, tally)
    return tally


async def run_gencove_sync(
    settings: Settings,
    plan: GencovePlan,
    *,
    project_ids: list[str],
    run: RunRecorder,
    extra_samples: dict[str, str] | None = None,
    list_projects: bool = True,
) -> None:
    """List every project from its cursor and fetch the details of every final sample not fetched yet; each
    batch's counts go to `run` (which loads as the rows pile up).

    Details do not wait for the listing: a batch starts as soon as a batch's worth of final samples is known
    (from the plan, webhook pushes, or the pages listed so far), the rest when the listing ends. The listing
    and the details batches share the run's concurrency as BATCHES_IN_FLIGHT batches do (`Pipeline`): the
    partner is kept busy while the keyset listing walks its pages one after another.
    """
    size = settings.batch_size
    share = share_of_concurrency(settings)
    overlap = timedelta(minutes=settings.gencove_cursor_overlap_minutes)
    pipeline: Pipeline[RunTally] = Pipeline()
    scheduled: set[str] = set()
    pending: list[str] = []

    def fetch_details(samples: Iterable[str], *, all_known: bool = False) -> None:
        """Queue details batches for samples not queued yet: full batches now, a short one once
        `all_known` (no more samples will be named)."""
        for sample_id in samples:
            if sample_id not in scheduled:
                scheduled.add(sample_id)
                pending.append(sample_id)
        while len(pending) >= size or (all_known and pending):
            batch = pending[:size]
            del pending[:size]
            run.expect(RESULTS, len(batch))
            pipeline.add(partial(run_batch, details_batch, share, batch))

    known_before = {**plan.samples_missing_details, **(extra_samples or {})}

    def listed_final(final: dict[str, str]) -> None:
        # The samples known before the listing wait for its first page: a refused key or an unreachable
        # partner then stops the run at its first request, not at one per batch started beside it.
        fetch_details(known_before)
        fetch_details(s for s in final if s not in plan.details_fetched)

    async def listing(projects: list[str]) -> RunTally:
        """One project's listing; the next project's is queued first when it ends, so each project's
        tally (and so how far its listing got) is counted as soon as it is done."""
        project_id, rest = projects[0], projects[1:]
        cursor = plan.cursors.get(project_id)
        # quote(): Prefect would otherwise walk every entry of the map (every known sample) for each task
        # (visit_collection, ~0.1 ms an entry); the task still receives the plain dict.
        listed, final = await list_project(
            share,
            project_id,
            None if cursor is None else cursor - overlap,
            quote(plan.known),
            on_final=listed_final,
        )
        listed_final(final)
        if rest:
            pipeline.add(partial(listing, rest), first=True)
        else:
            fetch_details((), all_known=True)
        return listed

    if list_projects and project_ids:
        pipeline.add(partial(listing, list(project_ids)))
    else:
        fetch_details(known_before, all_known=True)
    async with aclosing(pipeline.outcomes()) as outcomes:
        async for tally in outcomes:
            await run.checkpoint(tally)


@flow(name="sync-gencove", log_prints=True)
async def sync_gencove(project_ids: list[str] | None = None, load: bool = True) -> dict[str, Any]:
    """Hourly Gencove sync of the configured projects.

    Args:
        project_ids: Gencove projects to sync (empty: setting KITSYNC_GENCOVE_PROJECT_IDS).
        load: load the warehouse at the end of the run (off: only the lake is written).
    """
    settings = await run_settings()
    projects = project_ids or list(settings.gencove_project_ids)
    parameters = {"project_ids": projects, "load": load}

    async def work() -> dict[str, Any]:
        async with RunRecorder(
            settings, flow="sync-gencove", provider=PROVIDER, parameters=parameters
        ) as run:
            run.final_load = load
            run.report = True
            run.load_when_quiet = False
            # Pending pushes land nothing before planning (they name samples to ask about): the recorder's
            # catch-up load (only when files wait) is all the plan needs. One client for every batch here.
            pushed, event_ids = pending_gencove_samples(settings)
            plan = gencove_plan(data_paths(settings).warehouse, projects)
            pushed = {s: p for s, p in pushed.items() if s not in plan.details_fetched}
            async with run_clients(settings, PROVIDER):
                await run_gencove_sync(settings, plan, project_ids=projects, run=run, extra_samples=pushed)
            consume_gencove_events(settings, event_ids)
        return run.summary

    return await run_exclusively(settings, PROVIDER, work)
