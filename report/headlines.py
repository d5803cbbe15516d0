"""The report's headline numbers: the few figures people read first, as page cards and as Prefect markdown."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from report.cohorts import dimension_name
from report.data import ReportData
from report.words import provider_name


@dataclass(frozen=True)
class Headline:
    """One card: a big value, what it is, and the detail that keeps it honest (its n, its breakdown)."""

    label: str
    value: str
    detail: str


@dataclass(frozen=True)
class Headlines:
    """The numbers behind the cards, kept as numbers so flows can return them as JSON."""

    dimension: str
    as_of: datetime | None
    kits: int
    kits_by_provider: dict[str, int]
    kits_with_results: int
    median_days_to_results: dict[str, float]
    kits_finished: int
    kits_off_path: int
    stuck_kits: int

    @property
    def results_share(self) -> float:
        return self.kits_with_results / self.kits if self.kits else 0.0

    @property
    def off_path_share(self) -> float:
        return self.kits_off_path / self.kits_finished if self.kits_finished else 0.0

    def cards(self) -> list[Headline]:
        by_provider = ", ".join(f"{n} {provider_name(p)}" for p, n in self.kits_by_provider.items())
        turnaround = [
            Headline(f"{provider_name(p)} order → results", f"{days:.0f} days", "median, kits with results")
            for p, days in self.median_days_to_results.items()
        ]
        return [
            Headline("kits tracked", f"{self.kits}", by_provider or "no kits yet"),
            Headline(
                "results delivered",
                f"{100 * self.results_share:.0f}%",
                f"{self.kits_with_results} of {self.kits} kits",
            ),
            *turnaround,
            Headline(
                "failed or off the path",
                f"{100 * self.off_path_share:.1f}%",
                f"{self.kits_off_path} of {self.kits_finished} finished kits",
            ),
            Headline("stuck kits", f"{self.stuck_kits}", "longer in their stage than its p95"),
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, for a flow's return value."""
        return {
            "cohort_dimension": self.dimension,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "kits": self.kits,
            "kits_by_provider": dict(self.kits_by_provider),
            "kits_with_results": self.kits_with_results,
            "median_days_to_results": {p: round(d, 1) for p, d in self.median_days_to_results.items()},
            "kits_finished": self.kits_finished,
            "kits_off_path": self.kits_off_path,
            "stuck_kits": self.stuck_kits,
        }


def compute_headlines(data: ReportData) -> Headlines:
    overview = data.overview
    medians = {
        str(row.provider): float(row.median_days_total)
        for row in overview.itertuples()
        if row.median_days_total is not None and not math.isnan(row.median_days_total)
    }
    return Headlines(
        dimension=data.dimension,
        as_of=data.as_of,
        kits=int(overview["kits"].sum()),
        kits_by_provider={
            str(p): int(n) for p, n in zip(overview["provider"], overview["kits"], strict=True)
        },
        kits_with_results=int(overview["kits_with_results"].sum()),
        median_days_to_results=medians,
        kits_finished=int(overview["kits_final"].sum()),
        kits_off_path=int(data.failures_by_provider["kits_failed"].sum()),
        stuck_kits=len(data.stuck),
    )


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def headlines_markdown(headlines: Headlines, *, report_link: str, findings: list[str] | None = None) -> str:
    """The Prefect artifact: headline table, the charts' findings, and where the full report is."""
    as_of = f"{headlines.as_of:%Y-%m-%d %H:%M} UTC" if headlines.as_of else "no partner dates yet"
    lines = [
        "# Cohort report",
        "",
        f"Data as of {as_of}; cohorts by {dimension_name(headlines.dimension)}.",
        "",
        "| headline | value | detail |",
        "|---|---|---|",
        *(
            f"| {_markdown_cell(c.label)} | {_markdown_cell(c.value)} | {_markdown_cell(c.detail)} |"
            for c in headlines.cards()
        ),
    ]
    if findings:
        lines += ["", "## Findings", "", *(f"- {_markdown_cell(f)}" for f in findings)]
    lines += ["", f"Full report (charts, numbers behind them): [{report_link}]({report_link})"]
    return "\n".join(lines) + "\n"
