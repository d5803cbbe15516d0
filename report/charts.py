"""The report's charts: one function per section, each a PNG with a finding as its title and the n behind it.

Figures are built with matplotlib's object API on the Agg canvas (never pyplot): no global figure state, no
GUI backend, safe to call from a worker thread of an async flow. Each chart function takes the frames of
`report.data` and returns None when there is nothing to draw, so an empty warehouse still renders a page.
Findings name only cohorts of at least `MIN_COHORT_KITS` kits; smaller cohorts are drawn with their n.
"""

from __future__ import annotations

import base64
import io
import math
import textwrap
from dataclasses import dataclass

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from report.cohorts import cohort_order
from report.data import MIN_COHORT_KITS, TAXA_RANK

DPI = 144
WIDTH_INCHES = 11.0
_TITLE_CHARS = 90  # a 13 pt bold line across the figure's width, with room for wide letters
_TITLE_LINE_INCHES = 0.27
_N_LINE_INCHES = 0.42

PROVIDER_COLORS = {"biomesight": "#1b9e77", "gencove": "#7570b3"}
PROVIDER_NAMES = {"biomesight": "Biomesight", "gencove": "Gencove"}
DIMENSION_NAMES = {
    "all": "all kits",
    "provider": "provider",
    "purchase_month": "purchase month",
    "country": "country",
    "sample_type": "sample type",
    "bristol_scale": "Bristol stool scale",
    "bm_frequency": "bowel-movement frequency",
    "trait_risk": "genetic trait risk",
}
SCORE_UNIT = "score (0-100 points)"
RANK_PLURALS = {
    "genus": "genera",
    "species": "species",
    "family": "families",
    "phylum": "phyla",
    "class": "classes",
}
_INK = "#222222"
_MUTED = "#666666"

# The report's house style, set once on import: rc_context per figure would mutate the same global rcParams
# anyway (and not thread-safely), and nothing else in kitsync draws with matplotlib.
mpl.rcParams.update(
    {
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
)


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


def provider_name(provider: str) -> str:
    return PROVIDER_NAMES.get(provider, provider)


def dimension_name(dimension: str) -> str:
    return DIMENSION_NAMES.get(dimension, dimension.replace("_", " "))


def _provider_color(provider: str, index: int) -> str:
    return PROVIDER_COLORS.get(provider, mpl.colormaps["tab10"](index % 10))


def _cohort_colors(count: int) -> list[tuple[float, ...]]:
    cmap = mpl.colormaps["tab10" if count <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(count)]


def _wrap(label: str, width: int = 12) -> str:
    return "\n".join(textwrap.wrap(str(label), width)) or str(label)


def cohort_label(dimension: str, value: str) -> str:
    """A cohort value as a title names it: a bare "2" means nothing outside the chart's axis."""
    if dimension == "bristol_scale":
        return f"Bristol type {value}"
    return f"'{value}'" if " " in str(value) else str(value)


def _share(fraction: float) -> str:
    """A fraction as a percentage with two significant digits, so 0.0004 reads 0.04% rather than 0.0%."""
    percent = 100 * fraction
    if percent == 0 or percent >= 10:
        return f"{percent:.0f}%"
    return f"{percent:.2g}%" if percent >= 0.01 else "<0.01%"


def _cohort_tick(value: str, n: int) -> str:
    return f"{_wrap(value, 10)}\nn={n}"


def _stage(stage: str) -> str:
    return str(stage).replace("_", " ")


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def _figure(height: float) -> Figure:
    """A figure whose axes area is `height` inches tall; `_render` adds the header above it."""
    return Figure(figsize=(WIDTH_INCHES, height), layout="constrained")


def _render(key: str, figure: Figure, title: str, n: int, n_text: str) -> Chart:
    """Draw the finding and the n above the axes and encode the figure as PNG."""
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


def _by_provider_text(counts: pd.Series) -> str:
    """ "206 Biomesight, 287 Gencove" from a provider-indexed count series."""
    return ", ".join(f"{int(n)} {provider_name(str(p))}" for p, n in counts.items() if n)


# --- lifecycle funnel -------------------------------------------------------------------------------------


def funnel_chart(
    funnel_all: pd.DataFrame, funnel: pd.DataFrame, overview: pd.DataFrame, dimension: str
) -> Chart | None:
    """Kits reaching each lifecycle stage overall (bars) and per cohort (% of the cohort, one line each)."""
    if funnel_all.empty:
        return None
    overall = funnel_all.sort_values("stage_rank")
    stages = overall["stage"].tolist()
    total = int(overall["kits_in_cohort"].iloc[0])
    reached_results = overall["kits_reached"].iloc[-1] / total if total else 0.0
    drops = overall.assign(prev_stage=overall["stage"].shift(1)).dropna(subset=["conversion_from_previous"])
    worst = drops.loc[drops["conversion_from_previous"].idxmin()] if not drops.empty else None
    title = f"{_pct(reached_results)} of kits have reached {_stage(stages[-1])}"
    if worst is not None and worst["conversion_from_previous"] < 1:
        title += (
            f"; the largest step loss is {_stage(worst['prev_stage'])} → {_stage(worst['stage'])} "
            f"({_pct(1 - worst['conversion_from_previous'])} have not moved on)"
        )
    n_text = f"n = {total} kits ({_by_provider_text(overview.set_index('provider')['kits'])})"

    figure = _figure(4.6)
    left, right = figure.subplots(1, 2, width_ratios=(1, 1.35))
    y = np.arange(len(stages))[::-1]
    bars = left.barh(y, overall["kits_reached"], color="#4c72b0")
    left.set_yticks(y, [_stage(s) for s in stages])
    for bar, reached in zip(bars, overall["kits_reached"], strict=True):
        share = reached / total if total else 0
        left.annotate(
            f"{int(reached)} ({_pct(share)})",
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
    right.set_xticks(overall["stage_rank"], [_wrap(_stage(s), 10) for s in stages], fontsize=8)
    right.set_ylim(0, 105)
    right.set_ylabel("kits of the cohort that reached the stage (%)")
    right.set_xlabel("lifecycle stage")
    right.set_title(f"By {dimension_name(dimension)} (dotted: fewer than {MIN_COHORT_KITS} kits)")
    if values:
        right.legend(fontsize=7, loc="lower left", ncols=2 if len(values) > 6 else 1, frameon=False)
    right.grid(axis="y", alpha=0.3)
    return _render("funnel", figure, title, total, n_text)


# --- turnaround -------------------------------------------------------------------------------------------


def turnaround_chart(turnaround: pd.DataFrame) -> Chart | None:
    """Days between consecutive lifecycle stages, one box per provider and stage (only stages with data)."""
    if turnaround.empty:
        return None
    stages = turnaround.drop_duplicates("stage").sort_values("stage_order")["stage"].tolist()
    providers = sorted(turnaround["provider"].unique())
    kits = turnaround.drop_duplicates(["provider", "kit_id"]).groupby("provider").size()
    total = int(kits.sum())
    totals = turnaround[turnaround["stage_order"] == turnaround["stage_order"].max()]
    medians = totals.groupby("provider")["days"].median()
    if totals["stage"].iloc[0].startswith("total") and not medians.empty:
        title = "Order to results takes a median " + " and ".join(
            f"{medians[p]:.0f} days at {provider_name(p)}" for p in medians.index
        )
    else:
        title = "Days spent between lifecycle stages"
    n_text = (
        f"n = {total} kits with at least one timed stage ({_by_provider_text(kits)}); "
        "each box is labelled with its own n"
    )

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
    return _render("turnaround", figure, title, total, n_text)


# --- failures ---------------------------------------------------------------------------------------------


def failure_chart(
    failures_by_provider: pd.DataFrame,
    failures: pd.DataFrame,
    cohort_sizes: pd.DataFrame,
    overview: pd.DataFrame,
    dimension: str,
) -> Chart | None:
    """How finished kits ended off the happy path: per reason and provider, and stacked per cohort."""
    finished = int(overview["kits_final"].sum()) if not overview.empty else 0
    if failures_by_provider.empty or finished == 0:
        return None
    failed = int(failures_by_provider["kits_failed"].sum())
    top = failures_by_provider.sort_values(["rate_of_final", "reason"], ascending=[False, True]).iloc[0]
    title = (
        f"{100 * failed / finished:.1f}% of finished kits failed or left the path; most often "
        f"'{top['reason']}' at {provider_name(top['cohort_value'])} ({100 * top['rate_of_final']:.1f}%)"
    )
    n_text = (
        f"n = {finished} kits that reached a final stage "
        f"({_by_provider_text(overview.set_index('provider')['kits_final'])}), {failed} of them off the path"
    )
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
    return _render("failures", figure, title, finished, n_text)


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


def scores_chart(scores: pd.DataFrame, dimension: str) -> Chart | None:
    """Median and interquartile range of each score per cohort (the view holds quartiles, not kits)."""
    if scores.empty:
        return None
    keys = sorted(scores["score_key"].unique())
    names = scores.groupby("score_key")["score_name"].first()
    total = int(scores.groupby("score_key")["n"].sum().max())
    eligible = scores[scores["n"] >= MIN_COHORT_KITS]
    title = f"Scores by {dimension_name(dimension)}"
    if eligible["cohort_value"].nunique() >= 2:
        spread = eligible.groupby("score_key")["median"].agg(lambda m: m.max() - m.min())
        key = spread.idxmax()
        rows = eligible[eligible["score_key"] == key]
        high, low = rows.loc[rows["median"].idxmax()], rows.loc[rows["median"].idxmin()]
        title = (
            f"{_score_label(names[key])} shows the largest gap by {dimension_name(dimension)}: median "
            f"{high['median']:.0f} in {cohort_label(dimension, high['cohort_value'])} "
            f"vs {low['median']:.0f} in {cohort_label(dimension, low['cohort_value'])}"
        )
    n_text = f"n = {total} kits with scores; points are medians, bars the middle 50% (p25 to p75)"

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
        ax.set_title(_score_label(names[key]))
        ax.set_ylabel(SCORE_UNIT)
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(keys) :]:
        ax.set_visible(False)
    return _render("scores", figure, title, total, n_text)


def _score_label(name: str) -> str:
    text = str(name).replace("_", " ")
    return text[:1].upper() + text[1:] + ("" if "score" in text.lower() else " score")


# --- taxa heatmap -----------------------------------------------------------------------------------------


def taxa_heatmap(
    taxa_rows: pd.DataFrame, taxa: pd.DataFrame, profiled: pd.DataFrame, dimension: str
) -> Chart | None:
    """Mean relative abundance and prevalence of the top genera in each cohort, side by side."""
    if taxa_rows.empty or profiled.empty:
        return None
    genera = taxa_rows["taxon"].tolist()
    values = cohort_order(profiled["cohort_value"].tolist())
    sizes = profiled.set_index("cohort_value")["kits_profiled"]
    total = int(sizes.sum())
    abundance = taxa.pivot(index="taxon", columns="cohort_value", values="mean_abundance")
    abundance = abundance.reindex(index=genera, columns=values).fillna(0.0)
    prevalence = taxa.pivot(index="taxon", columns="cohort_value", values="prevalence")
    prevalence = prevalence.reindex(index=genera, columns=values).fillna(0.0)

    title = f"Top genera by {dimension_name(dimension)}"
    big = [v for v in values if sizes[v] >= MIN_COHORT_KITS]
    if len(big) >= 2:
        sub = abundance[big]
        ratio = sub.max(axis=1) / sub.min(axis=1).clip(lower=1e-3)
        genus = str(ratio.idxmax())
        high, low = sub.loc[genus].idxmax(), sub.loc[genus].idxmin()
        title = (
            f"{genus} shows the largest gap by {dimension_name(dimension)}: mean abundance "
            f"{_share(sub.loc[genus, high])} in {cohort_label(dimension, high)} vs "
            f"{_share(sub.loc[genus, low])} in {cohort_label(dimension, low)}"
        )
    n_text = (
        f"n = {total} kits with a {TAXA_RANK}-level profile; columns are labelled with their n; "
        "† = chosen for differing between cohorts rather than for abundance"
    )
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
    return _render("taxa", figure, title, total, n_text)


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


def alpha_chart(alpha: pd.DataFrame, dimension: str) -> Chart | None:
    """Per-kit Shannon diversity and richness at genus level, one box per cohort."""
    if alpha.empty:
        return None
    values = cohort_order(alpha["cohort_value"].unique().tolist())
    groups = {v: alpha[alpha["cohort_value"] == v] for v in values}
    total = int(alpha.drop_duplicates(["provider", "kit_id"]).shape[0])
    medians = {v: float(g["shannon"].median()) for v, g in groups.items() if len(g) >= MIN_COHORT_KITS}
    title = f"Diversity of {TAXA_RANK}s by {dimension_name(dimension)}"
    if len(medians) >= 2:
        high = max(medians, key=lambda v: medians[v])
        low = min(medians, key=lambda v: medians[v])
        title = (
            f"{TAXA_RANK.capitalize()} diversity is highest in {cohort_label(dimension, high)} "
            f"(median Shannon {medians[high]:.2f}) and lowest in {cohort_label(dimension, low)} "
            f"({medians[low]:.2f})"
        )
    n_text = f"n = {total} kits with a {TAXA_RANK}-level profile; boxes are labelled with their n"

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
    return _render("alpha", figure, title, total, n_text)


# --- stuck kits -------------------------------------------------------------------------------------------


def stuck_chart(stuck: pd.DataFrame, overview: pd.DataFrame) -> Chart | None:
    """Each stuck kit as a dot at its days in the current stage, against that stage's p95 threshold."""
    if stuck.empty:
        return None
    unfinished = int((overview["kits"] - overview["kits_final"]).sum()) if not overview.empty else 0
    groups = stuck.groupby(["provider", "current_stage"], sort=True)
    counts = groups.size().sort_values(ascending=False)
    (provider, stage), most = counts.index[0], int(counts.iloc[0])
    share = "all" if most == len(stuck) else f"{most}"
    title = (
        f"{len(stuck)} unfinished kits have been in their stage longer than its p95; "
        f"{share} of them at {provider_name(provider)} in the {_stage(stage)} stage"
    )
    n_text = f"n = {len(stuck)} stuck kits, of {unfinished} unfinished kits"
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
        [f"{provider_name(p)}: {_stage(s)} (n={len(groups.get_group((p, s)))})" for p, s in keys],
    )
    axes.set_ylim(-0.6, len(keys) - 0.3)
    axes.set_xlim(0, float(stuck["days_in_current_stage"].max()) * 1.1)
    axes.set_xlabel("days in the current stage (days); red mark = p95 of kits that moved on from it")
    axes.grid(axis="x", alpha=0.3)
    return _render("stuck", figure, title, len(stuck), n_text)
