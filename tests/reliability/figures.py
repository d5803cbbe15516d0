"""The figures the reliability suite prints (the README's "Reliability" section quotes them).

Each test adds what it really exercised (a fault rule counts only if it fired, a bad input only if it was fed
to the code), so the numbers are measurements of this run, not constants. The row figures add up what the
content reconciliations found (tests/reliability/content.py: rows per table, not kits): a test that finds a
lost, unexpected or duplicate row also fails, so a green run prints zeros beside the rows it compared.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

LABELS = {
    "fault_scenarios": "fault scenarios run (endpoint x fault kind, each seen to fire)",
    "bad_inputs": "bad inputs tried (transforms, webhook receiver, command line)",
    "crash_points": "crash points tested (SIGKILL, then a normal re-run)",
    "events_delivered": "webhook events delivered (load test and attacks)",
    "rows_reconciled": "rows reconciled by content with the sandbox's ground truth (after each final run)",
    "rows_lost": "rows lost (missing, or held with a wrong value)",
    "rows_unexpected": "rows no partner showed",
    "duplicates": "duplicate rows",
}


@dataclass
class Figures:
    """Thread-safe counters, with a breakdown per category for the terminal summary."""

    totals: Counter[str] = field(default_factory=Counter)
    detail: dict[str, Counter[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, figure: str, n: int = 1, *, what: str | None = None) -> None:
        if figure not in LABELS:
            raise KeyError(f"unknown figure {figure!r}")
        with self._lock:
            self.totals[figure] += n
            if what is not None:
                self.detail.setdefault(figure, Counter())[what] += n

    def lines(self) -> list[str]:
        """One line per figure, then the breakdowns."""
        with self._lock:
            lines = [f"{self.totals[name]:>7}  {label}" for name, label in LABELS.items()]
            for name, counts in self.detail.items():
                parts = ", ".join(f"{what} {n}" for what, n in sorted(counts.items()))
                lines.append(f"         {name}: {parts}")
        return lines

    def as_dict(self) -> dict[str, object]:
        """Plain data, so a pytest-xdist worker can hand its figures to the controller."""
        with self._lock:
            return {"totals": dict(self.totals), "detail": {k: dict(v) for k, v in self.detail.items()}}

    def merge(self, figures: dict[str, object]) -> None:
        """Add a worker's `as_dict()` (the controller prints the sum over all workers)."""
        totals, detail = figures.get("totals", {}), figures.get("detail", {})
        with self._lock:
            self.totals.update(totals)  # type: ignore[arg-type]
            for name, counts in detail.items():  # type: ignore[union-attr]
                self.detail.setdefault(name, Counter()).update(counts)

    @property
    def touched(self) -> bool:
        return bool(self.totals) or bool(self.detail)


FIGURES = Figures()
