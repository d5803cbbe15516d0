"""The `kitsync` command line in-process: the demo end to end, queries in every format, import checks."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.cli import main
from flows.demo import COHORT_QUESTIONS, DEMO_MARKER, environment
from tests.synced import SyncedWorld


def test_the_demo_runs_the_main_job_and_says_where_everything_is(prefect_api: str, tmp_path: Path) -> None:
    """`kitsync demo` as the command it is (a subprocess, using the session's Prefect server)."""
    data_dir = tmp_path / "data"
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "demo", "--kits", "60", "--rounds", "2", "--step-hours", "12"],
        env={**os.environ, "KITSYNC_DATA_DIR": str(data_dir), "PREFECT_LOGGING_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for title, _ in COHORT_QUESTIONS:
        assert title in out
    assert "round 2 at" in out
    warehouse = data_dir / "warehouse" / "kitsync.duckdb"
    assert f"The DuckDB warehouse is {warehouse}" in out
    assert warehouse.is_file()
    assert (data_dir / "reports" / "report-latest.html").is_file()
    assert (data_dir / DEMO_MARKER).is_file()


def test_the_demo_refuses_a_data_directory_it_did_not_make(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "precious"
    data_dir.mkdir()
    (data_dir / "lake").mkdir()
    with environment({"KITSYNC_DATA_DIR": str(data_dir)}):
        assert main(["demo", "--kits", "20"]) == 2
    assert "did not make" in capsys.readouterr().out
    assert [p.name for p in data_dir.iterdir()] == ["lake"]


def test_query_prints_a_table_csv_and_json(
    synced_world: SyncedWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    sql = "SELECT provider, count(*) AS kits FROM kits GROUP BY provider ORDER BY provider"
    expected = synced_world.rows(sql)
    with environment(synced_world.env):
        assert main(["query", sql, "--format", "csv"]) == 0
        rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
        assert rows == [["provider", "kits"], *([p, str(n)] for p, n in expected)]
        assert main(["query", sql, "--format", "json"]) == 0
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert lines == [{"provider": p, "kits": n} for p, n in expected]
        assert main(["query", sql]) == 0
        table = capsys.readouterr().out.splitlines()
        assert table[0].split() == ["provider", "kits"]
        assert table[-1] == f"({len(expected)} rows)"


def test_query_refuses_writes_with_one_line(
    synced_world: SyncedWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    before = synced_world.scalar("SELECT count(*) FROM kits")
    with environment(synced_world.env):
        assert main(["query", "DELETE FROM kits"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "read-only" in err
    assert synced_world.scalar("SELECT count(*) FROM kits") == before


def test_track_import_checks_the_file_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    bad = tmp_path / "export.csv"
    bad.write_text("kit_id,email\nBS1-AAAAA,someone@example.org\n")
    with environment({"KITSYNC_DATA_DIR": str(data_dir)}):
        assert main(["track", "import", str(bad)]) == 2
        assert "no order_id column" in capsys.readouterr().err
        assert main(["track", "import", str(tmp_path / "missing.csv")]) == 2
        assert "no such file" in capsys.readouterr().err
    assert not data_dir.exists()
