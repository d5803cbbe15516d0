"""Build the report from a published warehouse: query the views, draw the charts, write one HTML file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from report.charts import (
    Chart,
    alpha_chart,
    both_tests_chart,
    failure_chart,
    funnel_chart,
    scores_chart,
    stuck_chart,
    taxa_heatmap,
    turnaround_chart,
)
from report.cohorts import DEFAULT_DIMENSION, cohort_dimensions
from report.data import ReportData, load_report_data
from report.headlines import Headlines, compute_headlines
from report.html import SECTIONS, render_page
from warehouse.files import replace_durably

# The page holds kit ids (stuck kits): readable by the account that made it, like the warehouse itself.


@dataclass(frozen=True)
class Report:
    """A rendered report: the page and what it found, for the CLI's message and the flows' artifact."""

    html: str
    dimension: str
    headlines: Headlines
    charts: dict[str, Chart | None]

    @property
    def findings(self) -> list[str]:
        """Each chart's title, in page order: the sentence a reader takes away from it."""
        return [chart.title for s in SECTIONS if (chart := self.charts.get(s.key)) is not None]


def draw_charts(data: ReportData) -> dict[str, Chart | None]:
    """One chart per section key (None where the warehouse has nothing to show yet)."""
    charts = {
        "funnel": funnel_chart(data.funnel_all, data.funnel, data.overview, data.dimension),
        "turnaround": turnaround_chart(data.turnaround),
        "failures": failure_chart(
            data.failures_by_provider, data.failures, data.cohort_sizes, data.overview, data.dimension
        ),
        "scores": scores_chart(data.scores, data.dimension),
        "taxa": taxa_heatmap(data.taxa_rows, data.taxa, data.profiled, data.dimension),
        "alpha": alpha_chart(data.alpha, data.dimension),
        "both_tests": both_tests_chart(data.trait_groups, data.both_tests),
        "stuck": stuck_chart(data.stuck, data.overview),
    }
    missing = {s.key for s in SECTIONS} - set(charts)
    if missing:  # a section added to the page without a chart function would silently show "no data"
        raise RuntimeError(f"no chart for report sections {sorted(missing)}")
    return charts


def render_report(
    db_path: str | os.PathLike[str],
    dimension: str = DEFAULT_DIMENSION,
    *,
    generated_at: datetime | None = None,
) -> Report:
    """The report of the published warehouse at `db_path`, with cohorts along `dimension`."""
    if dimension not in cohort_dimensions():
        raise ValueError(
            f"unknown cohort dimension {dimension!r}; choose from {', '.join(cohort_dimensions())}"
        )
    data = load_report_data(db_path, dimension)
    charts = draw_charts(data)
    headlines = compute_headlines(data)
    page = render_page(data, charts, headlines, generated_at=generated_at or datetime.now(UTC))
    return Report(html=page, dimension=dimension, headlines=headlines, charts=charts)


def write_atomically(path: Path, text: str) -> None:
    """A reader (a browser, a link in a Prefect artifact) sees the old report or the new one, never half of
    one: warehouse's one durable replace (owner-only, like everything kitsync writes)."""
    replace_durably(path, text.encode("utf-8"))


def write_report(
    db_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    dimension: str = DEFAULT_DIMENSION,
    *,
    generated_at: datetime | None = None,
) -> Report:
    """Render the report and write it to `out_path` atomically."""
    report = render_report(db_path, dimension, generated_at=generated_at)
    write_atomically(Path(out_path), report.html)
    return report
