"""The report's charts: one function per section, each a PNG with its finding as title and the n behind it.

Only drawing lives here: what each chart says is computed by `report.findings` (pure, unit-tested), and the
words by `report.words`. Figures are built with matplotlib's object API on the Agg canvas (never pyplot): no
global figure state, no GUI backend, safe to call from a worker thread of an async flow. The house style is
applied only while a chart draws (`house_style`), never on import, so importing the report changes nothing for
other matplotlib users in the process. Each chart function takes the frames of `report.data` and returns None
when there is nothing to draw, so an empty warehouse still renders a page.
"""

from __future__ import annotations

import base64
import functools
import io
import math
import textwrap
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ParamSpec

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from report.cohorts import cohort_order, dimension_name
from report.data import MIN_COHORT_KITS, TAXA_RANK
from report.findings import (
    Finding,
    alpha_finding,
    both_tests_finding,
    failure_finding,
    funnel_finding,
    scores_finding,
    stuck_finding,
    taxa_finding,
    taxa_grid,
    turnaround_finding,
)
from report.traits import COMPARISON, measure_label, trait_findings
from report.words import RANK_PLURALS, SCORE_UNIT, percent, provider_name, score_label, stage_name, wrap

DPI = 144
WIDTH_INCHES = 11.0
_TITLE_CHARS = 90  # a 13 pt bold line across the figure's width, with room for wide letters
_TITLE_LINE_INCHES = 0.27
_N_LINE_INCHES = 0.42

PROVIDER_COLORS = {"biomesight": "#1b9e77", "gencove": "#7570b3"}
_INK = "#222222"
_MUTED = "#666666"

# The report's house style, applied while a chart draws and saves (matplotlib reads rcParams then).
HOUSE_STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.labelcolor": _INK,
    "axes.edgecolor": "#999999",
    "xtick.color": _INK,
    "ytick.color": _INK,
    "svg.fonttype": "none",
}
# rc_context swaps the process-wide rcParams in and back out; two reports drawn at once on two threads
# (asyncio.to_thread in two flows) would restore each other's values mid-figure, so drawing is serialized.
_STYLE_LOCK = threading.RLock()
_P = ParamSpec("_P")


@contextmanager
def house_style() -> Iterator[None]:
    """The report's rcParams for the duration of one chart; the previous values come back afterwards."""
    with _STYLE_LOCK, mpl.rc_context(HOUSE_STYLE):
        yield


def _styled(draw: Callable[_P, Chart | None]) -> Callable[_P, Chart | None]:
    """Run a chart function inside `house_style`."""

    @functools.wraps(draw)
    def styled(*args: _P.args, **kwargs: _P.kwargs) -> Chart | None:
        with house_style():
            return draw(*args, **kwargs)

    return styled


@dataclass(frozen=True)
class Chart:
    """One rendered chart: what it finds, how many things it counts, and the picture."""

    key: str
    title: str
    n: int
    n_text: str
    png: bytes
    width: int
    height: int

    @property
    def data_uri(self) -> str:
        """The PNG inline, so the page needs no other file and no network to show it."""
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def _provider_color(provider: str, index: int) -> str:
    return PROVIDER_COLORS.get(provider, mpl.colormaps["tab10"](index % 10))


def _cohort_colors(count: int) -> list[tuple[float, ...]]:
    cmap = mpl.colormaps["tab10" if count <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(count)]


def _cohort_tick(value: str, n: int) -> str:
    return f"{wrap(value, 10)}\nn={n}"


def _figure(height: float) -> Figure:
    """A figure whose axes area is `height` inches tall; `_render` adds the header above it."""
    return Figure(figsize=(WIDTH_INCHES, height), layout="constrained")


def _render(key: str, figure: Figure, finding: Finding) -> Chart:
    """Draw the finding and the n above the axes and encode the figure as PNG."""
    title, n, n_text = finding.title, finding.n, finding.n_text
    lines = textwrap.wrap(title, _TITLE_CHARS) or [title]
    header = 0.12 + _TITLE_LINE_INCHES * len(lines) + _N_LINE_INCHES
    body = figure.get_figheight()
    total = body + header
    figure.set_figheight(total)
    engine = figure.get_layout_engine()
    if engine is not None:
        engine.set(rect=(0, 0, 1, body / total))
    figure.text(
        0.008, 1 - 0.12 / total, "\n".join(lines), ha="left", va="top", fontsize=13, weight="bold", color=_INK
    )
    figure.text(
        0.008,
        1 - (0.16 + _TITLE_LINE_INCHES * len(lines)) / total,
        n_text,
        ha="left",
        va="top",
        fontsize=10,
        color=_MUTED,
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    width, height = (round(v * DPI) for v in figure.get_size_inches())
    return Chart(key=key, title=title, n=n, n_text=n_text, png=buffer.getvalue(), width=width, height=height)


# --- lifecycle funnel -------------------------------------------------------------------------------------


@_styled
def funnel_chart(
    funnel_all: pd.DataFrame, funnel: pd.DataFrame, overview: pd.DataFrame, dimension: str
) -> Chart | None:
    """Kits reaching each lifecycle stage overall (bars) and per cohort (% of the cohort, one line each)."""
    finding = funnel_finding(funnel_all, overview)
    if finding is None:
        return None
    overall = funnel_all.sort_values("stage_rank")
    stages = overall["stage"].tolist()
    total = int(overall["kits_in_cohort"].iloc[0])

    figure = _figure(4.6)
    left, right = figure.subplots(1, 2, width_ratios=(1, 1.35))
    y = np.arange(len(stages))[::-1]
    bars = left.barh(y, overall["kits_reached"], color="#4c72b0")
    left.set_yticks(y, [stage_name(s) for s in stages])
    for bar, reached in zip(bars, overall["kits_reached"], strict=True):
        share = reached / total if total else 0
        left.annotate(
            f"{int(reached)} ({percent(share)})",
            (bar.get_width(), bar.get_y() + bar.get_height() / 2),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    left.set_xlim(0, total * 1.25 if total else 1)
    left.set_xlabel("kits that reached the stage (count)")
    left.set_title("All kits")

    values = cohort_order(funnel["cohort_value"].dropna().unique().tolist()) if not funnel.empty else []
    for value, color in zip(values, _cohort_colors(len(values)), strict=True):
        rows = funnel[funnel["cohort_value"] == value].sort_values("stage_rank")
        n = int(rows["kits_in_cohort"].iloc[0])
        right.plot(
            rows["stage_rank"],
            100 * rows["conversion_from_start"],
            marker="o",
            markersize=3,
            color=color,
            linestyle="-" if n >= MIN_COHORT_KITS else ":",
            label=f"{value} (n={n})",
        )
    right.set_xticks(overall["stage_rank"], [wrap(stage_name(s), 10) for s in stages], fontsize=8)
    right.set_ylim(0, 105)
    right.set_ylabel("kits of the cohort that reached the stage (%)")
    right.set_xlabel("lifecycle stage")
    right.set_title(f"By {dimension_name(dimension)} (dotted: fewer than {MIN_COHORT_KITS} kits)")
    if values:
        right.legend(fontsize=7, loc="lower left", ncols=2 if len(values) > 6 else 1, frameon=False)
    right.grid(axis="y", alpha=0.3)
    return _render("funnel", figure, finding)


# --- turnaround -------------------------------------------------------------------------------------------


@_styled
def turnaround_chart(turnaround: pd.DataFrame) -> Chart | None:
    """Days between consecutive lifecycle stages, one box per provider and stage (only stages with data)."""
    finding = turnaround_finding(turnaround)
    if finding is None:
        return None
    stages = turnaround.drop_duplicates("stage").sort_values("stage_order")["stage"].tolist()
    providers = sorted(turnaround["provider"].unique())

    figure = _figure(0.36 * len(stages) * max(1, len(providers)) + 0.9)
    axes = figure.subplots()
    # labels in a column right of the axes: at the whiskers they collide with outliers and the legend
    label_at = mpl.transforms.blended_transform_factory(axes.transAxes, axes.transData)
    height = 0.8 / len(providers)
    for index, provider in enumerate(providers):
        color = _provider_color(provider, index)
        data, positions = [], []
        for row, stage in enumerate(stages):
            days = turnaround[(turnaround["provider"] == provider) & (turnaround["stage"] == stage)]["days"]
            if days.empty:
                continue
            position = len(stages) - 1 - row + (index - (len(providers) - 1) / 2) * height
            data.append(days.to_numpy())
            positions.append(position)
        if not data:
            continue
        boxes = axes.boxplot(
            data,
            positions=positions,
            widths=height * 0.85,
            orientation="horizontal",
            patch_artist=True,
            manage_ticks=False,
            flierprops={"markersize": 2, "markeredgecolor": color, "alpha": 0.5},
            medianprops={"color": "black"},
        )
        for patch in boxes["boxes"]:
            patch.set_facecolor(color)
            patch.set_alpha(0.75)
        for values, position in zip(data, positions, strict=True):
            axes.text(
                1.01,
                position,
                f"{provider_name(provider)}: n={len(values)}, median {np.median(values):.1f} d",
                transform=label_at,
                va="center",
                fontsize=7,
                color=color,
            )
        axes.plot([], [], color=color, linewidth=6, alpha=0.75, label=provider_name(provider))
    axes.set_yticks(range(len(stages))[::-1], stages)
    axes.set_xlabel("time from the first stage to the second (days)")
    axes.set_xlim(0, float(turnaround["days"].max()) * 1.05)
    axes.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=len(providers), frameon=False)
    axes.grid(axis="x", alpha=0.3)
    return _render("turnaround", figure, finding)


# --- failures ---------------------------------------------------------------------------------------------


@_styled
def failure_chart(
    failures_by_provider: pd.DataFrame,
    failures: pd.DataFrame,
    cohort_sizes: pd.DataFrame,
    overview: pd.DataFrame,
    dimension: str,
) -> Chart | None:
    """How finished kits ended off the happy path: per reason and provider, and stacked per cohort."""
    finding = failure_finding(failures_by_provider, overview)
    if finding is None:
        return None
    with_cohorts = dimension != "provider" and not failures.empty
    figure = _figure(max(3.2, 0.28 * len(failures_by_provider) + 1.2))
    axes = figure.subplots(1, 2 if with_cohorts else 1, width_ratios=(1, 1.3) if with_cohorts else None)
    left = axes[0] if with_cohorts else axes
    rows = failures_by_provider.sort_values(["cohort_value", "rate_of_final"], ascending=[True, True])
    y = np.arange(len(rows))
    colors = [_provider_color(p, i) for i, p in enumerate(rows["cohort_value"])]
    left.barh(y, 100 * rows["rate_of_final"], color=colors)
    left.set_yticks(
        y, [f"{r} ({provider_name(p)})" for r, p in zip(rows["reason"], rows["cohort_value"], strict=True)]
    )
    for position, (_, row) in zip(y, rows.iterrows(), strict=True):
        left.annotate(
            f"{int(row['kits_failed'])} of {int(row['kits_final'])}",
            (100 * row["rate_of_final"], position),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
            color=_MUTED,
        )
    left.set_xlabel("share of the provider's finished kits (%)")
    left.set_xlim(0, 100 * rows["rate_of_final"].max() * 1.35)
    left.set_title("By reason and provider")
    left.grid(axis="x", alpha=0.3)
    if with_cohorts:
        _failures_by_cohort(axes[1], failures, cohort_sizes, dimension)
    return _render("failures", figure, finding)


def _failures_by_cohort(
    axes: Axes, failures: pd.DataFrame, cohort_sizes: pd.DataFrame, dimension: str
) -> None:
    values = cohort_order(cohort_sizes["cohort_value"].dropna().tolist())
    finals = cohort_sizes.set_index("cohort_value")["kits_final"]
    reasons = failures.groupby("reason")["kits_failed"].sum().sort_values(ascending=False).index.tolist()
    x = np.arange(len(values))
    bottom = np.zeros(len(values))
    cmap = mpl.colormaps["Set2"]
    # a cohort with few finished kits jumps to 25% on one failure: draw it pale so the eye discounts it
    alphas = [1.0 if finals.get(v, 0) >= MIN_COHORT_KITS else 0.35 for v in values]
    for index, reason in enumerate(reasons):
        rates = (
            failures[failures["reason"] == reason]
            .set_index("cohort_value")["rate_of_final"]
            .reindex(values)
            .fillna(0)
        )
        bars = axes.bar(x, 100 * rates.to_numpy(), bottom=bottom, color=cmap(index % cmap.N), label=reason)
        for bar, alpha in zip(bars, alphas, strict=True):
            bar.set_alpha(alpha)
        bottom += 100 * rates.to_numpy()
    axes.set_ylim(0, max(float(bottom.max()), 1.0) * 1.3)
    axes.set_xticks(x, [_cohort_tick(v, int(finals.get(v, 0))) for v in values], fontsize=7)
    axes.set_ylabel("share of the cohort's finished kits (%)")
    axes.set_xlabel(
        f"{dimension_name(dimension)} (n = finished kits; pale: fewer than {MIN_COHORT_KITS} finished kits)"
    )
    axes.set_title(f"By {dimension_name(dimension)}, stacked by reason")
    axes.legend(fontsize=7, frameon=False, ncols=2)
    axes.grid(axis="y", alpha=0.3)


# --- scores -----------------------------------------------------------------------------------------------


@_styled
def scores_chart(scores: pd.DataFrame, dimension: str) -> Chart | None:
    """Median and interquartile range of each score per cohort (the view holds quartiles, not kits)."""
    finding = scores_finding(scores, dimension)
    if finding is None:
        return None
    keys = sorted(scores["score_key"].unique())
    names = scores.groupby("score_key")["score_name"].first()

    columns = min(3, len(keys))
    grid_rows = math.ceil(len(keys) / columns)
    values = cohort_order(scores["cohort_value"].unique().tolist())
    figure = _figure(2.6 * grid_rows + (0.3 if len(values) > 6 else 0))
    axes = np.atleast_1d(figure.subplots(grid_rows, columns, squeeze=False).ravel())
    x_of = {v: i for i, v in enumerate(values)}
    for ax, key in zip(axes, keys, strict=False):
        rows = scores[scores["score_key"] == key].set_index("cohort_value").reindex(values)
        present = rows.dropna(subset=["median"])
        x = [x_of[v] for v in present.index]
        ax.vlines(x, present["p25"], present["p75"], color="#4c72b0", linewidth=3, alpha=0.45)
        ax.scatter(x, present["median"], color="#4c72b0", zorder=3, s=18)
        ticks = [_cohort_tick(v, int(rows.loc[v, "n"]) if pd.notna(rows.loc[v, "n"]) else 0) for v in values]
        ax.set_xticks(range(len(values)), ticks, fontsize=6 if len(values) > 6 else 7)
        ax.set_title(score_label(names[key]))
        ax.set_ylabel(SCORE_UNIT)
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(keys) :]:
        ax.set_visible(False)
    return _render("scores", figure, finding)


# --- taxa heatmap -----------------------------------------------------------------------------------------


@_styled
def taxa_heatmap(
    taxa_rows: pd.DataFrame, taxa: pd.DataFrame, profiled: pd.DataFrame, dimension: str
) -> Chart | None:
    """Mean relative abundance and prevalence of the top genera in each cohort, side by side."""
    if taxa_rows.empty or profiled.empty:
        return None
    genera = taxa_rows["taxon"].tolist()
    values = cohort_order(profiled["cohort_value"].tolist())
    sizes = profiled.set_index("cohort_value")["kits_profiled"]
    abundance = taxa_grid(taxa, genera, values, "mean_abundance")
    prevalence = taxa_grid(taxa, genera, values, "prevalence")
    finding = taxa_finding(taxa_rows, abundance, profiled, dimension)
    if finding is None:
        return None

    spread = set(taxa_rows.loc[taxa_rows["chosen_for_spread"], "taxon"])
    labels = [f"{g} †" if g in spread else g for g in genera]

    figure = _figure(0.26 * len(genera) + 1.3)
    left, right = figure.subplots(1, 2)
    floor = 1e-4
    shown = 100 * abundance.clip(lower=floor)
    image = left.imshow(
        shown.to_numpy(),
        aspect="auto",
        cmap="YlGnBu",
        norm=LogNorm(vmin=100 * floor, vmax=max(shown.max().max(), 1)),
    )
    _annotate_cells(left, 100 * abundance.to_numpy(), _abundance_text, image)
    figure.colorbar(image, ax=left, label="mean relative abundance (% of reads, log scale)", shrink=0.8)
    image = right.imshow(100 * prevalence.to_numpy(), aspect="auto", cmap="Purples", norm=Normalize(0, 100))
    _annotate_cells(right, 100 * prevalence.to_numpy(), lambda v: f"{v:.0f}", image)
    figure.colorbar(image, ax=right, label="prevalence (% of the cohort's kits)", shrink=0.8)
    ticks = [_cohort_tick(v, int(sizes[v])) for v in values]
    for ax, name in ((left, "Mean relative abundance (%)"), (right, "Prevalence (%)")):
        ax.set_xticks(range(len(values)), ticks, fontsize=7)
        ax.set_yticks(range(len(genera)), labels, fontsize=8)
        ax.set_xlabel(dimension_name(dimension))
        ax.set_title(name)
        ax.spines[:].set_visible(False)
    right.set_yticklabels([])
    return _render("taxa", figure, finding)


def _abundance_text(value: float) -> str:
    if value == 0:
        return "0"
    return f"{value:.1f}" if value >= 1 else f"{value:.2f}"


def _annotate_cells(axes: Axes, grid: np.ndarray, fmt: object, image: object) -> None:
    """Write each cell's value, in white on dark cells, so the heatmap can be read without the legend."""
    cmap, norm = image.cmap, image.norm  # type: ignore[attr-defined]
    for (row, column), value in np.ndenumerate(grid):
        shade = cmap(norm(max(value, norm.vmin or 0)))
        luminance = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2]
        axes.text(
            column,
            row,
            fmt(value),  # type: ignore[operator]
            ha="center",
            va="center",
            fontsize=6.5,
            color="white" if luminance < 0.5 else _INK,
        )


# --- alpha diversity --------------------------------------------------------------------------------------


@_styled
def alpha_chart(alpha: pd.DataFrame, dimension: str) -> Chart | None:
    """Per-kit Shannon diversity and richness at genus level, one box per cohort."""
    finding = alpha_finding(alpha, dimension)
    if finding is None:
        return None
    values = cohort_order(alpha["cohort_value"].unique().tolist())
    groups = {v: alpha[alpha["cohort_value"] == v] for v in values}

    figure = _figure(3.6)
    axes = figure.subplots(1, 2)
    ticks = [_cohort_tick(v, len(groups[v])) for v in values]
    for ax, column, label in (
        (axes[0], "shannon", "Shannon index (nats)"),
        (axes[1], "richness", f"{RANK_PLURALS.get(TAXA_RANK, TAXA_RANK)} detected (count)"),
    ):
        boxes = ax.boxplot(
            [groups[v][column].to_numpy() for v in values],
            patch_artist=True,
            flierprops={"markersize": 2},
            medianprops={"color": "black"},
        )
        for patch, color in zip(boxes["boxes"], _cohort_colors(len(values)), strict=True):
            patch.set_facecolor(color)
            patch.set_alpha(0.6)
        ax.set_xticks(range(1, len(values) + 1), ticks, fontsize=6 if len(values) > 6 else 7)
        ax.set_ylabel(label)
        ax.set_xlabel(dimension_name(dimension))
        ax.set_title("Shannon diversity" if column == "shannon" else "Richness")
        ax.grid(axis="y", alpha=0.3)
    return _render("alpha", figure, finding)


# --- customers with both tests ---------------------------------------------------------------------------


@_styled
def both_tests_chart(trait_groups: pd.DataFrame, both_tests: pd.DataFrame) -> Chart | None:
    """The strongest trait x microbiome gap (group means with their n), and the largest effects beside it."""
    findings = trait_findings(trait_groups)
    finding = both_tests_finding(trait_groups, both_tests, findings)
    if finding is None:
        return None
    top = None if findings.empty else findings.iloc[0]
    figure = _figure(3.4)
    left, right = figure.subplots(1, 2, width_ratios=(1, 1.4))
    if top is None:
        chosen = trait_groups[trait_groups["measure_kind"] == "score"].head(8)
        top_key = tuple(chosen.iloc[0][COMPARISON]) if not chosen.empty else None
    else:
        top_key = tuple(top[COMPARISON])
    if top_key is not None:
        mask = np.logical_and.reduce([trait_groups[c] == v for c, v in zip(COMPARISON, top_key, strict=True)])
        groups = trait_groups[mask].sort_values("trait_group")
        kind = top_key[2]
        scale = 100 if kind == "genus" else 1
        colors = ["#4c72b0" if n >= MIN_COHORT_KITS else "#b8c4d6" for n in groups["n"]]
        left.bar(range(len(groups)), groups["mean"] * scale, color=colors)
        left.set_xticks(
            range(len(groups)),
            [f"{wrap(g, 12)}\nn={int(n)}" for g, n in zip(groups["trait_group"], groups["n"], strict=True)],
            fontsize=7,
        )
        left.set_ylabel(f"mean {measure_label(kind, top_key[3])}" + (" (%)" if kind == "genus" else ""))
        left.set_title(f"{str(top_key[0]).replace('_', ' ')} ({top_key[1].replace('_', ' ')})")
        left.grid(axis="y", alpha=0.3)
    shown = findings.head(8).iloc[::-1]
    if shown.empty:
        right.set_visible(False)
    else:
        labels = [
            f"{str(r.trait_key).replace('_', ' ')} {r.high_group} vs {r.low_group}: "
            f"{measure_label(r.measure_kind, r.measure)}"
            for r in shown.itertuples()
        ]
        right.barh(range(len(shown)), shown["effect_size"], color="#4c72b0")
        right.set_yticks(range(len(shown)), labels, fontsize=7)
        right.set_xlabel("standardized difference (Cohen's d)")
        right.set_title(f"Largest gaps between groups of at least {MIN_COHORT_KITS} customers")
        right.grid(axis="x", alpha=0.3)
    return _render("both_tests", figure, finding)


# --- stuck kits -------------------------------------------------------------------------------------------


@_styled
def stuck_chart(stuck: pd.DataFrame, overview: pd.DataFrame) -> Chart | None:
    """Each stuck kit as a dot at its days in the current stage, against that stage's p95 threshold."""
    finding = stuck_finding(stuck, overview)
    if finding is None:
        return None
    groups = stuck.groupby(["provider", "current_stage"], sort=True)
    keys = list(groups.groups)
    figure = _figure(max(2.2, 0.6 * len(keys) + 1.0))
    axes = figure.subplots()
    rng = np.random.default_rng(0)  # jitter only, seeded so the same warehouse draws the same picture
    for row, key in enumerate(keys):
        rows = groups.get_group(key)
        position = len(keys) - 1 - row
        color = _provider_color(key[0], row)
        jitter = rng.uniform(-0.18, 0.18, len(rows))
        axes.scatter(rows["days_in_current_stage"], position + jitter, color=color, s=16, alpha=0.8)
        threshold = float(rows["p95_days"].iloc[0])
        axes.vlines(threshold, position - 0.35, position + 0.35, color="#c44e52", linewidth=2)
        axes.annotate(
            f"p95 {threshold:.0f} d",
            (threshold, position + 0.36),
            ha="center",
            va="bottom",
            fontsize=7,
            color="#c44e52",
        )
    axes.set_yticks(
        range(len(keys))[::-1],
        [f"{provider_name(p)}: {stage_name(s)} (n={len(groups.get_group((p, s)))})" for p, s in keys],
    )
    axes.set_ylim(-0.6, len(keys) - 0.3)
    axes.set_xlim(0, float(stuck["days_in_current_stage"].max()) * 1.1)
    axes.set_xlabel("days in the current stage (days); red mark = p95 of kits that moved on from it")
    axes.grid(axis="x", alpha=0.3)
    return _render("stuck", figure, finding)
