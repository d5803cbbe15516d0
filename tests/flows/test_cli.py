"""The `kitsync` command line in-process: the demo end to end (its printed answers recomputed from the
sandbox's ground truth), queries in every format, import checks."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from flows.cli import main
from flows.demo import COHORT_QUESTIONS, DEMO_MARKER, environment
from sandbox.accounts import BIOMESIGHT_CLIENT_ID
from sandbox.world import generate_world
from tests.synced import SyncedWorld
from tests.warehouse.lifecycle_oracle import expected_lifecycle, observe


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
    _assert_the_demos_answers_are_the_sandboxs(out, seed=7, kits=60)


# --- the demo's answers, recomputed from the sandbox's ground truth --------------------------------------


def _printed_tables(out: str) -> dict[str, list[dict[str, str]]]:
    """Each cohort question's answer as printed: rows of cells, cut at the columns the dashes line marks."""
    lines = out.splitlines()
    tables = {}
    for title, _ in COHORT_QUESTIONS:
        start = lines.index(title) + 2
        header, dashes = lines[start], lines[start + 1]
        spans = [m.span() for m in re.finditer(r"-+", dashes)]
        names = [header[a:b].strip() for a, b in spans]
        rows = []
        for line in lines[start + 2 :]:
            if re.fullmatch(r"\(\d+ rows?.*\)", line):
                break
            rows.append({name: line[a:b].strip() for name, (a, b) in zip(names, spans, strict=True)})
        tables[title] = rows
    return tables


def _number(cell: str) -> float | None:
    return float(cell.replace(",", "")) if cell else None


def _close(printed: str, expected: float | None, places: int) -> bool:
    """A printed number against a ground-truth value the demo rounds to `places` (half a unit of slack for
    the rounding of a float that lands on a boundary)."""
    value = _number(printed)
    if expected is None or (isinstance(expected, float) and math.isnan(expected)):
        return value is None
    return value is not None and abs(value - expected) <= 0.5 * 10**-places + 1e-9


def _lifecycle_truth(world: Any, times: list[str]) -> pd.DataFrame:
    """kit_lifecycle as the sandbox's timelines say it should read after rounds at `times` (webhooks on),
    by the lifecycle oracle of tests/warehouse/lifecycle_oracle.py."""
    rounds = SimpleNamespace(world=world, reports=[SimpleNamespace(virtual_time=t) for t in times])
    return expected_lifecycle(observe(rounds)).reset_index()  # type: ignore[arg-type]


def _assert_the_demos_answers_are_the_sandboxs(out: str, *, seed: int, kits: int) -> None:
    times = re.findall(r"round \d+ at (\S+):", out)
    world = generate_world(seed=seed, kits=kits)
    last = datetime.fromisoformat(times[-1])
    tables = _printed_tables(out)
    # The fourth (across partners) is answered from the sandbox's ground truth in
    # tests/warehouse/test_views_customers.py; here it must be printed, with a row per risk group.
    turnaround, diversity, genera, across = (tables[title] for title, _ in COHORT_QUESTIONS)
    assert across, "the cross-partner answer printed no rows"

    lifecycle = _lifecycle_truth(world, times)
    assert [row["provider"] for row in turnaround] == sorted(lifecycle["provider"].unique())
    for row in turnaround:
        kits_of = lifecycle[lifecycle["provider"] == row["provider"]]
        days = kits_of["days_total"].dropna()
        collected = pd.to_datetime(kits_of["sample_date"]).dt.tz_localize("UTC")
        to_results = ((kits_of["results_ready_at"] - collected).dt.total_seconds() / 86400).dropna()
        off = kits_of["current_stage"].isin(["failed", "cancelled", "replaced", "lost"]).sum()
        assert int(row["kits"]) == len(kits_of) > 0, row
        assert int(row["with_results"]) == kits_of["results_ready_at"].notna().sum(), row
        assert _close(row["median_order_to_results"], days.median(), 1), (row, days.median())
        assert _close(row["p90_order_to_results"], days.quantile(0.9), 1), (row, days.quantile(0.9))
        assert _close(row["median_sample_to_results"], to_results.median() if len(to_results) else None, 1)
        assert _close(row["pct_ended_off_path"], 100 * off / len(kits_of), 1), row

    # Results the partner had shown by the last round: Diversity per Bristol scale, genera per country.
    ready = [
        k
        for k in world.kits.values()
        if k.account == BIOMESIGHT_CLIENT_ID and k.result is not None and k.results_ready_at <= last
    ]
    by_scale: dict[int, list[float]] = {}
    for kit in ready:
        if kit.bristol_scale is not None:
            by_scale.setdefault(kit.bristol_scale, []).append(kit.result.scores["Diversity"])
    assert [int(row["bristol_scale"]) for row in diversity] == sorted(by_scale)
    for row in diversity:
        values = pd.Series(by_scale[int(row["bristol_scale"])])
        assert int(row["n"]) == len(values)
        for column, value in (
            ("mean", values.mean()),
            ("median", values.median()),
            ("p25", values.quantile(0.25)),
            ("p75", values.quantile(0.75)),
        ):
            assert _close(row[column], value, 1), (row, column, value)

    profiled: dict[str, int] = {}
    present: dict[tuple[str, str], list[float]] = {}
    for kit in ready:
        country = world.orders[kit.order_id].customer.country_code
        profiled[country] = profiled.get(country, 0) + 1
        for taxon in kit.result.taxonomy:
            if taxon.rank == "genus" and taxon.abundance > 0:
                present.setdefault((country, taxon.taxon), []).append(taxon.abundance)
    stats = {
        key: (len(found) / profiled[key[0]], sum(found) / profiled[key[0]])
        for key, found in present.items()
        if profiled[key[0]] >= 10
    }
    spread: dict[str, list[float]] = {}
    for (_, genus), (_, mean) in stats.items():
        spread.setdefault(genus, []).append(mean)
    top = sorted(spread, key=lambda g: (-(max(spread[g]) - min(spread[g])), g))[:8]
    expected = sorted(
        ((g, c) for (c, g) in stats if g in top), key=lambda gc: (gc[0], -stats[(gc[1], gc[0])][1])
    )
    assert [(row["taxon"], row["country"]) for row in genera] == expected
    for row in genera:
        prevalence, mean = stats[(row["country"], row["taxon"])]
        assert int(row["kits"]) == profiled[row["country"]]
        assert _close(row["prevalence"], prevalence, 2), row
        assert _close(row["mean_abundance_pct"], 100 * mean, 2), row


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
