"""What a run did, counted as it goes: the numbers behind sync_runs rows and run-summary artifacts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow.compute as pc

from transform.result import TransformResult


@dataclass
class RunTally:
    """Counts one batch or one whole run; batches add up with `+=`."""

    orders_polled: int = 0
    kits_polled: int = 0
    status_changes: int = 0
    results_fetched: int = 0
    requests_failed: int = 0
    rows_written: Counter[str] = field(default_factory=Counter)
    quarantined: Counter[str] = field(default_factory=Counter)  # reason -> rows
    unknown_statuses: Counter[str] = field(default_factory=Counter)  # "provider:status" -> times seen
    deferred: Counter[str] = field(default_factory=Counter)  # why work was left for the next run -> items
    # What the run could not prove it read in full (a listing cut short, a fetch that failed) -> times: a run
    # with any is recorded as incomplete, whatever its state.
    incomplete: Counter[str] = field(default_factory=Counter)
    # Gencove project -> the newest `modified` its keyset listing handed out (ISO 8601): where the next
    # run's listing resumes. Only the keyset listing moves it: sample details or a backfill's window listing
    # show newer `modified` values of samples the listing has not reached, so they must not.
    listed_through: dict[str, str] = field(default_factory=dict)

    def __iadd__(self, other: RunTally) -> RunTally:
        self.orders_polled += other.orders_polled
        self.kits_polled += other.kits_polled
        self.status_changes += other.status_changes
        self.results_fetched += other.results_fetched
        self.requests_failed += other.requests_failed
        self.rows_written.update(other.rows_written)
        self.quarantined.update(other.quarantined)
        self.unknown_statuses.update(other.unknown_statuses)
        self.deferred.update(other.deferred)
        self.incomplete.update(other.incomplete)
        for project_id, moment in other.listed_through.items():
            mine = self.listed_through.get(project_id)
            if mine is None or datetime.fromisoformat(moment) > datetime.fromisoformat(mine):
                self.listed_through[project_id] = moment
        return self

    def count_result(self, result: TransformResult, written: dict[str, int]) -> None:
        """Add a written batch: rows per table, quarantine reasons, unknown statuses."""
        self.rows_written.update(written)
        quarantine = result.quarantine
        if quarantine.num_rows:
            # value_counts gives one {"values", "counts"} struct per reason (unpacking one yields its keys)
            for pair in pc.value_counts(quarantine.column("reason")).to_pylist():
                self.quarantined[pair["values"]] += pair["counts"]
        self.unknown_statuses.update(result.unknown_status_counts())

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able counts, sorted for stable artifacts."""
        return {
            "orders_polled": self.orders_polled,
            "kits_polled": self.kits_polled,
            "status_changes": self.status_changes,
            "results_fetched": self.results_fetched,
            "requests_failed": self.requests_failed,
            "rows_written": dict(sorted(self.rows_written.items())),
            "quarantined": dict(sorted(self.quarantined.items())),
            "unknown_statuses": dict(sorted(self.unknown_statuses.items())),
            "deferred": dict(sorted(self.deferred.items())),
            "incomplete": dict(sorted(self.incomplete.items())),
            "listed_through": dict(sorted(self.listed_through.items())),
        }
