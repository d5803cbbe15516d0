"""No state only one machine has: a sync whose lake is on an S3-compatible server, killed on one machine,
continued on a second with an empty data directory and loaded on a third, ends as a single-machine run.

Three data directories stand for three machines sharing one `KITSYNC_LAKE_URI` on moto's S3 server (started by
the tests, reached through the standard AWS variables). Machine A runs `kitsync sync` and is SIGKILLed in the
middle of Biomesight's results; machine B, with an empty data directory, runs a normal sync; machine C, also
empty, only loads. C's warehouse must hold exactly the rows of an uninterrupted sync on local disk, reconcile
with the sandbox's ground truth, and B must not have fetched again a result A had landed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from flows.demo import _import_export, environment, sandbox_environment
from sandbox.server import SandboxServer
from sandbox.world import generate_world
from tests.reliability.conftest import FAST_RETRIES
from tests.reliability.reconcile import contents, duplicates, lake_contents, reconcile_content
from tests.storage.s3 import S3Server
from warehouse.lake import list_files, resolve_root
from warehouse.load import load

REPO = Path(__file__).resolve().parents[2]
WAREHOUSE = Path("warehouse") / "kitsync.duckdb"


def _env(server: SandboxServer, data_dir: Path, lake_uri: str | None = None) -> dict[str, str]:
    lake = {"KITSYNC_LAKE_URI": lake_uri} if lake_uri else {}
    return {**sandbox_environment(server, data_dir), **FAST_RETRIES, **lake}


def _sync(env: dict[str, str]) -> list[dict[str, Any]]:
    from flows.biomesight import sync_biomesight
    from flows.gencove import sync_gencove

    with environment(env):
        return [asyncio.run(sync_biomesight()), asyncio.run(sync_gencove())]


def _results_requests(server: SandboxServer) -> int:
    return sum(server.request_counts().get("biomesight.results", {}).values())


def _kits_with_results_landed(lake_uri: str) -> set[str]:
    """Biomesight kits whose results and taxonomy are both in the lake: nothing left to fetch for them."""
    lake = resolve_root(lake_uri)

    def kits(table: str) -> set[str]:
        import pyarrow.parquet as pq

        found: set[str] = set()
        for lake_file in list_files(lake, table):
            rows = pq.read_table(
                lake.full(lake_file.path), filesystem=lake.filesystem, columns=["provider", "kit_id"]
            )
            rows = rows.filter(pc.equal(rows["provider"], "biomesight"))
            found.update(rows["kit_id"].to_pylist())
        return found

    return kits("results") & kits("taxonomy")


def test_a_sync_continued_on_another_machine_and_loaded_on_a_third_equals_one_machine(
    prefect_api: str, s3_server: S3Server, tmp_path: Path
) -> None:
    world = generate_world(seed=23, kits=40)
    with SandboxServer(world) as server:
        # The single-machine run: local disk, uninterrupted.
        reference = tmp_path / "reference"
        with environment(_env(server, reference)):
            _import_export(server)
        server.reset_request_counts()
        assert {s["state"] for s in _sync(_env(server, reference))} == {"completed"}
        results_once = _results_requests(server)
        assert results_once > 0

        # Machine A: the lake on S3, small batches; killed once half the results were asked for.
        lake_uri = s3_server.new_bucket()
        machine_a, machine_b, machine_c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
        small_batches = {"KITSYNC_BATCH_SIZE": "4"}
        with environment(_env(server, machine_a, lake_uri)):
            _import_export(server)
        server.reset_request_counts()
        process = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "sync"],
            cwd=REPO,
            env={**os.environ, **_env(server, machine_a, lake_uri), **small_batches},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 180
        while process.poll() is None and time.monotonic() < deadline:
            if _results_requests(server) >= results_once // 2:
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        _, err = process.communicate(timeout=60)
        assert process.returncode == -signal.SIGKILL, f"machine A ended before it was killed: {err[-2000:]}"
        landed = _kits_with_results_landed(lake_uri)
        ready = len(contents(reference / WAREHOUSE)["results"])
        per_kit, remainder = divmod(results_once, ready)
        assert remainder == 0, (results_once, ready)
        assert 0 < len(landed) < ready, "A must be cut off with some results landed, not all"

        # Machine B: an empty data directory, the same lake.
        server.reset_request_counts()
        env_b = {**_env(server, machine_b, lake_uri), **small_batches}
        assert {s["state"] for s in _sync(env_b)} == {"completed"}
        fetched_by_b = _results_requests(server)
        assert 0 < fetched_by_b <= (ready - len(landed)) * per_kit  # nothing A landed is fetched again

        # Machine C: an empty data directory, loads only.
        report = load(lake_uri, machine_c / WAREHOUSE)

    assert report.files_merged > 0
    assert not (machine_c / "lake").exists()  # nothing of the lake was kept on a machine's disk
    assert not duplicates(machine_c / WAREHOUSE)
    content = reconcile_content(world, machine_c / WAREHOUSE)
    assert content.exact, content.summary()
    expected, actual = contents(reference / WAREHOUSE), contents(machine_c / WAREHOUSE)
    assert [name for name in expected if expected[name] != actual[name]] == []
    expected_lake, actual_lake = lake_contents(reference), lake_contents(lake_uri)
    assert [name for name in expected_lake if expected_lake[name] != actual_lake[name]] == []
