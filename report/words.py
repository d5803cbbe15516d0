"""How the report names things in sentences and on axes: providers, stages, cohorts, scores, shares.

Shared by the findings (the sentences) and the charts (the axes), so a chart's labels and its title agree.
"""

from __future__ import annotations

import textwrap

import pandas as pd

PROVIDER_NAMES = {"biomesight": "Biomesight", "gencove": "Gencove"}
SCORE_UNIT = "score (0-100 points)"
RANK_PLURALS = {
    "genus": "genera",
    "species": "species",
    "family": "families",
    "phylum": "phyla",
    "class": "classes",
}


def provider_name(provider: str) -> str:
    return PROVIDER_NAMES.get(provider, provider)


def stage_name(stage: str) -> str:
    return str(stage).replace("_", " ")


def percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def share(fraction: float) -> str:
    """A fraction as a percentage with two significant digits, so 0.0004 reads 0.04% rather than 0.0%."""
    value = 100 * fraction
    if value == 0 or value >= 10:
        return f"{value:.0f}%"
    return f"{value:.2g}%" if value >= 0.01 else "<0.01%"


def cohort_label(dimension: str, value: str) -> str:
    """A cohort value as a title names it: a bare "2" means nothing outside the chart's axis."""
    if dimension == "bristol_scale":
        return f"Bristol type {value}"
    return f"'{value}'" if " " in str(value) else str(value)


def score_label(name: str) -> str:
    """'diversity' -> 'Diversity score'; a name that already says score is only capitalized."""
    text = str(name).replace("_", " ")
    return text[:1].upper() + text[1:] + ("" if "score" in text.lower() else " score")


def by_provider_text(counts: pd.Series) -> str:
    """ "206 Biomesight, 287 Gencove" from a provider-indexed count series."""
    return ", ".join(f"{int(n)} {provider_name(str(p))}" for p, n in counts.items() if n)


def wrap(label: str, width: int = 12) -> str:
    """A tick label broken into lines of at most `width` characters."""
    return "\n".join(textwrap.wrap(str(label), width)) or str(label)
