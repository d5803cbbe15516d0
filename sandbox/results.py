"""Biomesight lab results: scores and recommendations derived from the taxonomy, and their wire renderings.

A result is rebuilt on demand from a small `ResultRecipe` (a seed plus what the lab knows about the sample),
so a world of 100,000 kits holds recipes, not taxonomies; a bounded cache keeps recently served results warm.
"""

from __future__ import annotations

import csv
import io
import math
import random
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sandbox.model import BiomesightResult, Kit, TaxonAbundance
from sandbox.taxonomy import (
    BENEFICIAL_GENERA,
    COMMENSAL_GENERA,
    PATHOBIONT_GENERA,
    TAXA_BY_LINEAGE,
    Cohort,
    generate_taxonomy,
    shannon,
)

CSV_DIALECTS = ("greengenes", "tax_name", "taxon_id")
CSV_HEADERS = {
    "greengenes": ("taxonomy", "abundance"),
    "tax_name": ("tax_name", "tax_rank", "count", "count_norm", "taxon", "parent"),
    "taxon_id": ("taxon_id", "rank", "name", "parent", "count"),
}
# Pipelines 1 and 2 were older lab pipelines that exported count-based CSVs; 3 is the Greengenes export.
PIPELINE_DIALECTS = {1: "tax_name", 2: "taxon_id", 3: "greengenes"}

# The fixed reference population the Diversity percentile is read against (genus-level Shannon, natural log):
# fixed so that a kit's percentile does not depend on how many other kits the world holds.
SHANNON_REFERENCE_MEAN = 2.45
SHANNON_REFERENCE_SD = 0.42


class ResultRecipe(NamedTuple):
    """Everything a kit's result is derived from; equal recipes give equal results."""

    seed: int
    kit_id: str
    sample_id: int
    pipeline_id: int
    export_date: datetime
    cohort: Cohort


# --- scores -------------------------------------------------------------------------------------------------


def diversity_percentile(shannon_genus: float) -> float:
    """Percentile of a genus-level Shannon index in the reference population: strictly increasing."""
    z = (shannon_genus - SHANNON_REFERENCE_MEAN) / SHANNON_REFERENCE_SD
    return 50 * (1 + math.erf(z / math.sqrt(2)))


def _logistic(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _score(value: float) -> float:
    return round(min(100.0, max(0.0, value)), 2)


def genus_abundances(taxonomy: list[TaxonAbundance]) -> dict[str, float]:
    """Genus name -> fraction of the genus rank."""
    return {row.taxon: row.abundance for row in taxonomy if row.rank == "genus"}


def compute_scores(taxonomy: list[TaxonAbundance]) -> tuple[dict[str, float], float]:
    """The partner's five dials (keys as it sends them) and the genus Shannon index behind Diversity."""
    genera = genus_abundances(taxonomy)
    shannon_genus = shannon(list(genera.values()))
    beneficial = sum(v for name, v in genera.items() if name in BENEFICIAL_GENERA)
    pathobiont = sum(v for name, v in genera.items() if name in PATHOBIONT_GENERA)
    commensal = sum(v for name, v in genera.items() if name in COMMENSAL_GENERA)
    diversity = _score(diversity_percentile(shannon_genus))
    probiotic = _score(100 * _logistic((math.log(beneficial + 1e-6) - math.log(0.2)) / 0.45))
    pathobiont_score = _score(100 * (1 - _logistic((math.log(pathobiont + 1e-6) - math.log(0.03)) / 0.7)))
    commensal_score = _score(100 * _logistic((commensal - 0.5) / 0.12))
    gut_health = _score(0.3 * diversity + 0.25 * probiotic + 0.2 * commensal_score + 0.25 * pathobiont_score)
    scores = {
        "gut_health": gut_health,
        "Diversity": diversity,
        "Probiotic": probiotic,
        "Commensal": commensal_score,
        "Pathobiont": pathobiont_score,
    }
    return scores, shannon_genus


# --- recommendations ----------------------------------------------------------------------------------------

_FOOD_ENJOY = (
    "cranberries",
    "green tea",
    "pomegranate",
    "blueberries",
    "walnuts",
    "dark chocolate",
    "kiwi",
    "flaxseed",
    "leeks",
    "onions",
    "garlic",
    "asparagus",
    "oats",
    "lentils",
    "chickpeas",
    "kefir",
    "sauerkraut",
    "apples",
    "bananas",
    "almonds",
    "olive oil",
    "artichokes",
    "barley",
)
_FOOD_AVOID = (
    "acacia tree",
    "guar bean",
    "red meat",
    "processed meat",
    "artificial sweeteners",
    "refined sugar",
    "fried food",
    "alcohol",
    "white bread",
    "saturated fat",
    "eggs",
)
_PREBIOTICS = (
    "Acacia fiber",
    "lactulose",
    "PHGG",
    "psyllium",
    "inulin",
    "FOS",
    "GOS",
    "resistant starch",
    "beta-glucan",
    "arabinoxylan",
    "pectin",
    "XOS",
)


def _ordered_unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def compute_recommendations(
    taxonomy: list[TaxonAbundance], rng: random.Random
) -> dict[str, dict[str, list[str]]]:
    """Rule-based advice from the taxonomy (feed what is low, starve pathobionts), plus some noise."""
    genera = genus_abundances(taxonomy)
    food_enjoy: list[str] = []
    food_avoid: list[str] = []
    prebiotics_enjoy: list[str] = []
    prebiotics_reduce: list[str] = []
    if genera.get("Akkermansia", 0.0) < 0.005:
        food_enjoy += ["cranberries", "pomegranate", "green tea"]  # polyphenols feed Akkermansia
    if genera.get("Bifidobacterium", 0.0) < 0.01:
        food_enjoy += ["onions", "garlic", "leeks", "bananas"]
        prebiotics_enjoy += ["GOS", "FOS", "inulin"]
    if genera.get("Faecalibacterium", 0.0) < 0.05:
        food_enjoy += ["oats", "apples", "kiwi"]
        prebiotics_enjoy += ["Acacia fiber", "pectin"]
    if genera.get("Methanobrevibacter", 0.0) > 0.01:
        food_avoid += ["acacia tree", "guar bean"]
        prebiotics_reduce += ["PHGG", "psyllium"]
    if genera.get("Bilophila", 0.0) > 0.005:
        food_avoid += ["saturated fat", "fried food"]
    if genera.get("Desulfovibrio", 0.0) > 0.005:
        food_avoid += ["red meat", "eggs"]
    if sum(v for name, v in genera.items() if name in PATHOBIONT_GENERA) > 0.03:
        food_avoid += ["refined sugar", "processed meat", "artificial sweeteners"]
        prebiotics_reduce += ["inulin", "FOS"]
    food_enjoy += rng.sample(_FOOD_ENJOY, rng.randint(2, 5))
    if rng.random() < 0.6:
        food_avoid += rng.sample(_FOOD_AVOID, rng.randint(1, 2))
    prebiotics_reduce = _ordered_unique(prebiotics_reduce)  # what feeds an overgrowth wins over a wish list
    allowed = [p for p in _PREBIOTICS if p not in prebiotics_reduce]
    prebiotics_enjoy = [p for p in prebiotics_enjoy if p not in prebiotics_reduce]
    prebiotics_enjoy += rng.sample(allowed, rng.randint(1, 3))
    probiotics_reduce = [
        row.taxon
        for row in taxonomy
        if row.rank == "species" and row.taxon.split(" ")[0] in PATHOBIONT_GENERA and row.abundance > 0.004
    ]
    return {
        "food": {"enjoy": _ordered_unique(food_enjoy), "avoid": _ordered_unique(food_avoid)},
        "prebiotics": {"enjoy": _ordered_unique(prebiotics_enjoy), "reduce": prebiotics_reduce},
        "probiotics": {"reduce": probiotics_reduce},
    }


# --- building -----------------------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def build_result(recipe: ResultRecipe) -> BiomesightResult:
    """The kit's result, derived only from its recipe (cached: the HTTP side asks for JSON, CSV and PDF)."""
    rng = random.Random(recipe.seed)
    taxonomy = generate_taxonomy(rng, recipe.cohort)
    scores, shannon_genus = compute_scores(taxonomy)
    return BiomesightResult(
        sample_id=recipe.sample_id,
        pipeline_id=recipe.pipeline_id,
        export_date=recipe.export_date,
        scores=scores,
        recommendations=compute_recommendations(taxonomy, rng),
        taxonomy=taxonomy,
        csv_dialect=PIPELINE_DIALECTS[recipe.pipeline_id],
        shannon_genus=shannon_genus,
    )


# --- wire renderings ----------------------------------------------------------------------------------------


def render_results_json(kit: Kit) -> dict[str, Any]:
    """The documented `format=json` body for a kit whose result exists."""
    result = kit.result
    if result is None:
        raise ValueError(f"kit {kit.kit_id} has no result")
    return {
        "scores": dict(result.scores),
        "recommendations": {
            group: {verdict: list(items) for verdict, items in verdicts.items()}
            for group, verdicts in result.recommendations.items()
        },
        "general": {
            "kit_id": kit.kit_id,
            "sample_id": result.sample_id,
            "export_date": result.export_date.strftime("%Y-%m-%d %H:%M:%S"),
            "pipeline_id": result.pipeline_id,
        },
    }


def render_taxonomy_csv(result: BiomesightResult) -> str:
    """The taxonomy CSV (before base64) in the result's dialect."""
    if result.csv_dialect not in CSV_HEADERS:
        raise ValueError(f"unknown taxonomy CSV dialect {result.csv_dialect!r}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADERS[result.csv_dialect])
    for row in result.taxonomy:
        if result.csv_dialect == "greengenes":
            writer.writerow((row.lineage, f"{row.abundance * 100:.6f}"))
            continue
        taxon = TAXA_BY_LINEAGE[row.lineage]
        if result.csv_dialect == "tax_name":
            writer.writerow(
                (row.taxon, row.rank, row.count, f"{row.abundance:.8f}", taxon.taxon_id, taxon.parent_id)
            )
        else:
            writer.writerow((taxon.taxon_id, row.rank, row.taxon, taxon.parent_id, row.count))
    return buffer.getvalue()
