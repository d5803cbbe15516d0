"""Customers with both tests: Gencove trait groups against Biomesight measures, and which gaps are findings.

A gap is a finding only between two groups of at least `MIN_COHORT_KITS` customers each (smaller groups are
listed with their n, never named); gaps are ranked by standardized difference (Cohen's d with the two groups'
pooled standard deviation), so a score gap in points and an abundance gap in fractions compare fairly. The
gaps are described, not tested for significance.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from report.charts import Chart, _figure, _render, _score_label, _wrap
from report.data import MIN_COHORT_KITS

COMPARISON = ["trait_key", "grouping", "measure_kind", "measure"]
FINDING_COLUMNS = [
    *COMPARISON,
    "high_group",
    "high_n",
    "high_mean",
    "low_group",
    "low_n",
    "low_mean",
    "difference",
    "effect_size",
]


def customers_with_both_results(trait_groups: pd.DataFrame) -> int:
    """How many customers the comparisons rest on: every customer is in one group of each grouping."""
    if trait_groups.empty:
        return 0
    return int(trait_groups.groupby(COMPARISON)["n"].sum().max())


def _pooled_sd(high: pd.Series, low: pd.Series) -> float:
    freedom = high["n"] + low["n"] - 2
    if freedom <= 0:
        return math.nan
    variance = ((high["n"] - 1) * high["stddev"] ** 2 + (low["n"] - 1) * low["stddev"] ** 2) / freedom
    return math.sqrt(variance) if variance > 0 else math.nan


def trait_findings(trait_groups: pd.DataFrame, min_group: int = MIN_COHORT_KITS) -> pd.DataFrame:
    """Per comparison with two or more groups of at least `min_group` customers: the groups with the highest
    and lowest mean, the difference and its effect size; largest effect first."""
    rows = []
    eligible = trait_groups[trait_groups["n"] >= min_group]
    for key, groups in eligible.groupby(COMPARISON, sort=True):
        if len(groups) < 2:
            continue
        high = groups.loc[groups["mean"].idxmax()]
        low = groups.loc[groups["mean"].idxmin()]
        pooled = _pooled_sd(high, low)
        difference = float(high["mean"] - low["mean"])
        rows.append(
            (
                *key,
                high["trait_group"],
                int(high["n"]),
                float(high["mean"]),
                low["trait_group"],
                int(low["n"]),
                float(low["mean"]),
                difference,
                difference / pooled if pooled and not math.isnan(pooled) else math.nan,
            )
        )
    findings = pd.DataFrame(rows, columns=FINDING_COLUMNS)
    return findings.sort_values(
        ["effect_size", *COMPARISON], ascending=[False, True, True, True, True], na_position="last"
    ).reset_index(drop=True)


def measure_label(kind: str, measure: str) -> str:
    """'Bifidobacterium abundance' or 'Diversity score'."""
    return f"{measure} abundance" if kind == "genus" else _score_label(measure)


def _value_text(kind: str, value: float) -> str:
    return f"{100 * value:.2g}%" if kind == "genus" else f"{value:.0f}"


def finding_sentence(finding: pd.Series) -> str:
    """One finding as a reader takes it away (the groups' names and n, both means)."""
    kind = finding["measure_kind"]
    trait = str(finding["trait_key"]).replace("_", " ")
    group = "risk" if finding["grouping"] == "risk" else "percentile band"
    return (
        f"{measure_label(kind, finding['measure'])} is higher with {trait} {group} {finding['high_group']} "
        f"({_value_text(kind, finding['high_mean'])}, n={finding['high_n']}) than {finding['low_group']} "
        f"({_value_text(kind, finding['low_mean'])}, n={finding['low_n']})"
    )


def both_tests_chart(trait_groups: pd.DataFrame, both_tests: pd.DataFrame) -> Chart | None:
    """The strongest trait x microbiome gap (group means with their n), and the largest effects beside it."""
    if trait_groups.empty:
        return None
    customers = customers_with_both_results(trait_groups)
    counts = both_tests.iloc[0] if not both_tests.empty else pd.Series(dtype=object)
    bought_both = int(counts.get("bought_both", 0) or 0)
    keyless = int(counts.get("kits_without_customer", 0) or 0)
    findings = trait_findings(trait_groups)
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
        top = None
    else:
        top = findings.iloc[0]
        title = finding_sentence(top)
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
            [f"{_wrap(g, 12)}\nn={int(n)}" for g, n in zip(groups["trait_group"], groups["n"], strict=True)],
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
    return _render("both_tests", figure, title, customers, n_text)
