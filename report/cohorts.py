"""The cohort dimensions a report can compare, declared once: the command line's choices, the report's
validation and the charts' wording all read `DIMENSIONS`.

The view `kit_cohorts` (warehouse/sql/kit_cohorts.sql) computes each kit's value per dimension; as static SQL
and `kitsync report --help` must not open a warehouse, so the names live here too and a test checks them
against the loaded view's `cohort_dimension` values (tests/report/test_report.py).
"""

from __future__ import annotations

from typing import Final

# The dimension every kit belongs to with one value: a baseline, not something to compare cohorts on.
OVERALL: Final = "all"

# Each dimension of kit_cohorts a report can compare, in the view's order, with the words a chart uses for it.
DIMENSIONS: Final[dict[str, str]] = {
    "provider": "provider",
    "purchase_month": "purchase month",
    "country": "country",
    "sample_type": "sample type",
    "bristol_scale": "Bristol stool scale",
    "bm_frequency": "bowel-movement frequency",
    "trait_risk": "genetic trait risk",
}
DEFAULT_DIMENSION: Final = "purchase_month"


def cohort_dimensions() -> tuple[str, ...]:
    """The dimensions `kitsync report --cohort` accepts, in the view's order."""
    return tuple(DIMENSIONS)


def dimension_name(dimension: str) -> str:
    """A dimension as a sentence names it ("purchase month"); the overall baseline reads "all kits"."""
    if dimension == OVERALL:
        return "all kits"
    return DIMENSIONS.get(dimension, dimension.replace("_", " "))


def cohort_order(values: list[str]) -> list[str]:
    """Cohort values in reading order: numerically when all are numbers (bristol scale 1..7), else as text
    (ISO months and country codes already sort sensibly as text)."""
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)
