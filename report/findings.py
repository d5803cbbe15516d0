"""What each section of the report finds: pure functions from the frames of `report.data` to a sentence and
the n behind it. No drawing here (that is `report.charts`), so each finding is unit-tested on small frames.

Findings name only cohorts of at least `MIN_COHORT_KITS` kits; smaller cohorts are drawn with their n but
never become the subject of a sentence. Each function returns None when there is nothing to say (no data).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from report.cohorts import cohort_order, dimension_name
from report.data import MIN_COHORT_KITS, TAXA_RANK
from report.traits import customers_with_both_results, finding_sentence
from report.words import (
    by_provider_text,
    cohort_label,
    percent,
    provider_name,
    score_label,
    share,
    stage_name,
)

# Mean abundances below this count as this much when a ratio between cohorts is taken (a genus absent from a
# cohort would otherwise make every ratio infinite).
ABUNDANCE_RATIO_FLOOR = 1e-3


@dataclass(frozen=True)
class Finding:
    """A section's headline sentence, how many things it rests on, and the line that says what they are."""

    title: str
    n: int
    n_text: str


# --- one function per section -----------------------------------------------------------------------------


def funnel_finding(funnel_all: pd.DataFrame, overview: pd.DataFrame) -> Finding | None:
    """The share of kits at the funnel's last stage, and the step where most kits have not moved on."""
    if funnel_all.empty:
        return None
    overall = funnel_all.sort_values("stage_rank")
    total = int(overall["kits_in_cohort"].iloc[0])
    reached_results = overall["kits_reached"].iloc[-1] / total if total else 0.0
    drops = overall.assign(prev_stage=overall["stage"].shift(1)).dropna(subset=["conversion_from_previous"])
    worst = drops.loc[drops["conversion_from_previous"].idxmin()] if not drops.empty else None
    title = f"{percent(reached_results)} of kits have reached {stage_name(overall['stage'].iloc[-1])}"
    if worst is not None and worst["conversion_from_previous"] < 1:
        title += (
            f"; the largest step loss is {stage_name(worst['prev_stage'])} → {stage_name(worst['stage'])} "
            f"({percent(1 - worst['conversion_from_previous'])} have not moved on)"
        )
    n_text = f"n = {total} kits ({by_provider_text(overview.set_index('provider')['kits'])})"
    return Finding(title, total, n_text)


def turnaround_finding(turnaround: pd.DataFrame) -> Finding | None:
    """The median days from order to results per provider (the last, total, duration), else a plain title."""
    if turnaround.empty:
        return None
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
        f"n = {total} kits with at least one timed stage ({by_provider_text(kits)}); "
        "each box is labelled with its own n"
    )
    return Finding(title, total, n_text)


def failure_finding(failures_by_provider: pd.DataFrame, overview: pd.DataFrame) -> Finding | None:
    """The share of finished kits that ended off the path, and the commonest reason at one provider."""
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
        f"({by_provider_text(overview.set_index('provider')['kits_final'])}), {failed} of them off the path"
    )
    return Finding(title, finished, n_text)


def scores_finding(scores: pd.DataFrame, dimension: str) -> Finding | None:
    """The score whose median differs most between two cohorts of at least MIN_COHORT_KITS kits."""
    if scores.empty:
        return None
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
            f"{score_label(names[key])} shows the largest gap by {dimension_name(dimension)}: median "
            f"{high['median']:.0f} in {cohort_label(dimension, high['cohort_value'])} "
            f"vs {low['median']:.0f} in {cohort_label(dimension, low['cohort_value'])}"
        )
    n_text = f"n = {total} kits with scores; points are medians, bars the middle 50% (p25 to p75)"
    return Finding(title, total, n_text)


def taxa_grid(taxa: pd.DataFrame, genera: list[str], values: list[str], column: str) -> pd.DataFrame:
    """One measure of `taxa` as a genus x cohort grid in the given orders (absent from a cohort: 0)."""
    grid = taxa.pivot(index="taxon", columns="cohort_value", values=column)
    return grid.reindex(index=genera, columns=values).fillna(0.0)


def taxa_finding(
    taxa_rows: pd.DataFrame, abundance: pd.DataFrame, profiled: pd.DataFrame, dimension: str
) -> Finding | None:
    """The genus whose mean abundance differs most (max/min ratio) between cohorts of MIN_COHORT_KITS kits.

    `abundance` is the genus x cohort grid of `taxa_grid(..., "mean_abundance")`.
    """
    if taxa_rows.empty or profiled.empty:
        return None
    sizes = profiled.set_index("cohort_value")["kits_profiled"]
    total = int(sizes.sum())
    title = f"Top genera by {dimension_name(dimension)}"
    big = [v for v in abundance.columns if sizes.get(v, 0) >= MIN_COHORT_KITS]
    if len(big) >= 2:
        sub = abundance[big]
        ratio = sub.max(axis=1) / sub.min(axis=1).clip(lower=ABUNDANCE_RATIO_FLOOR)
        genus = str(ratio.idxmax())
        high, low = sub.loc[genus].idxmax(), sub.loc[genus].idxmin()
        title = (
            f"{genus} shows the largest gap by {dimension_name(dimension)}: mean abundance "
            f"{share(sub.loc[genus, high])} in {cohort_label(dimension, high)} vs "
            f"{share(sub.loc[genus, low])} in {cohort_label(dimension, low)}"
        )
    n_text = (
        f"n = {total} kits with a {TAXA_RANK}-level profile; columns are labelled with their n; "
        "† = chosen for differing between cohorts rather than for abundance"
    )
    return Finding(title, total, n_text)


def alpha_finding(alpha: pd.DataFrame, dimension: str) -> Finding | None:
    """The cohorts (of at least MIN_COHORT_KITS kits) with the highest and lowest median Shannon diversity."""
    if alpha.empty:
        return None
    total = int(alpha.drop_duplicates(["provider", "kit_id"]).shape[0])
    groups = {
        v: alpha[alpha["cohort_value"] == v] for v in cohort_order(alpha["cohort_value"].unique().tolist())
    }
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
    return Finding(title, total, n_text)


def both_tests_finding(
    trait_groups: pd.DataFrame, both_tests: pd.DataFrame, findings: pd.DataFrame
) -> Finding | None:
    """The strongest gap between trait groups (`findings`: `report.traits.trait_findings`), or why none."""
    if trait_groups.empty:
        return None
    customers = customers_with_both_results(trait_groups)
    counts = both_tests.iloc[0] if not both_tests.empty else pd.Series(dtype=object)
    bought_both = int(counts.get("bought_both", 0) or 0)
    keyless = int(counts.get("kits_without_customer", 0) or 0)
    n_text = (
        f"n = {customers} customers with both results ({bought_both} bought both tests; {keyless} kits came "
        f"with no customer id and are not matched); findings only between groups of at least "
        f"{MIN_COHORT_KITS} customers"
    )
    if findings.empty:
        title = (
            f"No trait group has {MIN_COHORT_KITS} customers with both results yet: nothing to compare "
            "between groups"
        )
    else:
        title = finding_sentence(findings.iloc[0])
    return Finding(title, customers, n_text)


def stuck_finding(stuck: pd.DataFrame, overview: pd.DataFrame) -> Finding | None:
    """How many unfinished kits are past their stage's p95, and the provider and stage that hold most."""
    if stuck.empty:
        return None
    unfinished = int((overview["kits"] - overview["kits_final"]).sum()) if not overview.empty else 0
    counts = stuck.groupby(["provider", "current_stage"], sort=True).size().sort_values(ascending=False)
    (provider, stage), most = counts.index[0], int(counts.iloc[0])
    how_many = "all" if most == len(stuck) else f"{most}"
    title = (
        f"{len(stuck)} unfinished kits have been in their stage longer than its p95; "
        f"{how_many} of them at {provider_name(provider)} in the {stage_name(stage)} stage"
    )
    n_text = f"n = {len(stuck)} stuck kits, of {unfinished} unfinished kits"
    return Finding(title, len(stuck), n_text)
