"""The backfill: re-sync a slice of history on demand, in windows, resumable after a failure.

Started by hand (the Prefect UI renders the parameters as a form, or `kitsync backfill`). The slice is a date
range (purchase or sample date) or explicit kit/sample ids; it is cut into windows of `window_days`, each
window re-polls its orders and kits (source "backfill"), fetches the results that are missing (or all of
them with `refetch_results`), or with `reprocess_from_raw` transforms the stored raw responses again without
calling the partners. Finished windows are recorded, so the same backfill started again after a failure
skips them; progress is a Prefect progress artifact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field

from flows import biomesight, gencove
from flows.locks import cannot_work_state
from flows.logs import run_logger
from flows.outcomes import RunCannotWork
from flows.pipelining import chunks
from flows.progress import KITS, RESULTS
from flows.recorder import RunRecorder
from flows.runtime import data_paths, run_clients, run_settings
from flows.settings import Settings
from warehouse.checkpoints import BackfillLedger, backfill_key
from warehouse.state import BiomesightPlan, ready_biomesight_kits, select_biomesight, select_gencove

Provider = Literal["all", "biomesight", "gencove"]
DateField = Literal["purchase_date", "sample_date"]


class DateRange(BaseModel):
    """Backfill the kits bought (or sampled) from one day to another."""

    model_config = ConfigDict(title="a date range", extra="forbid")

    start_date: date = Field(description="First day of the slice (inclusive), by date_field.")
    end_date: date = Field(description="Last day of the slice (inclusive).")
    date_field: DateField = Field(
        "purchase_date",
        description="purchase_date or sample_date (Gencove samples use their creation date for both).",
    )


class KitIds(BaseModel):
    """Backfill these kits only."""

    model_config = ConfigDict(title="explicit kit ids", extra="forbid")

    kit_ids: list[str] = Field(
        min_length=1, description="Biomesight kit ids or Gencove sample ids (at least one)."
    )


class BackfillError(ValueError):
    """The backfill's parameters do not describe any work (the message says how to fix them)."""


@dataclass(frozen=True)
class Window:
    """One unit of a backfill: a date range, or explicit ids."""

    label: str
    first: date | None = None
    last: date | None = None
    ids: tuple[str, ...] = ()

    @property
    def dates(self) -> tuple[date, date] | None:
        return (self.first, self.last) if self.first is not None and self.last is not None else None


def plan_windows(
    *, start_date: date | None, end_date: date | None, kit_ids: list[str], window_days: int
) -> list[Window]:
    """Cut the backfill into windows; raises BackfillError for a slice that is empty or ill-formed."""
    if window_days < 1:
        raise BackfillError("window_days must be at least 1")
    if kit_ids:
        if start_date or end_date:
            raise BackfillError("give either kit ids or a date range, not both")
        return [Window(label="ids", ids=tuple(sorted(set(kit_ids))))]
    if start_date is None or end_date is None:
        raise BackfillError("give a date range (start_date and end_date) or explicit kit ids")
    if end_date < start_date:
        raise BackfillError(f"end_date {end_date} is before start_date {start_date}")
    windows = []
    first = start_date
    while first <= end_date:
        last = min(first + timedelta(days=window_days - 1), end_date)
        windows.append(Window(label=f"{first}..{last}", first=first, last=last))
        first = last + timedelta(days=1)
    return windows


async def _biomesight_window(
    settings: Settings, run: RunRecorder, window: Window, *, date_field: str, refetch: bool, reprocess: bool
) -> None:
    warehouse = data_paths(settings).warehouse
    selection = select_biomesight(
        warehouse, date_field=date_field, first=window.first, last=window.last, kit_ids=window.ids
    )
    if reprocess:
        entities = [("order", i) for i in selection.order_ids] + [("kit", i) for i in selection.kit_ids]
        for batch in chunks(entities, settings.batch_size):
            batch_tally = await biomesight.reprocess_batch(
                settings, [i for k, i in batch if k == "order"], [i for k, i in batch if k == "kit"]
            )
            await run.checkpoint(batch_tally)
        return
    # Re-poll every order and kit of the window, whatever the warehouse thinks of them...
    statuses = BiomesightPlan(orders_to_poll=selection.order_ids, kits_to_poll=selection.kit_ids)
    run.expect(KITS, len(statuses.orders_to_poll) + len(statuses.kits_to_poll))
    for batch in chunks(
        [("order", i) for i in statuses.orders_to_poll] + [("kit", i) for i in statuses.kits_to_poll],
        settings.batch_size,
    ):
        outcome = await biomesight.poll_batch(
            settings,
            [i for k, i in batch if k == "order"],
            [i for k, i in batch if k == "kit"],
            {},
            "backfill",
        )
        await run.checkpoint(outcome.tally)
    # ...then fetch results of the window's ready kits: the missing ones, or all with refetch_results.
    await run.load_warehouse()
    ready = ready_biomesight_kits(warehouse, selection.kit_ids)
    results_plan = BiomesightPlan(
        kits_missing_results=ready.ready if refetch else ready.missing_results,
        kits_missing_taxonomy=ready.ready if refetch else ready.missing_taxonomy,
    )
    await biomesight.run_biomesight_sync(settings, results_plan, run=run, source="backfill")


async def _gencove_window(
    settings: Settings, run: RunRecorder, window: Window, *, refetch: bool, reprocess: bool
) -> None:
    warehouse = data_paths(settings).warehouse
    if reprocess:
        known = select_gencove(warehouse, first=window.first, last=window.last, sample_ids=window.ids)
        for batch in chunks(sorted(known), settings.batch_size):
            await run.checkpoint(await gencove.reprocess_batch(settings, {s: known[s] for s in batch}))
        return
    final: dict[str, str] = dict.fromkeys(window.ids, "")
    if window.dates is not None:
        # Gencove samples have no purchase or sample date of their own: their creation (the kit order) is it.
        for project_id in settings.gencove_project_ids:
            listed, found = await gencove.list_project(
                settings, project_id, None, {}, source="backfill", created_window=window.dates
            )
            await run.checkpoint(listed)
            final.update(found)
    if not refetch:
        await run.load_warehouse()
        fetched = gencove.gencove_plan(warehouse, list(settings.gencove_project_ids)).details_fetched
        final = {s: p for s, p in final.items() if s not in fetched}
    run.expect(RESULTS, len(final))
    for batch in chunks(sorted(final), settings.batch_size):
        await run.checkpoint(await gencove.details_batch(settings, batch, source="backfill"))


@flow(name="backfill", log_prints=True)
async def backfill(
    *,
    kits: DateRange | KitIds,
    provider: Provider = "all",
    refetch_results: bool = False,
    reprocess_from_raw: bool = False,
    window_days: int = 30,
    start_over: bool = False,
) -> dict[str, Any]:
    """Re-sync a slice of history.

    Args:
        kits: which kits to backfill (required): a date range, or a list of kit ids.
        provider: which partner to backfill: biomesight, gencove or all.
        refetch_results: fetch results again even for kits whose results are already loaded.
        reprocess_from_raw: transform the stored raw responses again instead of calling the partners.
        window_days: days per window; each finished window is recorded and skipped by a re-run.
        start_over: forget the finished windows of an earlier run of this same backfill.
    """
    # `kits` is required and typed, so the server refuses a form submitted without it before any run exists
    # (deployments enforce their parameter schema), instead of a run that fails as it starts.
    settings = await run_settings()
    if isinstance(kits, KitIds):
        start_date, end_date, date_field, kit_ids = None, None, "purchase_date", list(kits.kit_ids)
    else:
        start_date, end_date, date_field, kit_ids = kits.start_date, kits.end_date, kits.date_field, []
    windows = plan_windows(start_date=start_date, end_date=end_date, kit_ids=kit_ids, window_days=window_days)
    parameters = {
        "provider": provider,
        "start_date": start_date,
        "end_date": end_date,
        "date_field": date_field,
        "kit_ids": sorted(kit_ids),
        "refetch_results": refetch_results,
        "reprocess_from_raw": reprocess_from_raw,
        "window_days": window_days,
    }
    ledger = BackfillLedger(data_paths(settings).lake, backfill_key(parameters))
    if start_over:
        ledger.reset()
    done = ledger.done()
    providers = ("biomesight", "gencove") if provider == "all" else (provider,)
    progress = await _Progress.start(len(windows), len(done & {w.label for w in windows}))
    try:
        async with RunRecorder(settings, flow="backfill", provider=provider, parameters=parameters) as run:
            # One client (and token) per partner for the whole backfill, shared by its batches.
            async with run_clients(settings, *providers):
                for window in windows:
                    if window.label in done:
                        run.tally.deferred[f"window {window.label}: already done"] += 1
                        continue
                    if "biomesight" in providers:
                        await _biomesight_window(
                            settings,
                            run,
                            window,
                            date_field=date_field,
                            refetch=refetch_results,
                            reprocess=reprocess_from_raw,
                        )
                    if "gencove" in providers:
                        await _gencove_window(
                            settings, run, window, refetch=refetch_results, reprocess=reprocess_from_raw
                        )
                    await run.load_warehouse()
                    ledger.mark_done(window.label)
                    await progress.advance()
                    run_logger().info("backfill window %s done", window.label)
            run.summary_extra["windows"] = len(windows)
            run.summary_extra["windows_skipped"] = len(done & {w.label for w in windows})
    except RunCannotWork as error:
        return cannot_work_state(error)  # type: ignore[no-any-return]
    return run.summary


class _Progress:
    """A Prefect progress artifact (inside a flow run; nothing outside one)."""

    def __init__(self, artifact_id: Any, total: int, finished: int) -> None:
        self.artifact_id = artifact_id
        self.total = max(total, 1)
        self.finished = finished

    @classmethod
    async def start(cls, total: int, finished: int) -> _Progress:
        from prefect.artifacts import acreate_progress_artifact
        from prefect.context import FlowRunContext

        artifact_id = None
        if FlowRunContext.get() is not None:
            artifact_id = await acreate_progress_artifact(
                progress=100.0 * finished / max(total, 1), key="backfill-progress", description="windows done"
            )
        return cls(artifact_id, total, finished)

    async def advance(self) -> None:
        from prefect.artifacts import aupdate_progress_artifact

        self.finished += 1
        if self.artifact_id is not None:
            await aupdate_progress_artifact(self.artifact_id, progress=100.0 * self.finished / self.total)
