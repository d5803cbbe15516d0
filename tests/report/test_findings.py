"""Each section's finding from small hand-made frames: the sentence names what the numbers say, and only
cohorts of at least MIN_COHORT_KITS kits become its subject. No warehouse, no drawing."""

from __future__ import annotations

import pandas as pd
import pytest

from report.data import MIN_COHORT_KITS, stage_durations
from report.findings import (
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
from report.traits import trait_findings
from report.words import share
from transform.status import PATH_STAGES

BIG = MIN_COHORT_KITS
SMALL = MIN_COHORT_KITS - 1
OVERVIEW = pd.DataFrame(
    {"provider": ["biomesight", "gencove"], "kits": [60, 40], "kits_final": [30, 10]},
)


def _funnel(reached: list[int], total: int) -> pd.DataFrame:
    stages = list(PATH_STAGES[: len(reached)])
    previous = [None, *reached[:-1]]
    return pd.DataFrame(
        {
            "stage": stages,
            "stage_rank": range(1, len(stages) + 1),
            "kits_in_cohort": total,
            "kits_reached": reached,
            "conversion_from_previous": [
                None if p is None else r / p for r, p in zip(reached, previous, strict=True)
            ],
        }
    )


def test_every_finding_is_none_without_data() -> None:
    empty = pd.DataFrame()
    assert funnel_finding(empty, OVERVIEW) is None
    assert turnaround_finding(empty) is None
    assert failure_finding(empty, OVERVIEW) is None
    assert scores_finding(empty, "country") is None
    assert taxa_finding(empty, empty, empty, "country") is None
    assert alpha_finding(empty, "country") is None
    assert both_tests_finding(empty, empty, empty) is None
    assert stuck_finding(empty, OVERVIEW) is None


def test_the_funnel_names_the_share_at_the_last_stage_and_the_worst_step() -> None:
    # 100 ordered, 90 shipped, 45 delivered: the worst step is shipped -> delivered (half did not move on).
    finding = funnel_finding(_funnel([100, 90, 45], 100), OVERVIEW)
    assert finding is not None
    assert finding.title == (
        "45% of kits have reached delivered; "
        "the largest step loss is shipped → delivered (50% have not moved on)"
    )
    assert finding.n == 100
    assert finding.n_text == "n = 100 kits (60 Biomesight, 40 Gencove)"


def test_a_funnel_with_no_loss_names_no_step() -> None:
    finding = funnel_finding(_funnel([10, 10], 10), OVERVIEW)
    assert finding is not None
    assert finding.title == "100% of kits have reached shipped"


def test_turnaround_names_each_providers_median_total() -> None:
    durations = stage_durations(["days_ordered_to_shipped", "days_total"])
    frame = pd.DataFrame(
        {
            "provider": ["biomesight"] * 3 + ["gencove"] * 2,
            "kit_id": ["a", "b", "c", "x", "y"],
            "stage": [durations[-1][1]] * 5,
            "stage_order": [len(durations) - 1] * 5,
            "days": [10.0, 20.0, 40.0, 3.0, 5.0],
        }
    )
    finding = turnaround_finding(frame)
    assert finding is not None
    assert finding.title == "Order to results takes a median 20 days at Biomesight and 4 days at Gencove"
    assert finding.n == 5


def test_failures_name_the_commonest_reason_at_its_provider() -> None:
    by_provider = pd.DataFrame(
        {
            "cohort_value": ["biomesight", "gencove"],
            "reason": ["dried_out", "failed_qc"],
            "kits_failed": [3, 4],
            "rate_of_final": [0.1, 0.4],
        }
    )
    finding = failure_finding(by_provider, OVERVIEW)
    assert finding is not None
    assert finding.title == (
        "17.5% of finished kits failed or left the path; most often 'failed_qc' at Gencove (40.0%)"
    )
    assert finding.n == 40


def _scores(rows: list[tuple[str, str, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["score_key", "cohort_value", "n", "median"]).assign(
        score_name=lambda f: f["score_key"]
    )


def test_scores_name_the_widest_gap_between_big_cohorts_only() -> None:
    scores = _scores(
        [
            ("diversity", "DE", BIG, 50.0),
            ("diversity", "FR", BIG, 60.0),
            ("diversity", "IT", SMALL, 99.0),  # widest of all, but too small to be named
            ("gut_health", "DE", BIG, 40.0),
            ("gut_health", "FR", BIG, 45.0),
        ]
    )
    finding = scores_finding(scores, "country")
    assert finding is not None
    assert finding.title == "Diversity score shows the largest gap by country: median 60 in FR vs 50 in DE"


def test_scores_with_one_big_cohort_name_no_gap() -> None:
    finding = scores_finding(
        _scores([("diversity", "DE", BIG, 50.0), ("diversity", "FR", SMALL, 90.0)]), "country"
    )
    assert finding is not None
    assert finding.title == "Scores by country"


def test_taxa_name_the_genus_with_the_largest_ratio_between_big_cohorts() -> None:
    taxa = pd.DataFrame(
        {
            "taxon": ["Prevotella", "Prevotella", "Bacteroides", "Bacteroides"],
            "cohort_value": ["ES", "US", "ES", "US"],
            "mean_abundance": [0.20, 0.02, 0.30, 0.25],
        }
    )
    genera, cohorts = ["Bacteroides", "Prevotella"], ["ES", "US"]
    profiled = pd.DataFrame({"cohort_value": cohorts, "kits_profiled": [BIG, BIG + 5]})
    taxa_rows = pd.DataFrame({"taxon": genera, "chosen_for_spread": [False, False]})
    finding = taxa_finding(taxa_rows, taxa_grid(taxa, genera, cohorts, "mean_abundance"), profiled, "country")
    assert finding is not None
    assert finding.title == (
        "Prevotella shows the largest gap by country: "
        f"mean abundance {share(0.20)} in ES vs {share(0.02)} in US"
    )
    assert finding.n == 2 * BIG + 5


def test_a_genus_absent_from_a_cohort_reads_as_zero_in_the_grid() -> None:
    taxa = pd.DataFrame({"taxon": ["Prevotella"], "cohort_value": ["ES"], "mean_abundance": [0.2]})
    grid = taxa_grid(taxa, ["Prevotella"], ["ES", "US"], "mean_abundance")
    assert grid.loc["Prevotella"].tolist() == [0.2, 0.0]


def test_alpha_names_the_most_and_least_diverse_big_cohorts() -> None:
    def kits(cohort: str, count: int, shannon: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "cohort_value": cohort,
                "provider": "biomesight",
                "kit_id": [f"{cohort}{i}" for i in range(count)],
                "shannon": shannon,
            }
        )

    alpha = pd.concat([kits("1", BIG, 2.0), kits("4", BIG, 3.5), kits("7", SMALL, 9.0)])
    finding = alpha_finding(alpha, "bristol_scale")
    assert finding is not None
    assert finding.title == (
        "Genus diversity is highest in Bristol type 4 (median Shannon 3.50) "
        "and lowest in Bristol type 1 (2.00)"
    )
    assert finding.n == 2 * BIG + SMALL


def test_stuck_names_where_most_stuck_kits_wait() -> None:
    stuck = pd.DataFrame(
        {
            "provider": ["gencove", "gencove", "biomesight"],
            "current_stage": ["processing", "processing", "received"],
        }
    )
    finding = stuck_finding(stuck, OVERVIEW)
    assert finding is not None
    assert finding.title == (
        "3 unfinished kits have been in their stage longer than its p95; "
        "2 of them at Gencove in the processing stage"
    )
    assert finding.n_text == "n = 3 stuck kits, of 60 unfinished kits"


def _trait_groups(n_low: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "trait_key": "lactose_intolerance",
            "grouping": "risk",
            "trait_group": ["high_risk", "low_risk"],
            "measure_kind": "score",
            "measure": "diversity",
            "n": [BIG, n_low],
            "mean": [70.0, 50.0],
            "median": [70.0, 50.0],
            "stddev": [5.0, 5.0],
        }
    )


@pytest.mark.parametrize("n_low", [BIG, SMALL])
def test_both_tests_names_a_gap_only_between_big_groups(n_low: int) -> None:
    groups = _trait_groups(n_low)
    both = pd.DataFrame({"bought_both": [4], "kits_without_customer": [2]})
    finding = both_tests_finding(groups, both, trait_findings(groups))
    assert finding is not None
    assert finding.n == BIG + n_low
    if n_low >= MIN_COHORT_KITS:
        assert finding.title.startswith("Diversity score is higher with lactose intolerance risk high_risk")
    else:
        assert finding.title.startswith(f"No trait group has {MIN_COHORT_KITS} customers")
