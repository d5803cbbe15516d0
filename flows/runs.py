"""One run's bookkeeping: its sync_runs row, its warehouse loads and the summary artifact people read.

Every flow wraps its work in a `RunRecorder`: whatever happens inside, the run ends with a sync_runs row
(completed or failed), a final load, and a Prefect markdown + table artifact with the run's counts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from extract.errors import PartnerUnusable
from flows.heap import freeze_startup_objects
from flows.outcomes import RunCannotWork, run_cannot_work
from flows.progress import current as progress_display
from flows.runtime import data_paths
from flows.settings import Settings
from flows.tally import RunTally
from transform import lifecycle_stages_table, status_map_table, transform_sync_run
from transform.result import TransformResult
from warehouse.batches import write_tables
from warehouse.load import LoadReport, load
from warehouse.publish import RunInProgress, run_lock
from warehouse.state import KnownStatus, holds_tables

T = TypeVar("T")
B = TypeVar("B")
logger = logging.getLogger("kitsync.flows")


def land_result(settings: Settings, result: TransformResult, tally: RunTally) -> None:
    """Write a batch's tables to the lake (one file per table and partition) and count them."""
    written = write_tables(data_paths(settings).lake, result.tables, ingest_date=datetime.now(UTC).date())
    tally.count_result(result, written)


@contextmanager
def sync_lock(settings: Settings, name: str) -> Iterator[None]:
    """One run of a sync at a time per data directory (RunInProgress for the second one)."""
    with run_lock(data_paths(settings).data_dir / "locks" / f"sync-{name}.lock", what=f"{name} sync"):
        yield


def run_logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """Prefect's run logger inside a flow or task run (so the UI shows it), kitsync's own logger outside."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return logger


def cannot_work_state(error: RunCannotWork) -> Any:
    """The Failed state a flow returns when a partner cannot be used: Prefect shows its one line as the run's
    message (no traceback: nothing is broken in kitsync), and a caller of the flow gets `error` raised."""
    from prefect.states import Failed

    return Failed(message=str(error), data=error)


async def run_exclusively(
    settings: Settings, name: str, work: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """Run `work` holding the `name` sync's lock; if another run holds it, step aside with a clear message.

    A partner that refused our credentials or could not be reached ends the run Failed, as its state (see
    `cannot_work_state`)."""
    try:
        with sync_lock(settings, name):
            return await work()
    except RunInProgress as busy:
        run_logger().warning("%s", busy)
        return {"flow": name, "state": "skipped", "reason": str(busy)}
    except RunCannotWork as error:
        return cannot_work_state(error)  # type: ignore[no-any-return]


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """Consecutive slices of at most `size` items: the unit of work of one task."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


# Batch tasks a sync runs at once, sharing its KITSYNC_CONCURRENCY between them (see `pipelined`).
BATCHES_IN_FLIGHT = 2


def share_of_concurrency(settings: Settings) -> Settings:
    """The settings for one of BATCHES_IN_FLIGHT concurrent batches: together they keep `concurrency`
    requests in flight as one batch did (rounded up to a multiple of BATCHES_IN_FLIGHT)."""
    return settings.model_copy(update={"concurrency": -(-settings.concurrency // BATCHES_IN_FLIGHT)})


async def pipelined(
    batches: Iterable[B], work: Callable[[B], Awaitable[T]], *, in_flight: int = BATCHES_IN_FLIGHT
) -> AsyncIterator[T]:
    """Each batch's outcome, in batch order, with up to `in_flight` batches running at once.

    One batch at a time left the partner idle for everything a batch costs besides its requests: Prefect's
    task bookkeeping, a new client and token, the drain while its last requests finish, its lake write. The
    next batch's requests now run meanwhile. If a batch fails, those started after it are cancelled (use
    with `contextlib.aclosing`, so that also happens when the consumer stops early).
    """
    pending: deque[asyncio.Future[T]] = deque()
    try:
        for batch in batches:
            pending.append(asyncio.ensure_future(work(batch)))
            if len(pending) >= in_flight:
                yield await pending.popleft()
        while pending:
            yield await pending.popleft()
    finally:
        for future in pending:
            future.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def is_change(previous: KnownStatus | None, status: object, date: object) -> bool:
    """Whether a polled (status, date) differs from the latest the warehouse held: a status change."""
    if previous is None:
        return True
    if previous.partner_status != status or not isinstance(date, str):
        return previous.partner_status != status
    try:
        return datetime.fromisoformat(date) != previous.partner_date
    except ValueError:
        return True


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

    def __init__(self, settings: Settings, *, flow: str, provider: str, parameters: dict[str, Any]) -> None:
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

    async def __aenter__(self) -> Self:
        freeze_startup_objects()  # a flow run starts: what is alive now is the process's long-lived core
        display = progress_display()
        if display is not None:
            display.start_run(self.flow)
        # The reference tables (status map, stages) ride along with a run whenever the warehouse lacks their
        # current content (a first run, or code that changed the vocabulary), so views never lack them and an
        # hourly run with nothing new writes nothing.
        # This machine's warehouse is a cache of the lake: catch it up first, so the plan sees what runs on
        # other workers landed (an empty data directory loads the whole lake once, then refetches nothing).
        await self.load_warehouse()
        observed_at = datetime.now(UTC)
        paths = data_paths(self.settings)
        reference = {
            "status_map": status_map_table(observed_at),
            "lifecycle_stages": lifecycle_stages_table(observed_at),
        }
        if not holds_tables(paths.warehouse, reference):
            write_tables(paths.lake, reference, ingest_date=observed_at.date())
        return self

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
        if (exc is None or blocked is not None) and self.final_load:
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
        """The cohort report and its artifact; a report that fails to render never fails the sync."""
        from flows.report import publish_report

        try:
            report = await publish_report(self.settings)
        except Exception as error:  # the sync's data is loaded; only the picture is missing
            run_logger().warning("cohort report failed: %s: %s", type(error).__name__, error)
            return {"status": "failed", "error": f"{type(error).__name__}: {error}"[:300]}
        return {key: report.get(key) for key in ("status", "path", "artifact")}


def _markdown(summary: dict[str, Any]) -> str:
    lines = [f"# {summary['flow']} — {summary['state']}", ""]
    if summary.get("complete") is False:
        lines += [f"**Incomplete**: {summary.get('incomplete_reason', 'see below')}", ""]
    lines += ["| measure | value |", "|---|---|"]
    for key in (
        "orders_polled",
        "kits_polled",
        "status_changes",
        "results_fetched",
        "requests_failed",
        "seconds",
    ):
        lines.append(f"| {key.replace('_', ' ')} | {summary.get(key, 0)} |")
    for section in ("rows_written", "quarantined", "unknown_statuses", "deferred", "incomplete"):
        values = summary.get(section) or {}
        lines += ["", f"## {section.replace('_', ' ')}", ""]
        if not values:
            lines.append("none")
        else:
            lines += ["| what | count |", "|---|---|"]
            lines += [f"| {name} | {n} |" for name, n in values.items()]
    if "error" in summary:
        lines += ["", "## error", "", f"`{summary['error']}`"]
    lines += ["", f"Warehouse: `{summary['warehouse']}`"]
    return "\n".join(lines)


async def publish_summary(flow: str, summary: dict[str, Any]) -> None:
    """A markdown and a table artifact when running under Prefect; a log line either way."""
    logger.info("%s summary: %s", flow, json.dumps(summary, default=str))
    try:
        from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
        from prefect.context import FlowRunContext

        if FlowRunContext.get() is None:
            return
        key = flow.replace("_", "-")
        await acreate_markdown_artifact(
            markdown=_markdown(summary), key=f"{key}-summary", description="run summary"
        )
        rows = [{"table": name, "rows": n} for name, n in summary.get("rows_written", {}).items()]
        if rows:
            await acreate_table_artifact(table=rows, key=f"{key}-rows", description="rows written per table")
    except ImportError:  # pragma: no cover - prefect is a hard dependency; kept for library use
        return
