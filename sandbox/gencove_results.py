"""What a finished Gencove sample delivers: files, quality controls, trait scores and ancestry.

Built on demand from a `DeliverableRecipe` (a few strings and a seed), never stored, so 100,000 samples cost
little memory; the same recipe always gives the same ids, sizes and checksums.
"""

from __future__ import annotations

import hashlib
import math
import random
import uuid
from statistics import NormalDist
from typing import Any, NamedTuple

from sandbox.model import GENCOVE_DELIVERABLE_TYPES, GencoveFile

FILE_NAMESPACE = uuid.UUID("0d6c1f3e-5b1a-4c2e-9a57-6b1e2d3c4f50")
INPUT_FILE_TYPES = ("fastq-r1", "fastq-r2")
_SUFFIXES = {
    "fastq-r1": "_R1.fastq.gz",
    "fastq-r2": "_R2.fastq.gz",
    "alignment-bam": ".bam",
    "alignment-bai": ".bam.bai",
    "impute-vcf": "_impute.vcf.gz",
    "impute-tbi": "_impute.vcf.gz.tbi",
    "impute-csi": "_impute.vcf.gz.csi",
    "ancestry-json": "_ancestry.json",
    "report-zip": "_report.zip",
}
# Typical sizes in bytes (low, high) for low-pass whole-genome data.
_SIZES = {
    "fastq-r1": (600_000_000, 1_400_000_000),
    "fastq-r2": (600_000_000, 1_400_000_000),
    "alignment-bam": (900_000_000, 2_200_000_000),
    "alignment-bai": (4_000_000, 9_000_000),
    "impute-vcf": (350_000_000, 700_000_000),
    "impute-tbi": (1_500_000, 3_000_000),
    "impute-csi": (1_200_000, 2_600_000),
    "ancestry-json": (1_500, 4_000),
    "report-zip": (2_000_000, 8_000_000),
}
# (key, unit, population mean, sd, risk threshold percentile or None)
_TRAITS = (
    ("height", "cm", 170.0, 9.0, None),
    ("bmi", "kg/m2", 25.5, 4.0, 90.0),
    ("caffeine_metabolism", "score", 0.0, 1.0, None),
    ("lactose_intolerance", "probability", 0.35, 0.2, 80.0),
    ("vitamin_d_levels", "ng/ml", 28.0, 8.0, None),
)
# Reference panels by where customers live: population -> typical share.
_ANCESTRY_BASE = {
    "GB": {
        "northwestern_european": 0.85,
        "southern_european": 0.05,
        "south_asian": 0.05,
        "west_african": 0.05,
    },
    "IE": {"northwestern_european": 0.92, "southern_european": 0.05, "eastern_european": 0.03},
    "US": {
        "northwestern_european": 0.45,
        "southern_european": 0.1,
        "west_african": 0.15,
        "native_american": 0.1,
        "east_asian": 0.1,
        "ashkenazi_jewish": 0.1,
    },
    "DE": {"northwestern_european": 0.7, "eastern_european": 0.2, "southern_european": 0.1},
    "IT": {"southern_european": 0.8, "northwestern_european": 0.1, "middle_eastern": 0.1},
    "ES": {"southern_european": 0.8, "northwestern_european": 0.1, "north_african": 0.1},
}
_ANCESTRY_DEFAULT = {
    "northwestern_european": 0.6,
    "southern_european": 0.15,
    "eastern_european": 0.1,
    "east_asian": 0.15,
}


class DeliverableRecipe(NamedTuple):
    """What a sample's deliverables are derived from."""

    seed: int
    sample_id: str
    project_id: str
    client_id: str
    outcome: str | None  # final status, or None if the sample never finishes
    failed_qc: tuple[str, ...]
    country_code: str
    genome: str = ""  # the customer's genome seed (see `genome_z`); "" gives the sample a genome of its own


def _has_outputs(recipe: DeliverableRecipe) -> bool:
    return recipe.outcome == "succeeded"


def _has_inputs(recipe: DeliverableRecipe) -> bool:
    return recipe.outcome in {"succeeded", "failed qc", "failed_qc"}


def build_files(recipe: DeliverableRecipe) -> list[GencoveFile]:
    """All deliverable types for a succeeded sample; only the fastq inputs after failed QC; else nothing."""
    if not _has_inputs(recipe):
        return []
    types = GENCOVE_DELIVERABLE_TYPES if _has_outputs(recipe) else INPUT_FILE_TYPES
    stem = recipe.client_id or recipe.sample_id
    files = []
    for file_type in types:
        key = f"{recipe.seed}:{recipe.sample_id}:{file_type}"
        low, high = _SIZES[file_type]
        size = low + int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") % (
            high - low
        )
        files.append(
            GencoveFile(
                file_id=str(uuid.uuid5(FILE_NAMESPACE, key)),
                file_type=file_type,
                size=size,
                checksum_sha256=hashlib.sha256(key.encode()).hexdigest(),
                s3_path=f"gencove-sandbox/projects/{recipe.project_id}/{recipe.sample_id}/{stem}{_SUFFIXES[file_type]}",
            )
        )
    return files


def build_quality_controls(recipe: DeliverableRecipe) -> list[dict[str, Any]]:
    """QC metrics in the API's shape; the metric behind a failed-QC reason fails."""
    if not _has_inputs(recipe):
        return []
    rng = random.Random(f"{recipe.seed}:qc")
    failing = set(recipe.failed_qc)
    coverage = rng.uniform(0.1, 0.45) if "coverage" in failing else rng.uniform(0.8, 2.5)
    metrics = (
        ("raw_coverage", "float", 0.5, round(coverage, 4), "", "coverage" in failing),
        (
            "effective_coverage",
            "float",
            0.4,
            round(coverage * rng.uniform(0.82, 0.95), 4),
            "",
            "coverage" in failing,
        ),
        ("bases_dedup", "float", 0.7, round(rng.uniform(0.85, 0.98), 4), "", False),
        ("fraction_aligned", "float", 0.9, round(rng.uniform(0.93, 0.995), 4), "", False),
        (
            "contamination",
            "float",
            0.05,
            round(rng.uniform(0.06, 0.2) if "contamination" in failing else rng.uniform(0.0, 0.02), 4),
            "",
            "contamination" in failing,
        ),
        (
            "format",
            "string",
            None,
            None,
            "invalid read header" if "format" in failing else "ok",
            "format" in failing,
        ),
    )
    return [
        {
            "quality_control_type": {"key": key, "type": kind},
            "quality_control": {
                "value_expected": expected,
                "value_measured": measured,
                "value_string": text,
                "status": "failed" if failed else "succeeded",
            },
        }
        for key, kind, expected, measured, text, failed in metrics
    ]


def _percentile(z: float) -> float:
    return round(50 * (1 + math.erf(z / math.sqrt(2))), 1)


def genome_z(genome: str) -> dict[str, float]:
    """A person's standardized polygenic score per trait: a function of their genome seed only.

    Every sample of one customer reads the same genome (one person, one genotype), and the Biomesight side of
    the world reads it too to shift their microbiome (ground truth: sandbox.taxonomy.GENOTYPE_EFFECTS).
    """
    return {key: trait_z(genome, key) for key, *_ in _TRAITS}


_STANDARD_NORMAL = NormalDist()


def trait_z(genome: str, trait: str) -> float:
    """One trait's standardized score of a genome: a hash mapped through the normal quantile function (cheap
    enough to call for every kit of a 100,000-kit world)."""
    digest = hashlib.blake2b(f"genome:{genome}:{trait}".encode(), digest_size=8).digest()
    uniform = (int.from_bytes(digest, "big") + 0.5) / 2**64
    return _STANDARD_NORMAL.inv_cdf(uniform)


def trait_percentile(z: float) -> float:
    """The percentile a trait score of standardized value `z` is reported at (one decimal, as sent)."""
    return _percentile(z)


RISK_PERCENTILES: dict[str, float] = {key: risk for key, _, _, _, risk in _TRAITS if risk is not None}


def build_trait_scores(recipe: DeliverableRecipe) -> list[dict[str, Any]]:
    """Polygenic trait scores in the API's item shape (succeeded samples only), from the customer's genome."""
    if not _has_outputs(recipe):
        return []
    rng = random.Random(f"{recipe.seed}:traits")
    own = {key: rng.gauss(0, 1) for key, *_ in _TRAITS}
    genome = genome_z(recipe.genome) if recipe.genome else own
    items = []
    for key, unit, mean, sd, risk_percentile in _TRAITS:
        z = genome[key]
        percentile = _percentile(z)
        risk = (
            None
            if risk_percentile is None
            else ("high_risk" if percentile >= risk_percentile else "not_high_risk")
        )
        items.append(
            {
                "trait_score": {"value": round(mean + z * sd, 3), "percentile": percentile},
                "trait_distribution": {"value": {"mean": mean, "sd": sd}, "version": "2024.1"},
                "trait": {"key": key},
                "trait_unit": {"key": unit},
                "risk": risk,
            }
        )
    return items


def build_ancestry(recipe: DeliverableRecipe) -> dict[str, Any]:
    """Population fractions summing to 1 (rounded to 4 places), only for succeeded samples."""
    if not _has_outputs(recipe):
        return {}
    rng = random.Random(f"{recipe.seed}:ancestry")
    base = _ANCESTRY_BASE.get(recipe.country_code, _ANCESTRY_DEFAULT)
    draws = {population: rng.gammavariate(share * 8 + 0.05, 1.0) for population, share in base.items()}
    total = sum(draws.values())
    fractions = {population: round(value / total, 4) for population, value in draws.items()}
    largest = max(fractions, key=lambda population: fractions[population])
    fractions[largest] = round(fractions[largest] + 1 - sum(fractions.values()), 4)
    return {
        "ancestry": {"value": {p: f for p, f in fractions.items() if f > 0}},
        "metadata": {"value": {"version": "ancestry-v2.3", "reference_panel": "1000G+HGDP"}},
    }
