"""One run's bookkeeping: its sync_runs row, its warehouse loads and the summary people read.

Every flow wraps its work in a `RunRecorder`: whatever happens inside, the run ends with a sync_runs row
(completed or failed), a final load, and a Prefect markdown + table artifact with the run's counts
(`flows.summary`). On entering, it catches the warehouse up with the lake when files wait there, and lands the
reference tables (status map, stages) the warehouse lacks.

A completed sync that landed nothing but its own sync_runs row skips the final load, and with it the publish
(a copy of the whole warehouse file): the row waits in the lake and the next load that has anything else to
do loads and publishes it (`load_when_quiet`). A run that failed, or could not read everything, loads and
publishes at once: the warehouse says at once what Prefect says.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from extract.errors import PartnerUnusable
from flows.heap import freeze_startup_objects
from flows.outcomes import RunCannotWork, run_cannot_work
from flows.progress import current as progress_display
from flows.runtime import data_paths
from flows.settings import Settings
from flows.summary import publish_summary
from flows.tally import RunTally
from transform import lifecycle_stages_table, status_map_table, transform_sync_run
from warehouse.batches import write_tables
from warehouse.load import LoadReport, load
from warehouse.state import holds_tables
from warehouse.waiting import files_waiting

# The run's own record: a file of this table alone waiting in the lake calls for no load (see the docstring).
BOOKKEEPING_TABLES = ("sync_runs",)


def _flow_run_id() -> str:
    """Prefect's id for the current flow run, or a fresh one outside Prefect (e.g. a plain function call)."""
    try:
        from prefect.runtime import flow_run

        run_id = flow_run.id
    except Exception:
        run_id = None
    return str(run_id) if run_id else str(uuid.uuid4())


def _run_state(exc: BaseException | None) -> str:
    """The sync_runs state of a run that ended with `exc`: interrupted (Ctrl-C, a cancelled task: Prefect
    says Crashed or Cancelled) is told apart from failed (an error: Prefect says Failed)."""
    if exc is None:
        return "completed"
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
        return "interrupted"
    return "failed"


class RunRecorder:
    """Async context manager around one flow run; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        flow: str,
        provider: str,
        parameters: dict[str, Any],
        catch_up: bool = True,
    ) -> None:
        """`catch_up=False`: the flow calls `catch_up()` itself, once it has landed what must be loaded
        before it plans (webhook events)."""
        self.settings = settings
        self.flow = flow
        self.provider = provider
        self.parameters = parameters
        self.tally = RunTally()
        self.run_id = _flow_run_id()
        self.started_at = datetime.now(UTC)
        self.loads: list[LoadReport] = []
        self.summary: dict[str, Any] = {}
        self.summary_extra: dict[str, Any] = {}  # flow-specific figures for the summary and artifact
        self._clock = time.monotonic()
        self.final_load = True
        self.report = False  # sync flows: refresh the cohort report when the run changed something
        self._rows_at_last_load = 0
        self._catch_up_on_enter = catch_up
        self._landed_reference = False
        self._unpublished_load = False  # a load committed what no publish has shown analysts yet
        # Hourly syncs turn this off: a completed run that landed nothing but its sync_runs row skips the
        # final load and its publish (the row is loaded by the next load with anything else to do).
        self.load_when_quiet = True

    async def __aenter__(self) -> Self:
        freeze_startup_objects()  # a flow run starts: what is alive now is the process's long-lived core
        display = progress_display()
        if display is not None:
            display.start_run(self.flow)
        if self._catch_up_on_enter:
            await self.catch_up()
        return self

    async def catch_up(self) -> None:
        """Load what waits in the lake (if anything), then land the reference tables the warehouse lacks.

        This machine's warehouse is a cache of the lake: catch it up first, so the plan sees what runs on
        other workers landed (an empty data directory loads the whole lake once, then refetches nothing).
        When nothing waits (most hourly runs) there is no load: asking costs a look at the published ledger
        and the lake listing, a load costs the writer lock, file, migration check and checkpoint.
        """
        paths = data_paths(self.settings)
        if await asyncio.to_thread(files_waiting, paths.lake, paths.warehouse, ignore=BOOKKEEPING_TABLES):
            await self.load_warehouse()
        # The reference tables (status map, stages) ride along with a run whenever the warehouse lacks their
        # current content (a first run, or code that changed the vocabulary), so views never lack them and an
        # hourly run with nothing new writes nothing.
        observed_at = datetime.now(UTC)
        reference = {
            "status_map": status_map_table(observed_at),
            "lifecycle_stages": lifecycle_stages_table(observed_at),
        }
        if not holds_tables(paths.warehouse, reference):
            write_tables(paths.lake, reference, ingest_date=observed_at.date())
            self._landed_reference = True

    async def load_warehouse(self, *, publish: bool = True) -> LoadReport:
        """Load every lake file not loaded yet (waits for another run's load to finish first)."""
        paths = data_paths(self.settings)
        report = await asyncio.to_thread(
            load,
            paths.lake,
            paths.warehouse,
            lock_timeout=self.settings.load_timeout_seconds,
            publish=publish,
        )
        self.loads.append(report)
        if report.published or (not publish and report.tables):
            self._unpublished_load = not report.published
        self._rows_at_last_load = sum(self.tally.rows_written.values())
        return report

    def expect(self, measure: str, more: int) -> None:
        """Tell the terminal's progress display (if any) that `more` items of `measure` are planned."""
        display = progress_display()
        if display is not None:
            display.expect(measure, more)

    async def checkpoint(self, tally: RunTally) -> None:
        """Count a finished batch into the run, and load (without publishing) once enough rows piled up.

        Loading as the run goes keeps memory flat however many kits a run fetches: no single load stages
        more than about `load_every_rows` rows. Loads are idempotent, so a crash after one loses nothing.
        """
        self.tally += tally
        display = progress_display()
        if display is not None:
            display.advance(tally)
        if sum(self.tally.rows_written.values()) - self._rows_at_last_load >= self.settings.load_every_rows:
            await self.load_warehouse(publish=False)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        state = _run_state(exc)
        finished_at = datetime.now(UTC)
        counts = self.tally.as_dict()
        counts["seconds"] = round(time.monotonic() - self._clock, 3)
        # A partner that refused our credentials or cannot be reached fails the run with one line naming
        # what to check (a RunCannotWork), recorded as the run's error too.
        blocked = run_cannot_work(exc, self.settings) if isinstance(exc, PartnerUnusable) else None
        if blocked is not None:
            counts["error"] = f"{RunCannotWork.__name__}: {blocked}"[:500]
        elif exc is not None:
            counts["error"] = f"{type(exc).__name__}: {exc}"[:500]
        self._record(state, counts, finished_at)
        # A run stopped by an unusable partner broke nothing here: it still publishes what it landed and its
        # own failed sync_runs row, so the warehouse says at once what Prefect says.
        quiet = exc is None and not self.load_when_quiet and self._landed_only_its_record()
        if quiet:
            self.summary_extra["final_load"] = "skipped: the run landed nothing but its sync_runs row"
        if (exc is None or blocked is not None) and self.final_load and not quiet:
            try:
                await self.load_warehouse()
            except BaseException as error:
                # The final load did not happen (a full disk, Ctrl-C): the run did not complete, and its row,
                # newer than the one just written, says so as Prefect will.
                state = _run_state(error)
                counts["error"] = f"{type(error).__name__}: {error}"[:500]
                self._record(state, counts, datetime.now(UTC))
                raise
        self.summary = {
            "run_id": self.run_id,
            "flow": self.flow,
            "state": state,
            **self._completeness_fields(counts),
            **counts,
            **self.summary_extra,
        }
        self.summary["warehouse"] = str(data_paths(self.settings).warehouse)
        self.summary["warehouse_loads"] = len(self.loads)
        if exc is None and self._report_due():
            self.summary["report"] = await self._publish_report()
        await publish_summary(self.flow, self.summary)
        if blocked is not None:
            raise blocked from exc

    def _record(self, state: str, counts: dict[str, Any], finished_at: datetime) -> None:
        """Land the run's sync_runs row (a later row of the same run replaces it at the next load)."""
        complete, incomplete_reason = self._completeness(counts.get("error"))
        row = transform_sync_run(
            {
                "run_id": self.run_id,
                "flow": self.flow,
                "provider": self.provider,
                "started_at": self.started_at,
                "finished_at": finished_at,
                "state": state,
                "counts": counts,
                "parameters": self.parameters,
                "complete": complete,
                "incomplete_reason": incomplete_reason,
            },
            observed_at=finished_at,
        )
        write_tables(data_paths(self.settings).lake, row.tables, ingest_date=finished_at.date())

    def _landed_only_its_record(self) -> bool:
        """Whether the run wrote nothing to the lake but its own sync_runs row, read everything it set out
        to (an incomplete run is published at once, as a failed one), and left no load unpublished."""
        return (
            not any(self.tally.rows_written.values())
            and not self._landed_reference
            and not self.tally.incomplete
            and not self.tally.requests_failed
            and not self._unpublished_load
        )

    def _completeness_fields(self, counts: dict[str, Any]) -> dict[str, Any]:
        """The summary's `complete` (and `incomplete_reason` when it is false), as the sync_runs row says."""
        complete, incomplete_reason = self._completeness(counts.get("error"))
        reason = {"incomplete_reason": incomplete_reason} if incomplete_reason else {}
        return {"complete": complete, **reason}

    def _completeness(self, error: str | None) -> tuple[bool, str | None]:
        """Whether the run can prove it read everything it set out to, and if not, why not (one line)."""
        if error is not None:
            return False, f"the run failed: {error}"
        if not self.tally.incomplete:
            return True, None
        reasons = "; ".join(f"{what} (x{n})" for what, n in sorted(self.tally.incomplete.items()))
        return False, reasons[:1000]

    def _report_due(self) -> bool:
        changed = self.tally.status_changes or self.tally.results_fetched
        return self.report and self.final_load and self.settings.report_after_sync and bool(changed)

    async def _publish_report(self) -> dict[str, Any]:
        """The cohort report and its artifact, summed up for the run's summary (never fails the sync)."""
        from flows.report import report_for_run_summary

        return await report_for_run_summary(self.settings)
