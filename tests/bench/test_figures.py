"""The bench scripts' --json figures: one shape for every goal, `met` judged the way the goal reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import _harness as h  # noqa: E402 - the bench scripts' own helper module, not a package


def test_figures_are_written_with_the_declared_keys(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "figures.json"
    h.write_figures(
        out,
        [
            h.figure("speed", 90.0, 100.0, goal=0.9, size=500),
            h.figure("cost", 1.3, 1.0, goal=1.2, size=500, at_most=True),
            h.breakdown("dlt extract step seconds", 3.0, 4.0, size=500),
        ],
    )
    speed, cost, step = json.loads(out.read_text())
    assert all(list(figure) == list(h.FIGURE_KEYS) for figure in (speed, cost, step))
    assert (speed["ratio"], speed["met"]) == (pytest.approx(0.9), True)
    assert (cost["ratio"], cost["met"]) == (pytest.approx(1.3), False)
    assert (step["kitsync"], step["ratio"], step["goal"], step["met"]) == (None, 0.75, None, None)


def test_no_file_without_json(tmp_path: Path) -> None:
    h.write_figures(None, [h.figure("speed", 1.0, 1.0, goal=1.0, size=1)])
    assert not list(tmp_path.iterdir())


def test_figures_script_merges_runs_and_refuses_another_shape(tmp_path: Path) -> None:
    first, second, merged = tmp_path / "1.json", tmp_path / "2.json", tmp_path / "all.json"
    h.write_figures(first, [h.figure("a", 2.0, 1.0, goal=1.5, size=10)])
    h.write_figures(second, [h.figure("b", 1.0, 2.0, goal=1.5, size=10)])
    script = [sys.executable, str(BENCH / "figures.py")]
    done = subprocess.run([*script, str(first), str(second), "--out", str(merged)], check=False)  # noqa: S603
    assert done.returncode == 0
    assert [(f["name"], f["met"]) for f in json.loads(merged.read_text())] == [("a", True), ("b", False)]
    second.write_text(json.dumps([{"name": "b", "ratio": 1.0}]))
    refused = subprocess.run([*script, str(second)], capture_output=True, text=True, check=False)  # noqa: S603
    assert refused.returncode != 0
    assert "not ['name'" in refused.stderr
