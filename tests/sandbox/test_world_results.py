"""Biomesight results: compositional taxonomy, scores agreeing with it, cohort effects, CSV dialects, PDF."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import re
import statistics

import pytest

from sandbox.generated import GeneratedKit
from sandbox.model import TAXONOMY_RANKS, BiomesightResult, Kit, World
from sandbox.pdf import render_pdf
from sandbox.results import CSV_DIALECTS, PIPELINE_DIALECTS, render_results_json, render_taxonomy_csv
from sandbox.taxonomy import CATALOGUE, KINGDOM_IDS
from sandbox.world import generate_world

SCORE_KEYS = {"gut_health", "Diversity", "Probiotic", "Commensal", "Pathobiont"}


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(23, 400)


@pytest.fixture(scope="module")
def kits_with_results(world: World) -> list[Kit]:
    return [k for k in world.kits.values() if k.result is not None]


def result_of(kit: Kit) -> BiomesightResult:
    assert kit.result is not None
    return kit.result


def genus_abundance(kit: Kit, genus: str) -> float:
    return sum(r.abundance for r in result_of(kit).taxonomy if r.rank == "genus" and r.taxon == genus)


def country_of(world: World, kit: Kit) -> str:
    return world.orders[kit.order_id].customer.country_code


def test_catalogue_is_real_gut_taxa() -> None:
    genera = {genus.name for genus in CATALOGUE}
    assert 60 <= len(genera) <= 120
    assert {"Bacteroides", "Faecalibacterium", "Akkermansia", "Methanobrevibacter", "Escherichia"} <= genera
    assert all(1 <= len(genus.species) <= 3 for genus in CATALOGUE)
    faecali = next(g for g in CATALOGUE if g.name == "Faecalibacterium").species[0].path[-1]
    assert faecali.lineage == (
        "k__Bacteria; p__Firmicutes; c__Clostridia; o__Clostridiales; f__Ruminococcaceae; "
        "g__Faecalibacterium; s__prausnitzii"
    )
    methano = next(g for g in CATALOGUE if g.name == "Methanobrevibacter").species[0].path[0]
    assert methano.lineage == "k__Archaea; p__Euryarchaeota"
    assert methano.parent_id == KINGDOM_IDS["Archaea"]


def test_every_rank_sums_to_one_and_parents_sum_their_children(kits_with_results: list[Kit]) -> None:
    for kit in kits_with_results:
        taxonomy = result_of(kit).taxonomy
        assert {r.rank for r in taxonomy} == set(TAXONOMY_RANKS)
        for rank in TAXONOMY_RANKS:
            rows = [r for r in taxonomy if r.rank == rank]
            assert sum(r.abundance for r in rows) == pytest.approx(1.0, abs=1e-9)
            assert all(0 < r.abundance <= 1 and r.count > 0 for r in rows)
        counts = {r.lineage: r.count for r in taxonomy}
        children: dict[str, int] = {}
        for row in taxonomy:
            if row.rank != "phylum":
                parent = row.lineage.rsplit("; ", 1)[0]
                children[parent] = children.get(parent, 0) + row.count
        for lineage, summed in children.items():
            assert counts[lineage] == summed


def test_richness_varies_between_kits(kits_with_results: list[Kit]) -> None:
    richness = [sum(r.rank == "genus" for r in result_of(k).taxonomy) for k in kits_with_results]
    assert max(richness) - min(richness) >= 10


def test_scores_have_the_partner_keys_and_range(kits_with_results: list[Kit]) -> None:
    for kit in kits_with_results:
        scores = result_of(kit).scores
        assert set(scores) == SCORE_KEYS
        for value in scores.values():
            assert 0 <= value <= 100
            assert round(value, 2) == value


def test_diversity_is_monotone_in_the_recomputed_shannon_index(kits_with_results: list[Kit]) -> None:
    pairs = []
    for kit in kits_with_results:
        result = result_of(kit)
        genera = [r.abundance for r in result.taxonomy if r.rank == "genus"]
        shannon = -sum(p * math.log(p) for p in genera)
        assert result.shannon_genus == pytest.approx(shannon, rel=1e-9)
        pairs.append((shannon, result.scores["Diversity"]))
    pairs.sort()
    diversity = [d for _, d in pairs]
    assert diversity == sorted(diversity)
    assert diversity[0] < 25
    assert diversity[-1] > 75


def test_probiotic_and_pathobiont_scores_follow_their_genera(kits_with_results: list[Kit]) -> None:
    probiotic = [
        (genus_abundance(k, "Bifidobacterium") + genus_abundance(k, "Faecalibacterium"), k)
        for k in kits_with_results
    ]
    probiotic.sort(key=lambda pair: pair[0])
    third = len(probiotic) // 3
    low = statistics.mean(result_of(k).scores["Probiotic"] for _, k in probiotic[:third])
    high = statistics.mean(result_of(k).scores["Probiotic"] for _, k in probiotic[-third:])
    assert high > low + 10
    pathobionts = sorted(
        kits_with_results, key=lambda k: genus_abundance(k, "Escherichia") + genus_abundance(k, "Klebsiella")
    )
    few = statistics.mean(result_of(k).scores["Pathobiont"] for k in pathobionts[:third])
    many = statistics.mean(result_of(k).scores["Pathobiont"] for k in pathobionts[-third:])
    assert few > many + 10


def test_bristol_scale_cohort_effects_are_detectable(kits_with_results: list[Kit]) -> None:
    hard = [k for k in kits_with_results if k.bristol_scale in (1, 2)]
    loose = [k for k in kits_with_results if k.bristol_scale in (6, 7)]
    assert len(hard) >= 15
    assert len(loose) >= 15

    def mean(kits: list[Kit], genus: str) -> float:
        return statistics.mean(genus_abundance(k, genus) for k in kits)

    assert mean(hard, "Methanobrevibacter") > 3 * mean(loose, "Methanobrevibacter")
    assert mean(hard, "Akkermansia") > 2 * mean(loose, "Akkermansia")
    assert mean(hard, "Bacteroides") < mean(loose, "Bacteroides")
    for genus in ("Escherichia", "Klebsiella", "Veillonella"):
        assert mean(loose, genus) > 2 * mean(hard, genus)


def test_country_shifts_prevotella_against_bacteroides(world: World, kits_with_results: list[Kit]) -> None:
    south = [k for k in kits_with_results if country_of(world, k) in {"IT", "ES", "FR"}]
    us = [k for k in kits_with_results if country_of(world, k) == "US"]
    assert len(south) >= 10
    assert len(us) >= 30
    prevotella_south = statistics.mean(genus_abundance(k, "Prevotella") for k in south)
    prevotella_us = statistics.mean(genus_abundance(k, "Prevotella") for k in us)
    assert prevotella_south > 3 * prevotella_us
    bacteroides_south = statistics.mean(genus_abundance(k, "Bacteroides") for k in south)
    assert bacteroides_south < statistics.mean(genus_abundance(k, "Bacteroides") for k in us)


def test_most_kits_use_greengenes_and_pipelines_match_dialects(kits_with_results: list[Kit]) -> None:
    dialects = [result_of(k).csv_dialect for k in kits_with_results]
    assert set(dialects) == set(CSV_DIALECTS)
    assert 0.8 < dialects.count("greengenes") / len(dialects) < 0.97
    for kit in kits_with_results:
        assert PIPELINE_DIALECTS[result_of(kit).pipeline_id] == result_of(kit).csv_dialect


def parse(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("dialect", CSV_DIALECTS)
def test_each_csv_dialect_parses_and_recomputes_the_abundances(
    kits_with_results: list[Kit], dialect: str
) -> None:
    result = dataclasses.replace(result_of(kits_with_results[0]), csv_dialect=dialect)
    rows = parse(render_taxonomy_csv(result))
    assert len(rows) == len(result.taxonomy)
    expected = {(r.rank, r.lineage): r for r in result.taxonomy}
    if dialect == "greengenes":
        assert list(rows[0]) == ["taxonomy", "abundance"]
        by_rank: dict[int, float] = {}
        for row in rows:
            depth = row["taxonomy"].count(";")
            by_rank[depth] = by_rank.get(depth, 0.0) + float(row["abundance"])
            truth = expected[(TAXONOMY_RANKS[depth - 1], row["taxonomy"])]
            assert float(row["abundance"]) == pytest.approx(truth.abundance * 100, abs=1e-6)
        assert sorted(by_rank) == [1, 2, 3, 4, 5, 6]
        assert all(total == pytest.approx(100, abs=1e-3) for total in by_rank.values())
        assert any(re.search(r"; s__[a-z]+$", row["taxonomy"]) for row in rows)
        return
    count_column = "count"
    id_column, parent_column, name_column, rank_column = (
        ("taxon", "parent", "tax_name", "tax_rank")
        if dialect == "tax_name"
        else ("taxon_id", "parent", "name", "rank")
    )
    ids = {row[id_column] for row in rows}
    assert len(ids) == len(rows)
    totals: dict[str, int] = {}
    for row in rows:
        totals[row[rank_column]] = totals.get(row[rank_column], 0) + int(row[count_column])
        parent = int(row[parent_column])
        assert row[parent_column] in ids or parent in KINGDOM_IDS.values()
    assert set(totals) == set(TAXONOMY_RANKS)
    assert len(set(totals.values())) == 1  # every rank counts the same reads
    reads = totals["genus"]
    truth = {(r.rank, r.taxon): r for r in result.taxonomy}
    for row in rows:
        expected_row = truth[(row[rank_column], row[name_column])]
        assert int(row[count_column]) == expected_row.count
        assert int(row[count_column]) / reads == pytest.approx(expected_row.abundance, rel=1e-9)
        if dialect == "tax_name":
            assert float(row["count_norm"]) == pytest.approx(expected_row.abundance, abs=1e-8)


def test_results_json_is_exactly_the_documented_shape(kits_with_results: list[Kit]) -> None:
    kit = kits_with_results[0]
    body = render_results_json(kit)
    assert set(body) == {"scores", "recommendations", "general"}
    assert set(body["scores"]) == SCORE_KEYS
    assert set(body["general"]) == {"kit_id", "sample_id", "export_date", "pipeline_id"}
    assert body["general"]["kit_id"] == kit.kit_id
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", body["general"]["export_date"])
    assert kit.results_ready_at is not None
    assert body["general"]["export_date"] == kit.results_ready_at.strftime("%Y-%m-%d %H:%M:%S")
    recommendations = body["recommendations"]
    assert {g: set(v) for g, v in recommendations.items()} == {
        "food": {"enjoy", "avoid"},
        "prebiotics": {"enjoy", "reduce"},
        "probiotics": {"reduce"},
    }


def test_recommendations_follow_the_taxonomy(kits_with_results: list[Kit]) -> None:
    sample_ids = set()
    for kit in kits_with_results:
        result = result_of(kit)
        sample_ids.add(result.sample_id)
        species = {r.taxon for r in result.taxonomy if r.rank == "species"}
        assert set(result.recommendations["probiotics"]["reduce"]) <= species
        enjoy = result.recommendations["food"]["enjoy"]
        assert len(enjoy) == len(set(enjoy)) >= 2
        if genus_abundance(kit, "Akkermansia") < 0.005:
            assert "pomegranate" in enjoy
        if genus_abundance(kit, "Methanobrevibacter") > 0.01:
            assert "PHGG" in result.recommendations["prebiotics"]["reduce"]
        prebiotics = result.recommendations["prebiotics"]
        assert not set(prebiotics["enjoy"]) & set(prebiotics["reduce"])
    assert len(sample_ids) == len(kits_with_results)


def test_results_are_built_on_demand_but_stable(kits_with_results: list[Kit]) -> None:
    kit = kits_with_results[1]
    assert isinstance(kit, GeneratedKit)
    assert kit.result == kit.result
    copy = GeneratedKit(kit_id=kit.kit_id, order_id=kit.order_id, account=kit.account)
    assert copy.result is None
    assert kit.result_recipe is not None
    copy.set_result_recipe(kit.result_recipe)
    assert copy.result == kit.result
    copy.result = None
    assert copy.result is None


def test_pdf_is_a_valid_pdf_with_a_correct_xref(kits_with_results: list[Kit]) -> None:
    kit = kits_with_results[0]
    pdf = render_pdf(kit)
    assert pdf.startswith(b"%PDF-1.4")
    assert pdf.rstrip().endswith(b"%%EOF")
    startxref = int(re.search(rb"startxref\s+(\d+)\s+%%EOF", pdf).group(1))  # type: ignore[union-attr]
    assert pdf[startxref:].startswith(b"xref")
    header = re.match(rb"xref\s+0 (\d+)\s+", pdf[startxref:])
    assert header is not None
    size = int(header.group(1))
    entries = pdf[startxref + header.end() :].split(b"\n")[:size]
    assert entries[0] == b"0000000000 65535 f "
    for number, entry in enumerate(entries[1:], start=1):
        offset = int(entry[:10])
        assert pdf[offset:].startswith(f"{number} 0 obj".encode())
    assert re.search(rb"trailer\s*<<\s*/Size " + str(size).encode() + rb" /Root 1 0 R", pdf)
    length = int(re.search(rb"/Length (\d+)", pdf).group(1))  # type: ignore[union-attr]
    stream_start = pdf.index(b"stream\n") + len(b"stream\n")
    assert pdf[stream_start + length : stream_start + length + len(b"\nendstream")] == b"\nendstream"
    assert kit.kit_id.encode() in pdf
    top_genus = max((r for r in result_of(kit).taxonomy if r.rank == "genus"), key=lambda r: r.abundance)
    assert top_genus.taxon.encode() in pdf
