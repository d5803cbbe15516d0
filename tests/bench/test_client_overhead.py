"""bench/client_overhead.py still runs (tiny size): its table, its verdict and its --json figure's shape."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
ARGUMENTS = ["--requests", "30", "--rounds", "1"]


def test_client_overhead_prints_its_table(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    done = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(BENCH / "client_overhead.py"), *ARGUMENTS, "--json", str(figures)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "CPU µs per request" in done.stdout, done.stdout
    assert "goal >= 1.0" in done.stdout, done.stdout
    (figure,) = json.loads(figures.read_text())
    assert set(figure) == {"name", "kitsync", "baseline", "ratio", "goal", "met", "size"}
    assert figure["size"] == 30
