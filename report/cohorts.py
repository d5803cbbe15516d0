"""The cohort dimensions a report can compare, read from the one place that defines them: kit_cohorts.sql."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import warehouse

KIT_COHORTS_SQL = Path(warehouse.__file__).parent / "sql" / "kit_cohorts.sql"
DEFAULT_DIMENSION = "purchase_month"
# The dimension every kit belongs to with one value: a baseline, not something to compare cohorts on.
OVERALL = "all"

_UNPIVOT_LIST = re.compile(r"UNPIVOT\s*\(.*?\bIN\s*\((?P<items>.*?)\)\s*\)", re.IGNORECASE | re.DOTALL)
_ALIAS = re.compile(r"\bAS\s+'(?P<name>[A-Za-z0-9_]+)'", re.IGNORECASE)
# Dimensions added beside the UNPIVOT (a kit may be in several cohorts): `'x' AS cohort_dimension`.
_EXTRA = re.compile(r"'(?P<name>[A-Za-z0-9_]+)'\s+AS\s+cohort_dimension\b", re.IGNORECASE)


@cache
def cohort_dimensions() -> tuple[str, ...]:
    """The dimensions `kitsync report --cohort` accepts, in the order the view declares them.

    Parsed from the view's UNPIVOT list rather than copied, so a dimension added to the view is offered by the
    command line without a second edit (and a test checks the parse against the loaded view's values).
    """
    text = re.sub(r"--[^\n]*", " ", KIT_COHORTS_SQL.read_text())
    match = _UNPIVOT_LIST.search(text)
    if match is None:
        raise RuntimeError(f"{KIT_COHORTS_SQL} has no UNPIVOT (... IN (...)) list of cohort dimensions")
    names = [m["name"] for m in _ALIAS.finditer(match["items"])]
    names += [m["name"] for m in _EXTRA.finditer(text)]
    return tuple(name for name in names if name != OVERALL)


def cohort_order(values: list[str]) -> list[str]:
    """Cohort values in reading order: numerically when all are numbers (bristol scale 1..7), else as text
    (ISO months and country codes already sort sensibly as text)."""
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)
