"""The run tally: quarantine rows counted per reason (a batch with quarantine rows once crashed the run)."""

from __future__ import annotations

from datetime import UTC, datetime

from flows.tally import RunTally
from transform.failures import FetchFailure, transform_fetch_failures

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_quarantine_rows_are_counted_per_reason() -> None:
    failures = [
        FetchFailure("biomesight", "kit", f"K{n}", "results.json", reason, "detail")
        for n, reason in enumerate(["not_found", "not_found", "malformed_response"])
    ]
    result = transform_fetch_failures(failures, observed_at=NOW)
    tally = RunTally()

    tally.count_result(result, {"quarantine": result.quarantine.num_rows})

    assert tally.quarantined == {"not_found": 2, "malformed_response": 1}
    assert tally.rows_written == {"quarantine": 3}
