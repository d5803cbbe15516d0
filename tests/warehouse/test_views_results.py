"""The result views (cohort_scores, taxa_prevalence, alpha_diversity) against the sandbox's ground truth.

Expectations are recomputed with pandas/numpy from the sandbox's own results (`BiomesightResult.scores`,
`.taxonomy`, `.shannon_genus`) and the platform's facts about each kit (customer country, purchase date,
registration answers), for the kits whose results the API served by the synced world's last round: Biomesight
kits of our account, registered and with `results_ready_at` at or before it. Nothing is read back from the
views to build an expectation.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from sandbox.accounts import BIOMESIGHT_CLIENT_ID
from tests.synced import SyncedWorld
from tests.warehouse.customer_truth import trait_risk_cohorts, truth_of
from warehouse.duck import connect_readonly

COHORT_KEY = ["cohort_dimension", "cohort_value"]
# Abundances travel as text (percent with 6 decimals in the Greengenes CSV, fractions with 8 in another
# dialect), so the warehouse holds them to ~1e-8: sums and means of them agree to well within this.
ABUNDANCE = 1e-7
# The Shannon index moves by at most ~|ln p| * dp per taxon with such rounding.
DIVERSITY = 1e-5


def view(synced: SyncedWorld, sql: str) -> pd.DataFrame:
    """A query on the published warehouse as a DataFrame (built from the cursor: DuckDB's own .df() uses a
    pandas keyword that pandas now deprecates, and warnings are errors here)."""
    connection = connect_readonly(synced.warehouse)
    try:
        cursor = connection.execute(sql)
        return pd.DataFrame(cursor.fetchall(), columns=[d[0] for d in cursor.description])
    finally:
        connection.close()


def snake(name: str) -> str:
    """The partner's score key in snake_case ("Diversity" -> "diversity", "gut_health" stays)."""
    return re.sub(r"[^0-9a-z]+", "_", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()).strip("_")


@pytest.fixture(scope="module")
def kits(synced_world: SyncedWorld) -> pd.DataFrame:
    """The kits whose results were served by the last round, with their cohort facts and their result."""
    last = datetime.fromisoformat(synced_world.reports[-1].virtual_time)
    world = synced_world.world
    rows = []
    for kit in world.kits.values():
        if kit.account != BIOMESIGHT_CLIENT_ID or kit.registered_at is None or kit.registered_at > last:
            continue
        if kit.results_ready_at is None or kit.results_ready_at > last:
            continue
        order = world.orders[kit.order_id]
        rows.append(
            {
                "kit_id": kit.kit_id,
                "purchase_month": order.purchase_date.astimezone(UTC).strftime("%Y-%m"),
                "country": order.customer.country_code,
                "sample_type": kit.sample_type,
                "bristol_scale": None if kit.bristol_scale is None else str(kit.bristol_scale),
                "bm_frequency": kit.bm_frequency,
                "result": kit.result,
            }
        )
    frame = pd.DataFrame(rows)
    assert len(frame) >= 100, "a few hundred kits should give at least a hundred results"
    return frame


@pytest.fixture(scope="module")
def members(kits: pd.DataFrame, synced_world: SyncedWorld) -> pd.DataFrame:
    """(cohort_dimension, cohort_value, kit_id): one cohort per dimension a kit has a value for (trait_risk:
    one per risk trait of its customer's Gencove results)."""
    trait_risk = trait_risk_cohorts(truth_of(synced_world))
    rows = []
    for kit in kits.itertuples():
        values = {
            "all": "all",
            "provider": "biomesight",
            "purchase_month": kit.purchase_month,
            "country": kit.country,
            "sample_type": kit.sample_type,
            "bristol_scale": kit.bristol_scale,
            "bm_frequency": kit.bm_frequency,
        }
        rows += [
            {"cohort_dimension": d, "cohort_value": v, "kit_id": kit.kit_id} for d, v in values.items() if v
        ]
        rows += [
            {"cohort_dimension": "trait_risk", "cohort_value": v, "kit_id": kit.kit_id}
            for v in trait_risk.get(("biomesight", kit.kit_id), [])
        ]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def taxa(kits: pd.DataFrame) -> pd.DataFrame:
    """Long taxonomy of every kit with results: (kit_id, rank, taxon, abundance)."""
    rows = [
        {"kit_id": kit.kit_id, "rank": t.rank, "taxon": t.taxon, "abundance": t.abundance}
        for kit in kits.itertuples()
        for t in kit.result.taxonomy
        if t.abundance > 0
    ]
    return pd.DataFrame(rows)


def assert_frames_match(
    expected: pd.DataFrame, got: pd.DataFrame, key: list[str], columns: dict[str, float]
) -> None:
    """Same keys on both sides, and each column equal within its absolute tolerance (None/NaN alike)."""
    merged = expected.merge(got, on=key, how="outer", suffixes=("_want", "_got"), indicator=True)
    unmatched = merged[merged["_merge"] != "both"]
    assert unmatched.empty, (
        f"{len(unmatched)} rows only on one side, e.g.\n{unmatched[[*key, '_merge']].head(10)}"
    )
    problems = []
    for column, tolerance in columns.items():
        want = merged[f"{column}_want"].astype(float).to_numpy()
        have = merged[f"{column}_got"].astype(float).to_numpy()
        ok = np.isclose(want, have, rtol=1e-9, atol=tolerance, equal_nan=True)
        for index in np.flatnonzero(~ok)[:5]:
            where = ", ".join(str(merged.iloc[index][k]) for k in key)
            problems.append(f"{column} at ({where}): expected {want[index]!r}, view has {have[index]!r}")
    assert not problems, "\n".join(problems)


# --- cohort_scores ------------------------------------------------------------------------------------------


def test_cohort_scores_summarise_each_score_by_cohort(
    synced_world: SyncedWorld, kits: pd.DataFrame, members: pd.DataFrame
) -> None:
    """n, mean, median, quartiles (linear interpolation) and sample standard deviation of every score."""
    scores = pd.DataFrame(
        [
            {"kit_id": kit.kit_id, "score_key": snake(name), "value": value}
            for kit in kits.itertuples()
            for name, value in kit.result.scores.items()
        ]
    )
    long = members.merge(scores, on="kit_id")
    expected = (
        long.groupby([*COHORT_KEY, "score_key"])["value"]
        .agg(
            n="count",
            mean="mean",
            median="median",
            p25=lambda v: np.percentile(v, 25),
            p75=lambda v: np.percentile(v, 75),
            stddev=lambda v: v.std(ddof=1) if len(v) > 1 else math.nan,
        )
        .reset_index()
    )
    got = view(synced_world, "SELECT * FROM cohort_scores")
    assert set(got["cohort_dimension"]) == {
        "all",
        "provider",
        "purchase_month",
        "country",
        "sample_type",
        "bristol_scale",
        "bm_frequency",
        "trait_risk",
    }
    assert set(expected["score_key"]) == {"gut_health", "diversity", "probiotic", "commensal", "pathobiont"}
    tolerance = 1e-9
    assert_frames_match(
        expected,
        got,
        [*COHORT_KEY, "score_key"],
        dict.fromkeys(("n", "mean", "median", "p25", "p75", "stddev"), tolerance),
    )


def test_cohort_scores_show_the_sandbox_cohort_effect(synced_world: SyncedWorld, kits: pd.DataFrame) -> None:
    """The sandbox makes slow transit (Bristol 1-2) richer and fast transit (6-7) poorer in genera: the view's
    Diversity means over those Bristol cohorts are in the same order as the true genus Shannon means."""
    truth = kits.assign(shannon=[kit.result.shannon_genus for kit in kits.itertuples()]).dropna(
        subset=["bristol_scale"]
    )
    slow = truth[truth["bristol_scale"].isin(["1", "2"])]["shannon"].mean()
    fast = truth[truth["bristol_scale"].isin(["6", "7"])]["shannon"].mean()
    got = view(
        synced_world,
        "SELECT cohort_value, n, mean FROM cohort_scores "
        "WHERE cohort_dimension = 'bristol_scale' AND score_key = 'diversity'",
    ).set_index("cohort_value")

    def pooled(values: list[str]) -> float:
        rows = got.loc[[v for v in values if v in got.index]]
        return float((rows["n"] * rows["mean"]).sum() / rows["n"].sum())

    assert slow > fast
    assert pooled(["1", "2"]) > pooled(["6", "7"])


# --- taxa_prevalence ----------------------------------------------------------------------------------------


def test_taxa_prevalence_by_cohort_rank_and_taxon(
    synced_world: SyncedWorld, members: pd.DataFrame, taxa: pd.DataFrame
) -> None:
    """Prevalence over the cohort's profiled kits; mean abundance counting absence as 0; mean and median
    among the kits where the taxon is present."""
    profiled = members[members["kit_id"].isin(taxa["kit_id"])].groupby(COHORT_KEY).size()
    long = members.merge(taxa, on="kit_id")
    expected = (
        long.groupby([*COHORT_KEY, "rank", "taxon"])["abundance"]
        .agg(
            kits_present="count",
            total="sum",
            mean_abundance_present="mean",
            median_abundance_present="median",
        )
        .reset_index()
    )
    expected["kits_profiled"] = [
        profiled[(d, v)] for d, v in zip(expected["cohort_dimension"], expected["cohort_value"], strict=True)
    ]
    expected["prevalence"] = expected["kits_present"] / expected["kits_profiled"]
    expected["mean_abundance"] = expected["total"] / expected["kits_profiled"]
    got = view(synced_world, "SELECT * FROM taxa_prevalence")
    assert len(expected) > 1000
    assert_frames_match(
        expected,
        got,
        [*COHORT_KEY, "rank", "taxon"],
        {
            "kits_present": 0,
            "kits_profiled": 0,
            "prevalence": 1e-12,
            "mean_abundance": ABUNDANCE,
            "mean_abundance_present": ABUNDANCE,
            "median_abundance_present": ABUNDANCE,
        },
    )
    assert (got["prevalence"] <= 1).all()


# --- alpha_diversity ----------------------------------------------------------------------------------------


def test_alpha_diversity_per_kit_and_rank(
    synced_world: SyncedWorld, kits: pd.DataFrame, taxa: pd.DataFrame
) -> None:
    """Shannon (natural log), Gini-Simpson and richness of each kit's community at each rank, recomputed."""
    p = taxa["abundance"] / taxa.groupby(["kit_id", "rank"])["abundance"].transform("sum")
    parts = taxa.assign(h=-p * np.log(p), d=p * p)
    expected = parts.groupby(["kit_id", "rank"]).agg(
        shannon=("h", "sum"), d=("d", "sum"), richness=("h", "size")
    )
    expected = expected.assign(simpson=1 - expected["d"]).reset_index()
    got = view(synced_world, "SELECT * FROM alpha_diversity")
    assert set(got["provider"]) == {"biomesight"}
    assert_frames_match(
        expected, got, ["kit_id", "rank"], {"shannon": DIVERSITY, "simpson": DIVERSITY, "richness": 0}
    )
    # And the sandbox's own genus-level Shannon index of each kit (what its Diversity score rests on).
    genus = got[got["rank"] == "genus"].set_index("kit_id")["shannon"]
    truth = pd.Series({kit.kit_id: kit.result.shannon_genus for kit in kits.itertuples()})
    assert len(genus) == len(truth)
    assert np.allclose(genus[truth.index], truth, rtol=0, atol=DIVERSITY)
