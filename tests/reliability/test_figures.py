"""The figures are printed at the end of a run split over pytest-xdist workers, as `make test` runs it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_figures_of_every_worker_are_added_up_and_printed() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-n",
            "2",
            "-p",
            "no:cacheprovider",
            "tests/reliability/test_bad_payloads.py::test_scrubbing_never_raises_and_drops_personal_fields",
            "tests/reliability/test_bad_payloads.py::test_raw_responses_keep_any_body_and_drop_personal_keys",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "kitsync reliability figures" in done.stdout
    tried = re.search(r"^\s*(\d+)\s+bad inputs tried", done.stdout, re.MULTILINE)
    assert tried is not None, done.stdout[-3000:]
    assert int(tried.group(1)) == 240  # 120 hypothesis examples in each test, whichever worker ran it
