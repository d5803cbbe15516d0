"""The analyst example finds the cohort effects the sandbox builds in, on the synced warehouse."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.taxonomy import PREVOTELLA_SHIFT_BY_COUNTRY, Cohort, cohort_shifts
from tests.synced import SyncedWorld

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cohort_genus_abundance.py"


def _countries(predicate: object) -> str:
    return ",".join(sorted(c for c, shift in PREVOTELLA_SHIFT_BY_COUNTRY.items() if predicate(shift)))  # type: ignore[operator]


def _slow_vs_fast_genus() -> str:
    """The genus whose log-abundance the sandbox moves most between hard (Bristol 1-2) and loose (6-7)
    stools."""
    slow = cohort_shifts(Cohort("GB", 1, None))[0]
    fast = cohort_shifts(Cohort("GB", 7, None))[0]
    return max(slow.keys() & fast.keys(), key=lambda g: abs(slow[g][1] - fast[g][1]))


CASES = [
    # Prevotella: the sandbox raises it in Mediterranean diets and lowers it in North American ones
    ("Prevotella", "country", _countries(lambda s: s >= 0.9), _countries(lambda s: s <= -0.4)),
    (_slow_vs_fast_genus(), "bristol_scale", "1,2", "6,7"),
]


def _kits(synced: SyncedWorld, dimension: str, values: str) -> int:
    """Profiled kits in the cohorts, from the taxa_prevalence view (not the example's own query)."""
    return sum(
        synced.scalar(
            "SELECT any_value(kits_profiled) FROM taxa_prevalence "
            "WHERE cohort_dimension = ? AND cohort_value = ? AND rank = 'genus'",
            [dimension, value],
        )
        or 0
        for value in values.split(",")
    )


@pytest.mark.parametrize(("genus", "dimension", "group_a", "group_b"), CASES)
def test_the_example_finds_the_sandbox_cohort_effect(
    synced_world: SyncedWorld, genus: str, dimension: str, group_a: str, group_b: str
) -> None:
    done = subprocess.run(  # noqa: S603 - our own example, fixed arguments
        [
            sys.executable,
            "-W",
            "error",
            str(EXAMPLE),
            "--db",
            str(synced_world.warehouse),
            "--genus",
            genus,
            "--dimension",
            dimension,
            "--group-a",
            group_a,
            "--group-b",
            group_b,
            "--permutations",
            "2000",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    groups = dict(re.findall(r"group ([AB]): n = (\d+)", out))
    assert int(groups["A"]) == _kits(synced_world, dimension, group_a)
    assert int(groups["B"]) == _kits(synced_world, dimension, group_b)
    medians = dict(re.findall(r"group ([AB]): n = \d+, median = ([\d.]+)%", out))
    assert float(medians["A"]) > float(medians["B"])  # the direction the sandbox built in
    p_value = float(re.search(r"p-value \(Mann-Whitney U, normal approximation\) = ([\d.e+-]+)", out)[1])
    p_permutation = float(re.search(r"p-value \(permutation, \d+ shuffles\) = ([\d.e+-]+)", out)[1])
    assert p_value < 0.05
    assert p_permutation < 0.05
    assert f"{genus} differs between the two groups" in out
