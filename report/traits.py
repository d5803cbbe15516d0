"""Customers with both tests: Gencove trait groups against Biomesight measures, and which gaps are findings.

A gap is a finding only between two groups of at least `MIN_COHORT_KITS` customers each (smaller groups are
listed with their n, never named); gaps are ranked by standardized difference (Cohen's d with the two groups'
pooled standard deviation), so a score gap in points and an abundance gap in fractions compare fairly. The
gaps are described, not tested for significance. Pure: the chart that shows them is in `report.charts`.
"""

from __future__ import annotations

import math

import pandas as pd

from report.data import MIN_COHORT_KITS
from report.words import score_label

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
    return f"{measure} abundance" if kind == "genus" else score_label(measure)


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
