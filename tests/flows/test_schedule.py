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

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from croniter import croniter

from sandbox.model import World
from sandbox.server import SandboxServer
from sandbox.world import generate_world
from tests.flows.truth import our_samples
from warehouse.duck import connect_readonly

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))
HOURLY = ("sync-gencove-hourly", "sync-biomesight-hourly")
# What a healthy server never logs; the scheduler's failure was an ERROR line with a traceback each loop.
SERVER_PROBLEM = re.compile(r"Traceback|InvalidRequestError|bulk DML|\bERROR\b|\bCRITICAL\b")
# A log record starts with Prefect's time stamp; its traceback lines follow it.
LOG_RECORD_START = re.compile(r"^\d\d:\d\d:\d\d\.\d+ \|", re.MULTILINE)
# SQLite's own lock timeout: Prefect's SQLite-backed server answers a burst of writes with it on a busy
# 2-core machine (MEASURED.md: "SQLite busy"), retries, and carries on. It is the database's limit under load,
# not the scheduler failing; any other error, and any lock error in the scheduler's own service, still counts.
SQLITE_BUSY = "sqlite3.OperationalError: database is locked"
SCHEDULER = re.compile(r"schedul", re.IGNORECASE)
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any PREFECT_* variable (the session's test server exports its
    PREFECT_API_URL), plus `extra`: each process here talks only to the server this module starts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", **extra)
    return env


def _wait_for(what: str, probe: Callable[[], T | None], timeout: float, alive: Callable[[], str | None]) -> T:
    """Poll `probe` until it returns something; `alive` names a dead process (then give up at once)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        problem = alive()
        if problem:
            pytest.fail(f"while waiting for {what}: {problem}")
        time.sleep(1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; {alive() or ''}")


@dataclass
class PrefectServer:
    """A `prefect server start` subprocess with its own home, and its captured log."""

    process: subprocess.Popen[bytes]
    api_url: str
    home: Path
    log: Path

    def client_env(self, **extra: str) -> dict[str, str]:
        """The environment of a Prefect client (CLI, worker, `kitsync serve`) of this server."""
        return _clean_environment(
            PREFECT_API_URL=self.api_url, PREFECT_HOME=str(self.home.parent / "client-home"), **extra
        )

    def problem(self) -> str | None:
        if self.process.poll() is not None:
            return f"the Prefect server exited ({self.process.returncode}): {self.log_tail()}"
        return None

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def problem_lines(self) -> list[str]:
        """The first line of each log record reporting a problem (SQLITE_BUSY says which one is not)."""
        text = self.log.read_text(errors="replace")
        starts = [m.start() for m in LOG_RECORD_START.finditer(text)]
        records = [text[a:b] for a, b in zip([0, *starts], [*starts, len(text)], strict=True)]
        return [
            record.splitlines()[0] if record.strip() else record
            for record in records
            if SERVER_PROBLEM.search(record)
            and not (SQLITE_BUSY in record and not SCHEDULER.search(record.split("\n", 1)[0]))
        ]

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return httpx.post(f"{self.api_url}{path}", json=body, timeout=60).raise_for_status().json()

    def get(self, path: str) -> Any:
        return httpx.get(f"{self.api_url}{path}", timeout=60).raise_for_status().json()


@contextmanager
def _process(
    args: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT
) -> Iterator[subprocess.Popen[bytes]]:
    """A subprocess writing to `log`, interrupted (then killed) on exit."""
    with log.open("ab") as sink:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(args, env=env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """`prefect server start` on a free port with an empty home (its first start creates the database)."""
    base = tmp_path_factory.mktemp("prefect-server")
    home = base / "server-home"
    port = _free_port()
    env = _clean_environment(
        PREFECT_HOME=str(home),
        PREFECT_UI_ENABLED="false",
        PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="true",
        # Both scheduler loops often, so a deployment is scheduled within seconds (defaults: 60 s and 5 s).
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="3",
        PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS="2",
        PREFECT_LOGGING_SERVER_LEVEL="INFO",
    )
    log = base / "server.log"
    args = [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with _process(args, env, log, cwd=base) as process:
        server = PrefectServer(process, f"http://127.0.0.1:{port}/api", home, log)

        def healthy() -> bool | None:
            try:
                return httpx.get(f"{server.api_url}/health", timeout=5).status_code == 200 or None
            except httpx.HTTPError:
                return None

        _wait_for("the Prefect server's /api/health", healthy, 240, server.problem)
        yield server


def _prefect(server: PrefectServer, *arguments: str) -> None:
    done = subprocess.run(  # noqa: S603 - the Prefect CLI of this venv, fixed arguments
        [PREFECT, *arguments],
        cwd=ROOT,
        env=server.client_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"prefect {' '.join(arguments)}:\n{(done.stdout + done.stderr)[-3000:]}"


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
    return _wait_for(
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

    state = _wait_for("the scheduled run to finish", final_state, 240, alive)
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
    with _process([PREFECT, "worker", "start", "--pool", "kitsync-process"], env, log) as worker:
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
    with _process([sys.executable, "-m", "flows.cli", "serve"], env, log) as serve:

        def served() -> dict[str, str] | None:
            ids = _deployment_ids(prefect_server, updated_since=started)
            return ids if set(ids) == set(HOURLY) else None

        def alive() -> str | None:
            if serve.poll() is not None:
                return (
                    f"`kitsync serve` exited ({serve.returncode}): {log.read_text(errors='replace')[-3000:]}"
                )
            return prefect_server.problem()

        deployments = _wait_for("`kitsync serve` to register its deployments", served, 120, alive)
        runs = _scheduler_created_runs(prefect_server, deployments, started)
        _assert_on_their_crons(runs, crons)
        assert prefect_server.problem_lines() == []

        run = runs["sync-gencove-hourly"][0]
        _start_now(prefect_server, run)
        _wait_completed(prefect_server, run["id"], serve, log)

    assert _gencove_samples_loaded(data_dir) == _expected_samples(sandbox.world, sandbox)
    assert prefect_server.problem_lines() == []
