"""Crash safety and concurrency of the real `kitsync sync` command against one sandbox world.

A data directory holding the platform's export (what every sync starts from) is copied for each case. The
reference is an uninterrupted sync of a copy. Each crash case runs `kitsync sync` as a process, SIGKILLs it at
one point (`KITSYNC_CRASH_AT`, see warehouse/crash.py, or from outside once the sandbox has answered a number
of requests), then runs a normal sync; the warehouse must then hold exactly the reference's rows, reconcile
row by row with the sandbox's ground truth (tests/reliability/content.py), and the lake hold the reference's
distinct rows (a batch landed twice is the same content). Two syncs started at once, with an
analyst reading all along, must end the same way.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flows.demo import _import_export, environment, sandbox_environment
from sandbox.server import SandboxServer
from sandbox.world import generate_world
from tests.reliability.conftest import FAST_RETRIES
from tests.reliability.figures import FIGURES
from tests.reliability.reconcile import (
    contents,
    duplicates,
    lake_contents,
    reconcile,
    reconcile_content,
    record_figures,
)
from tests.storage.s3 import S3Server
from warehouse.crash import CRASH_AT

REPO = Path(__file__).resolve().parents[2]
WAREHOUSE = Path("warehouse") / "kitsync.duckdb"


@dataclass
class Bench:
    server: SandboxServer
    base: Path  # a data directory after the export was imported: the state every case starts from
    reference: Path  # a copy of base after one uninterrupted sync
    root: Path

    def env(self, data_dir: Path, lake_uri: str | None = None) -> dict[str, str]:
        lake = {"KITSYNC_LAKE_URI": lake_uri} if lake_uri else {}
        return {**sandbox_environment(self.server, data_dir), **FAST_RETRIES, **lake}

    def copy(self, name: str) -> Path:
        target = self.root / name
        shutil.copytree(self.base, target, symlinks=True)
        return target

    def sync(self, data_dir: Path, lake_uri: str | None = None) -> list[dict[str, Any]]:
        """A normal sync of both partners, in this process (the same flows the command runs)."""
        from flows.biomesight import sync_biomesight
        from flows.gencove import sync_gencove

        with environment(self.env(data_dir, lake_uri)):
            return [asyncio.run(sync_biomesight()), asyncio.run(sync_gencove())]

    def command(self, data_dir: Path, lake_uri: str | None = None, **extra: str) -> subprocess.Popen[str]:
        """`kitsync sync` as its own process (PREFECT_API_URL is the session's server, so it starts none)."""
        return subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "sync"],
            cwd=REPO,
            env={**os.environ, **self.env(data_dir, lake_uri), **extra},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture(scope="module")
def bench(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    root = tmp_path_factory.mktemp("crash")
    world = generate_world(seed=23, kits=40)
    with SandboxServer(world) as server:
        bench = Bench(server=server, base=root / "base", reference=root / "reference", root=root)
        with environment(bench.env(bench.base)):
            _import_export(server)
        bench.reference = bench.copy("reference")
        summaries = bench.sync(bench.reference)
        assert {s["state"] for s in summaries} == {"completed"}
        assert reconcile(bench.reference / WAREHOUSE, world, server.clock.now()).complete
        reference = reconcile_content(world, bench.reference / WAREHOUSE)
        assert reference.exact, reference.summary()
        yield bench


def test_the_content_reconciliation_finds_a_changed_a_lost_and_an_invented_row(
    bench: Bench, tmp_path: Path
) -> None:
    """The check behind every "exact" here: a warehouse with one score changed, one taxon deleted, one
    recommendation and one status event added is reported as exactly that, row by row."""
    db = tmp_path / "kitsync.duckdb"
    shutil.copy(bench.reference / WAREHOUSE, db)
    connection = duckdb.connect(str(db))
    try:
        kit, score = connection.execute(
            "SELECT kit_id, score_name FROM scores ORDER BY ALL LIMIT 1"
        ).fetchone()
        connection.execute(
            "UPDATE scores SET value = value + 0.01 WHERE kit_id = ? AND score_name = ?", [kit, score]
        )
        taxon = connection.execute(
            "SELECT kit_id, rank, lineage FROM taxonomy ORDER BY ALL LIMIT 1"
        ).fetchone()
        connection.execute("DELETE FROM taxonomy WHERE kit_id = ? AND rank = ? AND lineage = ?", list(taxon))
        connection.execute(
            "INSERT INTO recommendations SELECT provider, kit_id, category, action, 99, 'kale', observed_at "
            "FROM recommendations ORDER BY ALL LIMIT 1"
        )
        connection.execute(
            "INSERT INTO status_events SELECT provider, entity, entity_id, 'Lost', 'lost', NULL, NULL, "
            "partner_date, source, observed_at FROM status_events WHERE entity = 'order' ORDER BY ALL LIMIT 1"
        )
        invented = connection.execute(
            "SELECT provider, kit_id, category, action, position FROM recommendations WHERE position = 99"
        ).fetchone()
    finally:
        connection.close()

    report = reconcile_content(bench.server.world, db)

    assert not report.exact
    broken = {name: t for name, t in report.tables.items() if not t.exact}
    assert set(broken) == {"scores", "taxonomy", "recommendations", "status_events"}, report.summary()
    assert [m[:2] for m in broken["scores"].mismatched] == [(("biomesight", kit, score), "value")]
    assert broken["taxonomy"].missing == [("biomesight", *taxon)]
    assert broken["recommendations"].unexpected == [invented]
    assert [key[3] for key in broken["status_events"].unexpected] == ["Lost"]
    assert report.rows_lost == 2
    assert report.count("unexpected") == 2


def _assert_like_reference(bench: Bench, data_dir: Path, lake_uri: str | None = None) -> None:
    found = duplicates(data_dir / WAREHOUSE)
    content = reconcile_content(bench.server.world, data_dir / WAREHOUSE)
    record_figures(content, found)
    assert not found
    assert content.exact, content.summary()
    expected, actual = contents(bench.reference / WAREHOUSE), contents(data_dir / WAREHOUSE)
    differing = [name for name in expected if expected[name] != actual[name]]
    assert not differing, {name: (len(expected[name]), len(actual[name])) for name in differing}
    expected_lake, actual_lake = lake_contents(bench.reference), lake_contents(lake_uri or data_dir)
    assert [n for n in expected_lake if expected_lake[n] != actual_lake[n]] == []


# Where to die: (what is happening, KITSYNC_CRASH_AT). Counts are per process (both providers' flows run in
# it, Biomesight first) and per durable file put (warehouse/files.py), so `lake-write:12` is the twelfth file,
# half written, and `lake-renamed:9` falls between the files of Biomesight's results batch. The soak
# (KITSYNC_RELIABILITY_SOAK=1) adds more points.
SOAK = os.environ.get("KITSYNC_RELIABILITY_SOAK") == "1"
_SOAK_ONLY = pytest.mark.skipif(not SOAK, reason="soak only (KITSYNC_RELIABILITY_SOAK=1)")
CRASH_POINTS = [
    pytest.param("mid parquet write", "lake-write:12", id="mid parquet write"),
    pytest.param("between a poll batch's files", "lake-renamed:4", id="between a poll batch's files"),
    pytest.param("between a results batch's files", "lake-renamed:9", id="between a results batch's files"),
    pytest.param("merged, before the load commits", "load-commit:1", id="before the load commits"),
    pytest.param("snapshot copied, before the rename", "publish-rename:1", id="before the snapshot rename"),
    pytest.param("mid parquet write, Gencove", "lake-write:60", id="mid Gencove write", marks=_SOAK_ONLY),
    pytest.param("committed, not published", "load-publish:2", id="before publishing", marks=_SOAK_ONLY),
    pytest.param("between Gencove files", "lake-renamed:14", id="between Gencove files", marks=_SOAK_ONLY),
]


@pytest.mark.parametrize(("what", "point"), CRASH_POINTS)
def test_a_sync_killed_at_a_point_is_repaired_by_the_next_run(bench: Bench, what: str, point: str) -> None:
    data_dir = bench.copy(point.replace(":", "-"))
    process = bench.command(data_dir, **{CRASH_AT: point})
    _, err = process.communicate(timeout=120)
    assert process.returncode == -signal.SIGKILL, f"never reached {point}: {err[-2000:]}"

    summaries = bench.sync(data_dir)

    assert {s["state"] for s in summaries} == {"completed"}
    _assert_like_reference(bench, data_dir)
    FIGURES.add("crash_points", what=point.split(":", maxsplit=1)[0])


@pytest.mark.parametrize(
    ("endpoint", "after"),
    [
        pytest.param("biomesight.kit_status", 15, id="Biomesight"),
        pytest.param("gencove.sample", 20, id="Gencove", marks=_SOAK_ONLY),
    ],
)
def test_a_sync_killed_while_fetching_is_repaired_by_the_next_run(
    bench: Bench, endpoint: str, after: int
) -> None:
    data_dir = bench.copy(f"fetch-{endpoint}")
    bench.server.reset_request_counts()
    process = bench.command(data_dir)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if sum(bench.server.request_counts().get(endpoint, {}).values()) >= after:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the sync ended before it could be killed mid-fetch"

    bench.sync(data_dir)

    _assert_like_reference(bench, data_dir)
    FIGURES.add("crash_points", what="fetch")


READER = """
import sys, time
from warehouse.duck import connect_readonly
from transform.schemas import TABLES
db, stop = sys.argv[1], sys.argv[2]
import os
reads = 0
last = 0
while True:
    finished = os.path.exists(stop)
    if os.path.exists(db):
        connection = connect_readonly(db)
        try:
            for name, spec in TABLES.items():
                key = ", ".join('"' + c + '"' for c in spec.primary_key)
                total, distinct = connection.execute(
                    f'SELECT count(*), count(DISTINCT ({key})) FROM "{name}"'
                ).fetchall()[0]
                if total != distinct:
                    sys.exit(f"{name}: {total - distinct} duplicate rows in a published snapshot")
            events = connection.execute("SELECT count(*) FROM status_events").fetchall()[0][0]
        finally:
            connection.close()
        if events < last:
            sys.exit(f"status_events went back from {last} to {events}")
        last = events
        reads += 1
    if finished:
        break
    time.sleep(0.01)
print(reads, last)
"""


def test_two_syncs_at_once_with_an_analyst_reading_end_like_one(bench: Bench) -> None:
    data_dir = bench.copy("concurrent")
    stop = data_dir.parent / "concurrent-stop"
    reader = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", READER, str(data_dir / WAREHOUSE), str(stop)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first, second = bench.command(data_dir), bench.command(data_dir)
        outputs = [p.communicate(timeout=180) for p in (first, second)]
        stop.touch()
        read_out, read_err = reader.communicate(timeout=60)
    finally:
        for process in (reader,):
            if process.poll() is None:
                process.kill()
                process.wait()

    assert (first.returncode, second.returncode) == (0, 0), outputs
    assert reader.returncode == 0, read_err[-2000:]
    reads, _ = (int(n) for n in read_out.split())
    assert reads > 5
    # Each provider ran once or twice; a second run at the same time stepped aside or found nothing new.
    _assert_like_reference(bench, data_dir)


@dataclass
class S3Bench:
    """The crash bench with the lake on the S3-compatible server: a base lake prefix after the import."""

    bench: Bench
    s3: S3Server
    base: Path
    base_lake: str

    def copy(self, name: str) -> tuple[Path, str]:
        data_dir = self.bench.root / name
        shutil.copytree(self.base, data_dir, symlinks=True)
        lake_uri = self.s3.new_bucket()
        self.s3.copy_prefix(self.base_lake, lake_uri)
        return data_dir, lake_uri


@pytest.fixture(scope="module")
def s3_bench(bench: Bench, s3_server: S3Server) -> S3Bench:
    base, base_lake = bench.root / "s3-base", s3_server.new_bucket()
    with environment(bench.env(base, base_lake)):
        _import_export(bench.server)
    return S3Bench(bench=bench, s3=s3_server, base=base, base_lake=base_lake)


# On object storage the points that matter are the commit's: a file half serialized (no PUT yet, so no object
# at all) and a batch cut between two of its objects (each PUT whole, the batch's done-markers last).
S3_CRASH_POINTS = [
    pytest.param("lake-write:12", id="S3: before a PUT"),
    pytest.param("lake-renamed:9", id="S3: between a results batch's objects"),
]


@pytest.mark.parametrize("point", S3_CRASH_POINTS)
def test_a_sync_on_s3_killed_at_a_point_is_repaired_by_the_next_run(s3_bench: S3Bench, point: str) -> None:
    data_dir, lake_uri = s3_bench.copy("s3-" + point.replace(":", "-"))
    process = s3_bench.bench.command(data_dir, lake_uri, **{CRASH_AT: point})
    _, err = process.communicate(timeout=180)
    assert process.returncode == -signal.SIGKILL, f"never reached {point}: {err[-2000:]}"
    assert not [key for key in s3_bench.s3.keys(lake_uri) if "/.tmp-" in key]  # no partial object, ever

    summaries = s3_bench.bench.sync(data_dir, lake_uri)

    assert {s["state"] for s in summaries} == {"completed"}
    _assert_like_reference(s3_bench.bench, data_dir, lake_uri)
    FIGURES.add("crash_points", what="s3 " + point.split(":", maxsplit=1)[0])
