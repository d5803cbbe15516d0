"""One customer across both partners: keys, and the views customers, customer_journeys, customer_traits,
microbiome_by_trait and kit_cohorts' trait_risk, against the sandbox's ground truth.

Expectations are rebuilt from the sandbox's `World` as kitsync could observe it by the synced world's last
round: the platform's orders (the export), our Gencove samples, and which id each sample carries where (a
sample listed without a client_id has its metadata read at once, so in-flight samples are keyed too).
Pseudonyms are recomputed here with hmac (the documented definition), and every number with pandas; nothing is
read back from kitsync's views to build an expectation.
"""

from __future__ import annotations

import itertools
import statistics
from datetime import UTC, datetime

import pandas as pd
import pytest

from flows.demo import CROSS_PARTNER_SQL
from sandbox.taxonomy import GENOTYPE_EFFECTS
from tests.flows.truth import our_orders, registered_kits, sample_is_final
from tests.synced import SyncedWorld
from tests.warehouse.customer_truth import Truth, percentile_band, trait_risk_cohorts, truth_of
from tests.warehouse.test_readme_queries import examples
from tests.warehouse.test_views_results import snake, view

TOP_GENERA = 15
ABUNDANCE = 1e-7


@pytest.fixture(scope="module")
def truth(synced_world: SyncedWorld) -> Truth:
    return truth_of(synced_world)


def test_every_kit_carries_its_customers_one_key(synced_world: SyncedWorld, truth: Truth) -> None:
    """Biomesight kits and orders by the platform's id; Gencove samples by the id they carry, in flight or
    final; samples with no id anywhere stay NULL."""
    world = truth.world
    expected = {
        ("biomesight", kit.kit_id): truth.pseudonym(world.orders[kit.order_id].customer.customer_id)
        for kit in registered_kits(world, truth.at)
    }
    expected |= {("gencove", s.sample_id): truth.sample_key(s) for s in truth.samples()}
    stored = {
        (p, k): key for p, k, key in synced_world.rows("SELECT provider, kit_id, customer_key FROM kits")
    }
    assert stored == expected
    orders = dict(
        synced_world.rows("SELECT order_id, customer_key FROM orders WHERE provider = 'biomesight'")
    )
    assert orders == {
        o.order_id: truth.pseudonym(o.customer.customer_id) for o in our_orders(world, truth.at)
    }
    keyless = sum(key is None for (provider, _), key in expected.items() if provider == "gencove")
    assert keyless > 0, "the sandbox has samples without a readable customer id: they must stay keyless"
    in_flight = [s for s in truth.samples() if not sample_is_final(s, truth.at) and not s.client_id]
    assert sum(stored[("gencove", s.sample_id)] is not None for s in in_flight) >= 10


def test_every_customer_who_bought_both_has_one_key_in_both_partners_tables(
    synced_world: SyncedWorld, truth: Truth
) -> None:
    world = truth.world
    microbiome = {o.customer.customer_id for o in our_orders(world, truth.at)}
    genetics = {s.customer.customer_id for s in truth.samples() if truth.sample_key(s) is not None}
    both = microbiome & genetics
    assert len(both) >= 20, "the synced world should hold a few dozen customers with both tests"
    in_biomesight = {
        key
        for (key,) in synced_world.rows(
            "SELECT customer_key FROM orders WHERE provider = 'biomesight' "
            "UNION SELECT customer_key FROM kits WHERE provider = 'biomesight'"
        )
    }
    in_gencove = {
        key for (key,) in synced_world.rows("SELECT customer_key FROM kits WHERE provider = 'gencove'")
    }
    assert (in_biomesight & in_gencove) - {None} == {truth.pseudonym(c) for c in both}
    bought_both = {
        key for (key,) in synced_world.rows("SELECT customer_key FROM customers WHERE bought_both")
    }
    assert bought_both == {truth.pseudonym(c) for c in both}


def test_customers_view(synced_world: SyncedWorld, truth: Truth) -> None:
    purchases = truth.purchases().sort_values(["customer_key", "purchased_at", "provider"])
    grouped = purchases.groupby("customer_key")
    expected = pd.DataFrame(
        {
            "first_purchase_at": grouped["purchased_at"].min(),
            "last_purchase_at": grouped["purchased_at"].max(),
            "first_provider": grouped["provider"].first(),
            "tests_bought": grouped.size(),
            "biomesight_orders": grouped["provider"].apply(lambda p: int((p == "biomesight").sum())),
            "gencove_samples": grouped["provider"].apply(lambda p: int((p == "gencove").sum())),
            "providers": grouped["provider"].apply(lambda p: sorted(set(p))),
            "country_code": grouped["country_code"].apply(
                lambda c: c.dropna().iloc[-1] if c.notna().any() else None
            ),
        }
    )
    expected["bought_both"] = expected["providers"].map(len) == 2
    actual = view(synced_world, "SELECT * FROM customers").set_index("customer_key").sort_index()
    assert len(actual) == len(expected)
    for column in expected.columns:
        left = actual[column].tolist()
        right = expected.loc[actual.index, column].tolist()
        if column.endswith("_at"):
            left = [pd.Timestamp(v).tz_convert(UTC) for v in left]
            right = [pd.Timestamp(v).tz_convert(UTC) for v in right]
        if column == "providers":
            left = [list(v) for v in left]
        assert left == right, column


def test_customer_journeys_view(synced_world: SyncedWorld, truth: Truth) -> None:
    purchases = truth.purchases()
    expected = {}
    for key, rows in purchases.groupby("customer_key"):
        ordered = rows.sort_values(["purchased_at", "provider", "ref"]).to_dict("records")
        for number, row in enumerate(ordered, start=1):
            previous = ordered[number - 2] if number > 1 else None
            expected[(key, number)] = (
                row["provider"],
                None
                if previous is None
                else (row["purchased_at"] - previous["purchased_at"]).total_seconds() / 86400,
                (row["purchased_at"] - ordered[0]["purchased_at"]).total_seconds() / 86400,
                previous is not None and previous["provider"] != row["provider"],
            )
    actual = view(
        synced_world,
        "SELECT customer_key, purchase_number, provider, days_since_previous, days_since_first, "
        "crossed_partner FROM customer_journeys",
    )
    assert len(actual) == len(expected)
    crossed = 0
    for row in actual.itertuples(index=False):
        provider, since_previous, since_first, crossed_partner = expected[
            (row.customer_key, row.purchase_number)
        ]
        assert row.provider == provider
        if since_previous is None:
            assert pd.isna(row.days_since_previous)
        else:
            assert row.days_since_previous == pytest.approx(since_previous, abs=1e-6)
        assert row.days_since_first == pytest.approx(since_first, abs=1e-6)
        assert bool(row.crossed_partner) == crossed_partner
        crossed += crossed_partner
    assert crossed >= 10


def _latest_results(truth: Truth) -> tuple[dict[str, object], list[object]]:
    """customer key -> the result of their latest Biomesight kit with results; and every such kit's result."""
    world = truth.world
    latest: dict[str, tuple[tuple[datetime, str], object]] = {}
    results = []
    for kit in registered_kits(world, truth.at):
        if kit.results_ready_at is None or kit.results_ready_at > truth.at:
            continue
        result = kit.result
        results.append(result)
        key = truth.pseudonym(world.orders[kit.order_id].customer.customer_id)
        rank = (result.export_date.replace(microsecond=0), kit.kit_id)
        if key not in latest or rank > latest[key][0]:
            latest[key] = (rank, result)
    return {key: result for key, (_, result) in latest.items()}, results


@pytest.fixture(scope="module")
def trait_groups(truth: Truth) -> pd.DataFrame:
    """Expected microbiome_by_trait, computed from the world with pandas."""
    latest, results = _latest_results(truth)
    genus_sums: dict[str, float] = {}
    for result in results:
        for row in result.taxonomy:
            if row.rank == "genus":
                genus_sums[row.taxon] = genus_sums.get(row.taxon, 0.0) + row.abundance
    top = sorted(genus_sums, key=lambda g: (-genus_sums[g] / len(results), g))[:TOP_GENERA]
    rows = []
    for key, (_, traits) in truth.traits().items():
        result = latest.get(key)
        if result is None:
            continue
        genera = {row.taxon: row.abundance for row in result.taxonomy if row.rank == "genus"}
        measures = [("score", snake(name), value) for name, value in result.scores.items()]
        measures += [("genus", genus, genera.get(genus, 0.0)) for genus in top]
        for trait_key, item in traits.items():
            groups = [("percentile_band", percentile_band(item["trait_score"]["percentile"]))]
            if item["risk"] is not None:
                groups.append(("risk", item["risk"]))
            for grouping, group in groups:
                for kind, measure, value in measures:
                    rows.append((trait_key, grouping, group, kind, measure, key, value))
    frame = pd.DataFrame(
        rows, columns=["trait_key", "grouping", "trait_group", "measure_kind", "measure", "customer", "value"]
    )
    assert frame["customer"].nunique() >= 20, "the synced world should hold a few dozen customers with both"
    return (
        frame.groupby(["trait_key", "grouping", "trait_group", "measure_kind", "measure"])["value"]
        .agg(n="count", mean="mean", median="median")
        .reset_index()
    )


def test_microbiome_by_trait_view(synced_world: SyncedWorld, trait_groups: pd.DataFrame) -> None:
    keys = ["trait_key", "grouping", "trait_group", "measure_kind", "measure"]
    actual = view(synced_world, "SELECT * FROM microbiome_by_trait").set_index(keys).sort_index()
    expected = trait_groups.set_index(keys).sort_index()
    assert actual.index.tolist() == expected.index.tolist()
    assert actual["n"].tolist() == expected["n"].tolist()
    for column in ("mean", "median"):
        assert actual[column].to_numpy() == pytest.approx(expected[column].to_numpy(), abs=ABUNDANCE)


def test_the_sandbox_signal_shows_in_microbiome_by_trait(synced_world: SyncedWorld) -> None:
    """sandbox.taxonomy.GENOTYPE_EFFECTS documents the direction: read it there, find it in the view."""
    [(trait, (genus, _, log_effect))] = GENOTYPE_EFFECTS.items()
    rows = view(
        synced_world,
        f"SELECT grouping, trait_group, n, mean FROM microbiome_by_trait "  # noqa: S608 - a test's literal
        f"WHERE trait_key = '{trait}' AND measure_kind = 'genus' AND measure = '{genus}'",
    ).set_index(["grouping", "trait_group"])
    higher, lower = ("high_risk", "not_high_risk") if log_effect > 0 else ("not_high_risk", "high_risk")
    assert rows.loc[("risk", higher), "n"] >= 3
    assert rows.loc[("risk", higher), "mean"] > 1.5 * rows.loc[("risk", lower), "mean"]
    top, bottom = ("67-100", "0-33") if log_effect > 0 else ("0-33", "67-100")
    assert rows.loc[("percentile_band", top), "mean"] > rows.loc[("percentile_band", bottom), "mean"]


def test_kit_cohorts_has_a_trait_risk_dimension(synced_world: SyncedWorld, truth: Truth) -> None:
    expected = {(p, k, value) for (p, k), values in trait_risk_cohorts(truth).items() for value in values}
    actual = set(
        synced_world.rows(
            "SELECT provider, kit_id, cohort_value FROM kit_cohorts WHERE cohort_dimension = 'trait_risk'"
        )
    )
    assert actual == expected
    assert {provider for provider, _, _ in actual} == {"biomesight", "gencove"}


# --- the README's example queries, answered from the ground truth ------------------------------------------


def readme_example(name: str) -> str:
    return dict(examples())[name]


def test_readme_customer_purchases_example(synced_world: SyncedWorld, truth: Truth) -> None:
    purchases = truth.purchases()
    samples = truth.samples()
    keyless = {"biomesight": 0, "gencove": sum(truth.sample_key(s) is None for s in samples)}
    expected = [
        (provider, len(rows), rows["customer_key"].nunique(), keyless[provider])
        for provider, rows in sorted(purchases.groupby("provider"))
    ]
    assert synced_world.rows(readme_example("customer_purchases")) == expected


def test_readme_customers_example(synced_world: SyncedWorld, truth: Truth) -> None:
    purchases = truth.purchases().sort_values(["purchased_at", "provider"])
    per_customer = purchases.groupby("customer_key").agg(
        first_provider=("provider", "first"), providers=("provider", "nunique")
    )
    expected = [
        (provider, len(rows), int((rows["providers"] == 2).sum()))
        for provider, rows in sorted(per_customer.groupby("first_provider"))
    ]
    assert synced_world.rows(readme_example("customers")) == expected


def test_readme_customer_journeys_example(synced_world: SyncedWorld, truth: Truth) -> None:
    gaps: dict[str, list[float]] = {}
    for _, rows in truth.purchases().groupby("customer_key"):
        ordered = rows.sort_values(["purchased_at", "provider", "ref"]).to_dict("records")
        for previous, current in itertools.pairwise(ordered):
            if previous["provider"] != current["provider"]:
                days = (current["purchased_at"] - previous["purchased_at"]).total_seconds() / 86400
                gaps.setdefault(f"{previous['provider']} -> {current['provider']}", []).append(days)
    actual = synced_world.rows(readme_example("customer_journeys"))
    assert [(crossing, n) for crossing, n, _ in actual] == [(c, len(gaps[c])) for c in sorted(gaps)]
    for crossing, _, median_days in actual:
        assert median_days == pytest.approx(statistics.median(gaps[crossing]), abs=0.05 + 1e-9)


def test_readme_customer_traits_example(synced_world: SyncedWorld, truth: Truth) -> None:
    counts: dict[tuple[str, str], int] = {}
    for _, traits in truth.traits().values():
        for trait, item in traits.items():
            if item["risk"] is not None:
                counts[(trait, item["risk"])] = counts.get((trait, item["risk"]), 0) + 1
    expected = [(trait, risk, n) for (trait, risk), n in sorted(counts.items())]
    assert synced_world.rows(readme_example("customer_traits")) == expected


def test_readme_microbiome_by_trait_example(synced_world: SyncedWorld, trait_groups: pd.DataFrame) -> None:
    rows = trait_groups[
        (trait_groups["trait_key"] == "lactose_intolerance")
        & (trait_groups["grouping"] == "risk")
        & (trait_groups["measure"] == "Bifidobacterium")
    ].sort_values("trait_group")
    actual = synced_world.rows(readme_example("microbiome_by_trait"))
    assert [(group, n) for group, n, _, _ in actual] == list(zip(rows["trait_group"], rows["n"], strict=True))
    for (_, _, mean_pct, median_pct), mean, median in zip(actual, rows["mean"], rows["median"], strict=True):
        assert mean_pct == pytest.approx(100 * mean, abs=0.005 + 1e-9)
        assert median_pct == pytest.approx(100 * median, abs=0.005 + 1e-9)


def test_the_demos_cross_partner_answer(
    synced_world: SyncedWorld, truth: Truth, trait_groups: pd.DataFrame
) -> None:
    """The question `make demo` prints across partners, answered from the ground truth."""
    rows = trait_groups[
        (trait_groups["trait_key"] == "lactose_intolerance")
        & (trait_groups["grouping"] == "risk")
        & (trait_groups["measure"] == "Bifidobacterium")
    ].sort_values("trait_group")
    purchases = truth.purchases()
    bought_both = int((purchases.groupby("customer_key")["provider"].nunique() == 2).sum())
    answer = synced_world.rows(CROSS_PARTNER_SQL)
    assert [(group, n, both) for group, n, _, _, both in answer] == [
        (group, n, bought_both) for group, n in zip(rows["trait_group"], rows["n"], strict=True)
    ]
    assert [group for group, *_ in answer] == ["high_risk", "not_high_risk"]
