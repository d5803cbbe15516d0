"""An analyst's session on the kitsync warehouse: does one genus's abundance differ between two cohorts?

Run it against the published DuckDB file (read-only, so it can run while a load is publishing a new one):

    .venv/bin/python examples/cohort_genus_abundance.py --db data/warehouse/kitsync.duckdb --genus Prevotella

The default question: is Prevotella (a genus of fibre-rich, Mediterranean-style diets) more abundant in kits
from Spain, Italy and France than in kits from the US and Canada? Change `--dimension`, `--group-a` and
`--group-b` to ask another one, e.g. `--genus Methanobrevibacter --dimension bristol_scale --group-a 1,2
--group-b 6,7` (slow vs fast transit). Decide the groups before looking at the data: picking the two most
different cohorts first and testing them afterwards finds "significant" differences in pure noise.

The test is Mann-Whitney U (abundances are skewed and full of zeros, so compare ranks, not means), with a
normal-approximation p-value and a permutation p-value as a check that needs no approximation.
"""

# ruff: noqa: T201 - an example session prints its answers

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

import duckdb
import numpy as np
import pandas as pd

# One row per profiled kit and cohort: every kit with a genus-level taxonomy, in each cohort it belongs to.
PROFILED_KITS = """
SELECT c.cohort_value AS cohort, c.provider, c.kit_id
FROM kit_cohorts AS c
JOIN (SELECT DISTINCT provider, kit_id FROM taxonomy WHERE rank = 'genus') AS t
  ON t.provider = c.provider AND t.kit_id = c.kit_id
WHERE c.cohort_dimension = $dimension
"""

# The genus's relative abundance in the kits where it was found (absent kits have no row: abundance 0).
GENUS_ABUNDANCE = """
SELECT provider, kit_id, sum(relative_abundance) AS abundance
FROM taxonomy
WHERE rank = 'genus' AND taxon = $genus
GROUP BY provider, kit_id
"""


def load_abundances(db: str, genus: str, dimension: str) -> pd.DataFrame:
    """One row per profiled kit: its cohort and the genus's relative abundance (0 where absent)."""
    connection = duckdb.connect(db, read_only=True)
    try:
        kits = connection.sql(PROFILED_KITS, params={"dimension": dimension}).to_arrow_table().to_pandas()
        found = connection.sql(GENUS_ABUNDANCE, params={"genus": genus}).to_arrow_table().to_pandas()
    finally:
        connection.close()
    frame = kits.merge(found, on=["provider", "kit_id"], how="left")
    frame["abundance"] = frame["abundance"].fillna(0.0)
    return frame


def mann_whitney_u(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """U of sample a and its two-sided p-value (normal approximation, tie-corrected, continuity-corrected):
    the same numbers as scipy.stats.mannwhitneyu(a, b, method="asymptotic")."""
    n1, n2 = len(a), len(b)
    ranks = pd.Series(np.concatenate([a, b])).rank(method="average").to_numpy()
    u = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2)
    n = n1 + n2
    _, ties = np.unique(np.concatenate([a, b]), return_counts=True)
    variance = n1 * n2 / 12 * ((n + 1) - float((ties**3 - ties).sum()) / (n * (n - 1)))
    if variance <= 0:
        return u, 1.0
    z = (abs(u - n1 * n2 / 2) - 0.5) / math.sqrt(variance)
    return u, math.erfc(max(z, 0.0) / math.sqrt(2))


def permutation_p(a: np.ndarray, b: np.ndarray, permutations: int, seed: int) -> float:
    """Two-sided p-value of U by shuffling cohort labels: how often a random split is as lopsided."""
    rng = np.random.default_rng(seed)
    pooled = np.concatenate([a, b])
    ranks = pd.Series(pooled).rank(method="average").to_numpy()
    n1, n2 = len(a), len(b)
    centre = n1 * n2 / 2
    observed = abs(ranks[:n1].sum() - n1 * (n1 + 1) / 2 - centre)
    extreme = 0
    for _ in range(permutations):
        sample = rng.permutation(ranks)[:n1]
        if abs(sample.sum() - n1 * (n1 + 1) / 2 - centre) >= observed - 1e-9:
            extreme += 1
    return (extreme + 1) / (permutations + 1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="published warehouse, e.g. data/warehouse/kitsync.duckdb")
    parser.add_argument("--genus", default="Prevotella", help="genus to compare (default: Prevotella)")
    parser.add_argument("--dimension", default="country", help="cohort dimension of kit_cohorts")
    parser.add_argument("--group-a", default="ES,IT,FR", help="comma-separated cohort values of group A")
    parser.add_argument("--group-b", default="US,CA", help="comma-separated cohort values of group B")
    parser.add_argument("--permutations", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    group_a = [v.strip() for v in args.group_a.split(",") if v.strip()]
    group_b = [v.strip() for v in args.group_b.split(",") if v.strip()]

    frame = load_abundances(args.db, args.genus, args.dimension)
    if frame.empty:
        print(f"no kit with a genus-level profile has a {args.dimension} cohort")
        return 1

    # First look: every cohort, so the two groups are seen in context.
    by_cohort = frame.groupby("cohort")["abundance"].agg(
        kits="size",
        prevalence=lambda s: (s > 0).mean(),
        median=lambda s: 100 * s.median(),
        mean=lambda s: 100 * s.mean(),
    )
    print(f"{args.genus} relative abundance (%) by {args.dimension}:\n")
    print(by_cohort.round(3).to_string())

    a = frame.loc[frame["cohort"].isin(group_a), "abundance"].to_numpy()
    b = frame.loc[frame["cohort"].isin(group_b), "abundance"].to_numpy()
    if len(a) < 2 or len(b) < 2:
        print(f"\ntoo few kits to compare: group A has {len(a)}, group B has {len(b)}")
        return 1
    u, p = mann_whitney_u(a, b)
    p_perm = permutation_p(a, b, args.permutations, args.seed)

    print(f"\n{args.genus}: {args.dimension} {'+'.join(group_a)} (A) vs {'+'.join(group_b)} (B)")
    print(
        f"group A: n = {len(a)}, median = {100 * np.median(a):.3f}%, prevalence = {100 * (a > 0).mean():.0f}%"
    )
    print(
        f"group B: n = {len(b)}, median = {100 * np.median(b):.3f}%, prevalence = {100 * (b > 0).mean():.0f}%"
    )
    print(f"Mann-Whitney U = {u:.1f}; P(a kit of A has more than one of B) = {u / (len(a) * len(b)):.2f}")
    print(f"p-value (Mann-Whitney U, normal approximation) = {p:.3g}")
    print(f"p-value (permutation, {args.permutations} shuffles) = {p_perm:.3g}")
    verdict = "differs" if p < 0.05 else "does not differ detectably"
    print(f"At the 5% level, {args.genus} {verdict} between the two groups.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
