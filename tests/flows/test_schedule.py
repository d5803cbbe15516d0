"""The hourly schedules fire: a real `prefect server start`'s scheduler creates the runs and they complete.

The README's path, in subprocesses: a Prefect server of its own (empty home, its scheduler service on), the
work pool, `prefect deploy --all` of prefect.yaml, then the scheduler must create the scheduled runs of both
hourly deployments with nothing raised in the server's log (Prefect 3.8.8 under SQLAlchemy 2.1 raised
"Can't evaluate bulk DML statement" every loop and created none, while the UI showed the schedules active).
One of those runs, made due now, is then picked up by `prefect worker start` and must complete a real Gencove
sync against a sandbox served here. `kitsync serve` schedules through the same scheduler service, so it gets
the same check: the scheduler creates its runs and the serving process completes one.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from croniter import croniter

from sandbox.model import World
from sandbox.server import SandboxServer
from sandbox.world import generate_world
from tests.flows.prefect_processes import (
    PREFECT,
    ROOT,
    PrefectServer,
    kitsync_cli,
    prefect_cli,
    prefect_server_in,
    running,
    wait_for,
)
from tests.flows.truth import our_samples
from warehouse.duck import connect_readonly

pytestmark = pytest.mark.slow

HOURLY = ("sync-gencove-hourly", "sync-biomesight-hourly")


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    with prefect_server_in(tmp_path_factory.mktemp("prefect-server")) as server:
        yield server


def _prefect(server: PrefectServer, *arguments: str) -> None:
    prefect_cli(server, *arguments)


def _deployment_ids(server: PrefectServer, updated_since: datetime | None = None) -> dict[str, str]:
    found = server.post("/deployments/filter", {})
    return {
        d["name"]: d["id"]
        for d in found
        if d["name"] in HOURLY
        and (updated_since is None or datetime.fromisoformat(d["updated"]) >= updated_since)
    }


def _scheduled_runs(
    server: PrefectServer, deployment_ids: dict[str, str], created_since: datetime
) -> dict[str, list[dict[str, Any]]]:
    """The scheduler's runs (auto_scheduled, still Scheduled, created since `created_since`) of each hourly
    deployment, earliest first."""
    runs = server.post(
        "/flow_runs/filter",
        {
            "flow_runs": {
                "deployment_id": {"any_": list(deployment_ids.values())},
                "state": {"type": {"any_": ["SCHEDULED"]}},
            },
            "sort": "EXPECTED_START_TIME_ASC",
            "limit": 200,
        },
    )
    by_name = {name: [] for name in deployment_ids}
    names = {id_: name for name, id_ in deployment_ids.items()}
    for run in runs:
        if run["auto_scheduled"] and datetime.fromisoformat(run["created"]) >= created_since:
            by_name[names[run["deployment_id"]]].append(run)
    return by_name


def _scheduler_created_runs(
    server: PrefectServer, deployment_ids: dict[str, str], created_since: datetime
) -> dict[str, list[dict[str, Any]]]:
    def every_hourly_deployment_has_runs() -> dict[str, list[dict[str, Any]]] | None:
        runs = _scheduled_runs(server, deployment_ids, created_since)
        return runs if all(runs.values()) else None

    def healthy() -> str | None:
        problems = server.problem_lines()
        return "the server logged:\n" + "\n".join(problems[:5]) if problems else server.problem()

    # The scheduler loops every few seconds; 90 s is many loops even on a busy 2-core machine.
    return wait_for(
        "scheduled runs of both hourly deployments", every_hourly_deployment_has_runs, 90, healthy
    )


def _start_now(server: PrefectServer, run: dict[str, Any]) -> None:
    """Move a scheduled run's start to now (what its hour would do): it stays the scheduler's run."""
    now = datetime.now(UTC).isoformat()
    server.post(
        f"/flow_runs/{run['id']}/set_state",
        {
            "state": {"type": "SCHEDULED", "name": "Scheduled", "state_details": {"scheduled_time": now}},
            "force": True,
        },
    )


def _wait_completed(
    server: PrefectServer, run_id: str, runner: subprocess.Popen[bytes], runner_log: Path
) -> None:
    def final_state() -> dict[str, Any] | None:
        state = server.get(f"/flow_runs/{run_id}")["state"]
        return state if state["type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} else None

    def alive() -> str | None:
        if runner.poll() is not None:
            return (
                f"the runner exited ({runner.returncode}): {runner_log.read_text(errors='replace')[-3000:]}"
            )
        return server.problem()

    state = wait_for("the scheduled run to finish", final_state, 240, alive)
    assert state["type"] == "COMPLETED", (state, runner_log.read_text(errors="replace")[-3000:])


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(generate_world(seed=11, kits=40)) as server:
        yield server


def _kitsync_env(sandbox: SandboxServer, data_dir: Path) -> dict[str, str]:
    return {
        "KITSYNC_DATA_DIR": str(data_dir),
        "KITSYNC_BIOMESIGHT_BASE_URL": sandbox.base_url,
        "KITSYNC_GENCOVE_BASE_URL": sandbox.base_url,
        "KITSYNC_REPORT_AFTER_SYNC": "false",
    }


def _gencove_samples_loaded(data_dir: Path) -> set[str]:
    connection = connect_readonly(data_dir / "warehouse" / "kitsync.duckdb")
    try:
        return {
            r[0] for r in connection.execute("SELECT kit_id FROM kits WHERE provider = 'gencove'").fetchall()
        }
    finally:
        connection.close()


def _expected_samples(world: World, sandbox: SandboxServer) -> set[str]:
    return {s.sample_id for s in our_samples(world, sandbox.clock.now())}


def _assert_on_their_crons(runs: dict[str, list[dict[str, Any]]], crons: dict[str, str]) -> None:
    """Every run the scheduler made is at a future time its deployment's cron names."""
    now = datetime.now(UTC)
    for name, cron in crons.items():
        starts = [datetime.fromisoformat(run["expected_start_time"]) for run in runs[name]]
        assert all(croniter.match(cron, start) and start > now for start in starts), (name, cron, starts[:3])


def test_the_scheduler_creates_the_hourly_runs_and_a_worker_completes_one(
    prefect_server: PrefectServer, sandbox: SandboxServer, tmp_path: Path
) -> None:
    started = datetime.now(UTC)
    _prefect(prefect_server, "work-pool", "create", "kitsync-process", "--type", "process")
    # The partner budgets prefect.yaml's deployments hold (their runs fail without them).
    kitsync_cli(prefect_server, "setup")
    _prefect(prefect_server, "--no-prompt", "deploy", "--all")
    deployments = _deployment_ids(prefect_server)
    assert set(deployments) == set(HOURLY)

    runs = _scheduler_created_runs(prefect_server, deployments, started)
    declared = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    _assert_on_their_crons(
        runs, {d["name"]: d["schedules"][0]["cron"] for d in declared if d["name"] in HOURLY}
    )
    assert prefect_server.problem_lines() == []

    run = runs["sync-gencove-hourly"][0]
    _start_now(prefect_server, run)
    data_dir = tmp_path / "data"
    env = prefect_server.client_env(PREFECT_WORKER_QUERY_SECONDS="1", **_kitsync_env(sandbox, data_dir))
    log = tmp_path / "worker.log"
    with running([PREFECT, "worker", "start", "--pool", "kitsync-process"], env, log) as worker:
        _wait_completed(prefect_server, run["id"], worker, log)

    assert _gencove_samples_loaded(data_dir) == _expected_samples(sandbox.world, sandbox)
    assert prefect_server.problem_lines() == []


def test_kitsync_serve_schedules_through_the_same_scheduler_and_completes_a_run(
    prefect_server: PrefectServer, sandbox: SandboxServer, tmp_path: Path
) -> None:
    # Crons other than prefect.yaml's, so these runs are the ones `kitsync serve`'s schedules made.
    crons = {"sync-gencove-hourly": "5 * * * *", "sync-biomesight-hourly": "35 * * * *"}
    # `kitsync serve` on a server that has no kitsync deployments yet, as the README offers it: where
    # `prefect deploy --all` registered them before, Prefect 3.8.8's runner updates them without their code
    # location (it drops the pull steps and leaves `path` unset), and every served run crashes.
    for deployment_id in _deployment_ids(prefect_server).values():
        httpx.delete(f"{prefect_server.api_url}/deployments/{deployment_id}", timeout=60).raise_for_status()
    started = datetime.now(UTC)
    data_dir = tmp_path / "data"
    env = prefect_server.client_env(
        PREFECT_RUNNER_POLL_FREQUENCY="1",
        KITSYNC_GENCOVE_CRON=crons["sync-gencove-hourly"],
        KITSYNC_BIOMESIGHT_CRON=crons["sync-biomesight-hourly"],
        **_kitsync_env(sandbox, data_dir),
    )
    log = tmp_path / "serve.log"
    with running([sys.executable, "-m", "flows.cli", "serve"], env, log) as serve:

        def served() -> dict[str, str] | None:
            ids = _deployment_ids(prefect_server, updated_since=started)
            return ids if set(ids) == set(HOURLY) else None

        def alive() -> str | None:
            if serve.poll() is not None:
                return (
                    f"`kitsync serve` exited ({serve.returncode}): {log.read_text(errors='replace')[-3000:]}"
                )
            return prefect_server.problem()

        deployments = wait_for("`kitsync serve` to register its deployments", served, 120, alive)
        runs = _scheduler_created_runs(prefect_server, deployments, started)
        _assert_on_their_crons(runs, crons)
        assert prefect_server.problem_lines() == []

        run = runs["sync-gencove-hourly"][0]
        _start_now(prefect_server, run)
        _wait_completed(prefect_server, run["id"], serve, log)

    assert _gencove_samples_loaded(data_dir) == _expected_samples(sandbox.world, sandbox)
    assert prefect_server.problem_lines() == []
