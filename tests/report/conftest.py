"""Fixtures for the cohort report: one report rendered from the session's synced world, and Chromium."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from report.build import Report, write_report
from tests.report.chromium import find_chromium, install_chromium
from tests.report.page import Page, read_page
from tests.synced import SyncedWorld

# Country is the dimension the sandbox builds cohort effects on (sandbox/taxonomy.py), so findings are real.
DIMENSION = "country"


@dataclass(frozen=True)
class Rendered:
    path: Path
    report: Report
    page: Page


@pytest.fixture(scope="session")
def rendered(synced_world: SyncedWorld, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """The report of the synced warehouse, cohorts by country, written to a temporary directory."""
    path = tmp_path_factory.mktemp("report") / "report.html"
    report = write_report(synced_world.warehouse, path, DIMENSION, generated_at=datetime.now(UTC))
    return Rendered(path, report, read_page(path.read_text(encoding="utf-8")))


@pytest.fixture
def warehouse_copy(synced_world: SyncedWorld, tmp_path: Path) -> Path:
    """A data directory of its own holding a copy of the synced warehouse, for tests that write reports."""
    data_dir = tmp_path / "data"
    (data_dir / "warehouse").mkdir(parents=True)
    shutil.copy2(synced_world.warehouse, data_dir / "warehouse" / "kitsync.duckdb")
    return data_dir


def on_ci() -> bool:
    """CI services (GitHub Actions, GitLab, most others) set CI=true."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


@pytest.fixture(scope="session")
def chromium() -> str:
    return require_chromium()


def require_chromium() -> str:
    """Debian's Chromium: found, or installed with apt-get. If that cannot be done a laptop skips (with why),
    CI fails with why: CI is where the browser test must run, and a skip there would hide that it did not."""
    found = find_chromium()
    if found:
        return found
    installed, why = install_chromium()
    if installed is None:
        if on_ci():
            pytest.fail(f"CI=true and no Chromium for the report's browser test: {why}", pytrace=False)
        pytest.skip(why)
    return installed
