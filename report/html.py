"""The report page: one self-contained HTML document (inline CSS, charts as data URIs, no script, no links).

Every value that reaches the page is escaped here; the page opens from a file, an e-mail attachment or a
Prefect artifact link with no network.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from report.charts import Chart
from report.cohorts import dimension_name
from report.data import MIN_COHORT_KITS, TAXA_RANK, VIEWS, ReportData
from report.headlines import Headlines
from report.traits import measure_label, trait_findings
from report.words import RANK_PLURALS, provider_name

Table = pd.DataFrame


@dataclass(frozen=True)
class Section:
    """One part of the page: what it answers, how it was computed, and what to say when there is no data."""

    key: str
    heading: str
    about: str
    empty: str
    table: Callable[[ReportData], Table]
    views: tuple[str, ...]


def _funnel_table(data: ReportData) -> Table:
    rows = pd.concat([data.funnel_all.assign(dimension="all"), data.funnel.assign(dimension=data.dimension)])
    return pd.DataFrame(
        {
            "cohort": rows["cohort_value"],
            "stage": rows["stage"],
            "kits in cohort": rows["kits_in_cohort"],
            "kits reached": rows["kits_reached"],
            "% of cohort": 100 * rows["conversion_from_start"],
            "% of previous stage": 100 * rows["conversion_from_previous"],
        }
    )


def _turnaround_table(data: ReportData) -> Table:
    grouped = data.turnaround.groupby(["stage_order", "stage", "provider"])["days"]
    summary = grouped.describe(percentiles=[0.25, 0.5, 0.75, 0.9]).reset_index()
    return pd.DataFrame(
        {
            "stage": summary["stage"],
            "provider": summary["provider"].map(provider_name),
            "kits": summary["count"].astype(int),
            "p25 days": summary["25%"],
            "median days": summary["50%"],
            "p75 days": summary["75%"],
            "p90 days": summary["90%"],
        }
    )


def _failures_table(data: ReportData) -> Table:
    rows = pd.concat(
        [
            data.failures_by_provider.assign(dimension="provider"),
            data.failures.assign(dimension=data.dimension),
        ]
    ).drop_duplicates(["dimension", "cohort_value", "reason"])
    return pd.DataFrame(
        {
            "dimension": rows["dimension"],
            "cohort": rows["cohort_value"],
            "reason": rows["reason"],
            "kits": rows["kits_failed"],
            "finished kits": rows["kits_final"],
            "% of finished": 100 * rows["rate_of_final"],
            "% of all kits": 100 * rows["rate_of_all"],
        }
    )


def _scores_table(data: ReportData) -> Table:
    rows = data.scores
    return pd.DataFrame(
        {
            "score": rows["score_name"],
            "cohort": rows["cohort_value"],
            "kits": rows["n"],
            "p25": rows["p25"],
            "median": rows["median"],
            "p75": rows["p75"],
            "mean": rows["mean"],
        }
    )


def _taxa_table(data: ReportData) -> Table:
    rows = data.taxa
    return pd.DataFrame(
        {
            TAXA_RANK: rows["taxon"],
            "cohort": rows["cohort_value"],
            "kits with it": rows["kits_present"],
            "kits profiled": rows["kits_profiled"],
            "prevalence %": 100 * rows["prevalence"],
            "mean abundance %": 100 * rows["mean_abundance"],
        }
    )


def _alpha_table(data: ReportData) -> Table:
    grouped = data.alpha.groupby("cohort_value")
    summary = grouped.agg(
        kits=("kit_id", "count"),
        shannon=("shannon", "median"),
        simpson=("simpson", "median"),
        richness=("richness", "median"),
    ).reset_index()
    return summary.rename(
        columns={
            "cohort_value": "cohort",
            "shannon": "median Shannon (nats)",
            "simpson": "median Gini-Simpson",
            "richness": f"median {TAXA_RANK} richness",
        }
    )


def _stuck_table(data: ReportData) -> Table:
    rows = data.stuck
    return pd.DataFrame(
        {
            "provider": rows["provider"].map(provider_name),
            "kit": rows["kit_id"],
            "stage": rows["current_stage"],
            "partner status": rows["current_status"],
            "in stage since": rows["current_stage_since"],
            "days in stage": rows["days_in_current_stage"],
            "stage p95 days": rows["p95_days"],
            "days over p95": rows["days_over_p95"],
            "purchase month": rows["purchase_month"],
        }
    )


def _both_tests_table(data: ReportData) -> Table:
    rows = trait_findings(data.trait_groups)
    return pd.DataFrame(
        {
            "trait": rows["trait_key"],
            "grouped by": rows["grouping"].str.replace("_", " "),
            "measure": [
                measure_label(kind, measure)
                for kind, measure in zip(rows["measure_kind"], rows["measure"], strict=True)
            ],
            "higher group": rows["high_group"],
            "customers (higher)": rows["high_n"],
            "mean (higher)": rows["high_mean"],
            "lower group": rows["low_group"],
            "customers (lower)": rows["low_n"],
            "mean (lower)": rows["low_mean"],
            "effect size (d)": rows["effect_size"],
        }
    )


_TAXA = RANK_PLURALS.get(TAXA_RANK, TAXA_RANK)

SECTIONS: tuple[Section, ...] = (
    Section(
        "funnel",
        "Lifecycle funnel",
        "How many kits reached each stage of the canonical lifecycle (from the funnel view), overall and per "
        "cohort. A kit counts at a stage if it reached it or any later stage. Recent cohorts are still in "
        "flight, so their later stages fill in over time.",
        "No kits in the warehouse yet.",
        _funnel_table,
        ("funnel", "kit_lifecycle"),
    ),
    Section(
        "turnaround",
        "Turnaround per stage",
        "Days between consecutive lifecycle stages and from order to results, per provider (kit_lifecycle). "
        "Only transitions the partners reported a date for are timed, so each box has its own n.",
        "No kit has passed two dated stages yet.",
        _turnaround_table,
        ("kit_lifecycle",),
    ),
    Section(
        "failures",
        "Failure rates by reason",
        "Kits that ended off the happy path (failure reasons, cancelled, replaced, lost) as a share of the "
        "kits that reached any final stage (failure_rates).",
        "No kit has failed or left the path.",
        _failures_table,
        ("failure_rates", "kit_cohorts", "kit_lifecycle"),
    ),
    Section(
        "scores",
        "Scores by cohort",
        "Median and interquartile range of each partner score per cohort (cohort_scores).",
        "No kit has scores yet.",
        _scores_table,
        ("cohort_scores",),
    ),
    Section(
        "taxa",
        f"Top {_TAXA} by cohort",
        f"Mean relative abundance (absent counts as 0) and prevalence of the most abundant {_TAXA} overall, "
        f"plus those that differ most between cohorts of at least {MIN_COHORT_KITS} kits (taxa_prevalence).",
        "No kit has a taxonomy profile yet.",
        _taxa_table,
        ("taxa_prevalence",),
    ),
    Section(
        "alpha",
        "Alpha diversity by cohort",
        f"Per-kit Shannon index and richness at {TAXA_RANK} level (alpha_diversity), one box per cohort: the "
        "box spans the middle half of the kits, whiskers 1.5 IQR.",
        "No kit has a taxonomy profile yet.",
        _alpha_table,
        ("alpha_diversity", "kit_cohorts"),
    ),
    Section(
        "both_tests",
        "Customers with both tests",
        "Customers who bought both the microbiome and the DNA test, matched on the platform's own customer "
        "id (one pseudonymous key at both partners; kits without a customer id are counted, never guessed). "
        "For those with both results, each Gencove trait's risk class or percentile band against each "
        "Biomesight score and the abundance of the most abundant genera (microbiome_by_trait). A gap is "
        f"named only between groups of at least {MIN_COHORT_KITS} customers.",
        "No customer has results from both partners yet.",
        _both_tests_table,
        ("microbiome_by_trait", "customers", "kit_lifecycle"),
    ),
    Section(
        "stuck",
        "Stuck kits",
        "Unfinished kits that have been in their current stage longer than the 95th percentile of the time "
        "kits of the same provider spent there before moving on (stuck_kits). These are the kits to chase.",
        "No kit is stuck: every unfinished kit is within its stage's usual time.",
        _stuck_table,
        ("stuck_kits", "kit_lifecycle"),
    ),
)

_CSS = """
:root { --ink: #222; --muted: #666; --line: #e3e5e8; --accent: #4c72b0; --bg: #f5f6f8; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", "Liberation Sans", sans-serif; }
header { background: #1f2a3a; color: #fff; padding: 28px 0 22px; }
header .wrap, main { max-width: 1180px; margin: 0 auto; padding: 0 24px; }
header h1 { margin: 0 0 4px; font-size: 26px; font-weight: 650; }
header p { margin: 0; color: #c9d2de; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(165px, 1fr)); gap: 12px;
         margin: -14px 0 18px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card .value { font-size: 24px; font-weight: 700; line-height: 1.2; }
.card .label { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.card .detail { font-size: 12px; color: var(--muted); }
nav { margin: 0 0 18px; font-size: 14px; }
nav a { color: var(--accent); text-decoration: none; margin-right: 14px; white-space: nowrap; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 18px 22px;
          margin: 0 0 20px; }
section h2 { margin: 0 0 4px; font-size: 19px; }
section p.about { margin: 0 0 12px; color: var(--muted); font-size: 14px; max-width: 900px; }
figure { margin: 0; }
figure img { display: block; width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 6px; }
p.empty { padding: 16px; background: var(--bg); border-radius: 6px; color: var(--muted); }
details { margin-top: 10px; font-size: 13px; }
summary { cursor: pointer; color: var(--accent); }
.scroll { max-height: 420px; overflow: auto; margin-top: 8px; border: 1px solid var(--line); }
table { border-collapse: collapse; width: 100%; }
th, td { padding: 3px 8px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { position: sticky; top: 0; background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
footer { max-width: 1180px; margin: 0 auto; padding: 0 24px 32px; color: var(--muted); font-size: 12px; }
"""


def _format(value: Any) -> tuple[str, bool]:  # noqa: PLR0911 - one return per kind of cell
    """A cell's text and whether it is a number (right-aligned)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return "", False
    if isinstance(value, bool):
        return str(value), False
    if isinstance(value, int):
        return f"{value:,}", True
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e12:
            return f"{int(value):,}", True
        return (f"{value:.3g}" if abs(value) < 1 else f"{value:,.1f}"), True
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}", False
    return str(value), False


def render_table(table: Table) -> str:
    """A small escaped HTML table; pandas' own to_html would do, but not with this number formatting."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = []
    for row in table.itertuples(index=False):
        cells = []
        for value in row:
            text, numeric = _format(value.item() if hasattr(value, "item") else value)
            cells.append(
                f'<td class="num">{html.escape(text)}</td>' if numeric else f"<td>{html.escape(text)}</td>"
            )
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure(chart: Chart, views: tuple[str, ...]) -> str:
    alt = html.escape(f"{chart.title}. {chart.n_text}", quote=True)
    caption = f"{chart.n_text}. Source: {', '.join(views)}."
    return (
        f'<figure data-chart="{chart.key}" data-n="{chart.n}">'
        f'<img src="{chart.data_uri}" alt="{alt}" width="{chart.width}" height="{chart.height}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _section(section: Section, chart: Chart | None, table: Table, number: int) -> str:
    parts = [
        f'<section id="{section.key}" data-rows="{len(table)}">',
        f"<h2>{number}. {html.escape(section.heading)}</h2>",
        f'<p class="about">{html.escape(section.about)}</p>',
    ]
    if chart is None:
        parts.append(f'<p class="empty">{html.escape(section.empty)}</p>')
    else:
        parts.append(_figure(chart, section.views))
    if len(table):
        parts.append(
            f"<details><summary>Numbers behind the chart ({len(table)} rows)</summary>"
            f'<div class="scroll">{render_table(table)}</div></details>'
        )
    parts.append("</section>")
    return "\n".join(parts)


def _cards(headlines: Headlines) -> str:
    return "".join(
        f'<div class="card"><div class="label">{html.escape(c.label)}</div>'
        f'<div class="value">{html.escape(c.value)}</div>'
        f'<div class="detail">{html.escape(c.detail)}</div></div>'
        for c in headlines.cards()
    )


def render_page(
    data: ReportData, charts: dict[str, Chart | None], headlines: Headlines, *, generated_at: datetime
) -> str:
    """The whole document; `charts` maps each section key to its chart (None: the section has no data)."""
    as_of = f"{data.as_of:%Y-%m-%d %H:%M} UTC" if data.as_of else "no partner dates yet"
    subtitle = (
        f"Cohorts by {dimension_name(data.dimension)} · data as of {as_of} · "
        f"generated {generated_at:%Y-%m-%d %H:%M} UTC"
    )
    nav = "".join(f'<a href="#{s.key}">{html.escape(s.heading)}</a>' for s in SECTIONS)
    sections = [
        _section(section, charts.get(section.key), section.table(data), number)
        for number, section in enumerate(SECTIONS, start=1)
    ]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            "<title>kitsync cohort report</title>",
            f"<style>{_CSS}</style></head><body>",
            '<header><div class="wrap"><h1>kitsync cohort report</h1>',
            f"<p>{html.escape(subtitle)}</p></div></header>",
            f'<main><div class="cards">{_cards(headlines)}</div><nav>{nav}</nav>',
            *sections,
            "</main>",
            "<footer>Built by <code>kitsync report</code> from the warehouse's analysis views only "
            f"({html.escape(', '.join(VIEWS))}). Cohorts with fewer than {MIN_COHORT_KITS} kits are "
            "drawn with their n but never named in a finding. Gaps between cohorts are described, not "
            "tested: see examples/cohort_genus_abundance.py for a significance test.</footer>",
            "</body></html>",
        ]
    )
