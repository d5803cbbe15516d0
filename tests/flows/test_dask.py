"""Batches fan out to a Dask cluster (`KITSYNC_TASK_RUNNER`) and the warehouse is the in-process run's.

A local Dask cluster of two worker processes stands for a remote one: the flows get its scheduler address as
KITSYNC_TASK_RUNNER, as a deployment would. Both syncs run against one sandbox (its clock does not move, so
both runs see the same world) into two data directories: once on Prefect's in-process runner, once on Dask.
Observed from outside kitsync: the cluster's task stream shows both worker processes ran batch tasks, and the
two warehouses hold the same rows (every table but the runs' own record, without observation times).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import Client, LocalCluster, get_task_stream

from flows.demo import environment, sandbox_environment
from flows.fanout import task_runner, with_task_runner
from flows.settings import Settings
from sandbox.export import export_csv, platform_export
from sandbox.server import SandboxServer
from sandbox.world import generate_world
from transform.schemas import TABLES
from warehouse.duck import connect_readonly

pytestmark = pytest.mark.slow

BATCH_SIZE = 10


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(generate_world(seed=17, kits=40)) as server:
        yield server


@pytest.fixture(scope="module")
def cluster(prefect_api: str) -> Iterator[LocalCluster]:
    """Two single-threaded worker processes (started after the test server, so they inherit its URL)."""
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as local:
        yield local


def _sync_both(sandbox: SandboxServer, data_dir: Path, runner: str) -> list[dict[str, Any]]:
    """Import the platform export, then sync Biomesight and Gencove on the task runner `runner` names."""
    from flows.biomesight import sync_biomesight
    from flows.gencove import sync_gencove
    from flows.track import track_import

    env = {
        **sandbox_environment(sandbox, data_dir),
        "KITSYNC_TASK_RUNNER": runner,
        "KITSYNC_BATCH_SIZE": str(BATCH_SIZE),
    }
    with environment(env):
        export = data_dir.parent / f"{data_dir.name}-export.csv"
        with sandbox.world.lock:
            export.write_text(export_csv(platform_export(sandbox.world, sandbox.clock.now())))
        asyncio.run(track_import(str(export)))
        settings = Settings()
        return [asyncio.run(with_task_runner(flow, settings)()) for flow in (sync_biomesight, sync_gencove)]


def _contents(data_dir: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every warehouse table's rows (but sync_runs, the runs' own record), without observation times."""
    connection = connect_readonly(data_dir / "warehouse" / "kitsync.duckdb")
    try:
        contents = {}
        for name, spec in TABLES.items():
            if name == "sync_runs":
                continue
            columns = [c for c in spec.schema.names if c not in {"observed_at", spec.observed_at}]
            quoted = ", ".join(f'"{c}"' for c in columns)
            contents[name] = connection.execute(f"SELECT {quoted} FROM {name} ORDER BY ALL").fetchall()  # noqa: S608
        return contents
    finally:
        connection.close()


def test_the_setting_names_the_runner() -> None:
    from prefect_dask import DaskTaskRunner

    assert task_runner(Settings(task_runner="default")) is None
    local = task_runner(Settings(task_runner="dask"))
    assert isinstance(local, DaskTaskRunner)
    assert local.cluster_kwargs["processes"] is True
    assert task_runner(Settings(task_runner="tcp://10.0.0.5:8786")).address == "tcp://10.0.0.5:8786"
    with pytest.raises(ValueError, match="Dask scheduler address"):
        Settings(task_runner="threads")


def test_batches_run_on_two_dask_workers_and_the_warehouse_is_the_in_process_runs(
    sandbox: SandboxServer, cluster: LocalCluster, tmp_path: Path
) -> None:
    in_process = _sync_both(sandbox, tmp_path / "in-process", "default")
    with Client(cluster) as client, get_task_stream(client=client) as stream:
        on_dask = _sync_both(sandbox, tmp_path / "dask", cluster.scheduler_address)

    assert [s["state"] for s in in_process] == [s["state"] for s in on_dask] == ["completed", "completed"]
    workers = {task["worker"] for task in stream.data}
    assert workers == set(cluster.scheduler_info["workers"]), workers  # both worker processes took batches
    assert len(stream.data) >= 4  # poll and result batches of both partners, not one task in all

    expected, found = _contents(tmp_path / "in-process"), _contents(tmp_path / "dask")
    assert sum(map(len, expected.values())) > 0
    for name, rows in expected.items():
        assert found[name] == rows, name
    assert expected["taxonomy"]
    assert expected["kits"]
