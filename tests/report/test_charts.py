"""The charts' house style is matplotlib state only while a chart draws: importing the report or drawing a
chart leaves the process's rcParams as they were (another library drawing in the process keeps its own)."""

from __future__ import annotations

import subprocess
import sys

import matplotlib as mpl
import pandas as pd

from report.charts import HOUSE_STYLE, house_style, stuck_chart


def test_importing_the_report_sets_no_matplotlib_style() -> None:
    probe = (
        "import matplotlib as mpl\n"
        "before = {k: str(v) for k, v in mpl.rcParams.items()}\n"
        "import report.build, report.charts, report.traits\n"
        "after = {k: str(v) for k, v in mpl.rcParams.items()}\n"
        "changed = sorted(k for k in before if before[k] != after[k])\n"
        "assert not changed, changed\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=120)  # noqa: S603 - our own probe


def test_a_chart_draws_in_the_house_style_and_puts_the_previous_one_back() -> None:
    before = {key: mpl.rcParams[key] for key in HOUSE_STYLE}
    assert before["font.size"] != HOUSE_STYLE["font.size"]  # matplotlib's default, so a change would show
    seen: dict[str, object] = {}
    with house_style():
        seen.update({key: mpl.rcParams[key] for key in HOUSE_STYLE})
    assert seen["font.size"] == HOUSE_STYLE["font.size"]
    stuck = pd.DataFrame(
        {
            "provider": ["gencove"],
            "kit_id": ["K1"],
            "current_stage": ["processing"],
            "days_in_current_stage": [30.0],
            "p95_days": [12.0],
        }
    )
    overview = pd.DataFrame({"provider": ["gencove"], "kits": [5], "kits_final": [2]})
    chart = stuck_chart(stuck, overview)
    assert chart is not None
    assert chart.png.startswith(b"\x89PNG")
    assert {key: mpl.rcParams[key] for key in HOUSE_STYLE} == before
