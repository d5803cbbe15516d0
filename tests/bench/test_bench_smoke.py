"""The benchmark scripts still run: each at a tiny size, printing its table and writing its --json figures
(their values are not checked, their shape is).

Timed assertions would only be noise on a shared machine; the README's figures come from `make bench`. The
scripts reuse this session's Prefect server (PREFECT_API_URL, exported by the `prefect_api` fixture) instead
of starting one each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
FIGURE_KEYS = {"name", "kitsync", "baseline", "ratio", "goal", "met", "size"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "arguments", "expected"),
    [
        ("sync_vs_raw.py", ["--kits", "10", "--limits", "16", "--skip-slow"], "x fastest bare"),
        ("sync_vs_raw.py", ["--kits", "10", "--latency-ms", "20"], "20 ms on every partner endpoint"),
        ("hourly.py", ["--kits", "200", "--latency-ms", "20"], "20 ms on every partner endpoint"),
        ("sync_vs_dlt.py", ["--kits", "10"], "kitsync rows"),
        ("hourly.py", ["--kits", "200"], "in flight (orders+kits)"),
        ("load.py", ["--kits", "20", "--batch-kits", "5"], "kitsync reload, lake unchanged"),
        ("memory.py", ["--kits", "10"], "peak RSS MiB"),
    ],
)
def test_script_prints_its_table(
    prefect_api: str, script: str, arguments: list[str], expected: str, tmp_path: Path
) -> None:
    figures = tmp_path / "figures.json"
    done = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(BENCH / script), *arguments, "--json", str(figures)],
        env={**os.environ, "PREFECT_API_URL": prefect_api},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert expected in done.stdout, done.stdout[-3000:]
    assert "goal" in done.stdout
    written = json.loads(figures.read_text())
    assert written
    assert all(set(figure) == FIGURE_KEYS for figure in written)
    goals = [figure for figure in written if figure["goal"] is not None]
    assert goals
    assert all(isinstance(figure["met"], bool) and figure["size"] == int(arguments[1]) for figure in goals)
