"""Progress of a long run on a terminal: kits polled, results fetched, rows written, their rate and time left.

A first sync or a backfill of thousands of kits runs for minutes; on a terminal the command shows rich's
progress bars while it works. Anywhere else (a worker, a pipe, a log file, CI) nothing is drawn: the run's
summary and Prefect's log say what happened. Runs report through `RunRecorder`, which finds the display here.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from flows.tally import RunTally

KITS = "kits polled"
RESULTS = "results fetched"
ROWS = "rows written"


def _rate(task: Task) -> float | None:
    """Items per second since the measure started. Work arrives a batch (hundreds of kits) at a time, so
    rich's own speed, over its last few updates, would stay blank for most runs."""
    elapsed = task.finished_time if task.finished else task.elapsed
    return task.completed / elapsed if elapsed and task.completed else None


class RateColumn(ProgressColumn):
    """Items per second (blank until the first batch is counted)."""

    def render(self, task: Task) -> Text:
        rate = _rate(task)
        return Text(f"{rate:,.0f}/s" if rate else "", style="progress.data.speed")


class TimeLeftColumn(ProgressColumn):
    """Time left at the rate so far, for a measure whose total is known."""

    def render(self, task: Task) -> Text:
        rate = _rate(task)
        if task.total is None or not rate:
            return Text("", style="progress.remaining")
        seconds = max(task.total - task.completed, 0) / rate
        return Text(f"{int(seconds) // 60}:{int(seconds) % 60:02d} left", style="progress.remaining")


# The measures of the run whose code is running: `kitsync sync` runs both partners' flows at once in one event
# loop, each in its own asyncio context, and each run's counts go to its own lines.
_run_measures: ContextVar[dict[str, TaskID] | None] = ContextVar("kitsync_run_measures", default=None)


class RunProgress:
    """One line per measure of each run; measures with a known total get a bar and the time left."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeElapsedColumn(),
            TimeLeftColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def start_run(self, flow: str) -> None:
        """A new run: its own measures (a finished run's final counts stay on screen). Runs one after another
        in one context: the previous run's measures stop; runs at once: each counts on its own lines."""
        previous = _run_measures.get()
        for task_id in (previous or {}).values():
            self.progress.stop_task(task_id)
        self._tasks = {
            measure: self.progress.add_task(f"{flow}: {measure}", total=None)
            for measure in (KITS, RESULTS, ROWS)
        }
        _run_measures.set(self._tasks)

    def _measures(self) -> dict[str, TaskID]:
        """The current run's measures (the latest run's, outside any run's context)."""
        return _run_measures.get() or self._tasks

    def expect(self, measure: str, more: int) -> None:
        """`more` items of `measure` are now planned (a total known in parts, e.g. results after a poll)."""
        task_id = self._measures().get(measure)
        if task_id is None or more <= 0:
            return
        task = self.progress.tasks[task_id]
        self.progress.update(task_id, total=(task.total or task.completed) + more)

    def advance(self, tally: RunTally) -> None:
        """Count a finished batch."""
        done = {
            KITS: tally.orders_polled + tally.kits_polled,
            RESULTS: tally.results_fetched,
            ROWS: sum(tally.rows_written.values()),
        }
        measures = self._measures()
        for measure, n in done.items():
            task_id = measures.get(measure)
            if task_id is not None and n:
                self.progress.advance(task_id, n)


_display: RunProgress | None = None


def current() -> RunProgress | None:
    """The display of this process's command, if it has one (only on a terminal)."""
    return _display


@contextmanager
def shown_on_terminal(stream: TextIO | None = None) -> Iterator[RunProgress | None]:
    """Show the runs' progress while the block runs, if `stream` (stdout) is a terminal; else nothing."""
    global _display  # noqa: PLW0603 - one display per command process, found by the runs it shows
    stream = stream if stream is not None else sys.stdout
    if not stream.isatty():
        yield None
        return
    display = RunProgress(Console(file=stream))
    _display = display
    try:
        with display.progress:
            yield display
    finally:
        _display = None
