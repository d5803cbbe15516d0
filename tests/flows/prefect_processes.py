"""Prefect in subprocesses for the end-to-end tests: `prefect server start` in an empty home, the Prefect CLI,
workers and `kitsync serve`, each with an environment that talks only to that server.

Shared by tests/flows/test_schedule.py and tests/flows/test_workers.py.
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
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any PREFECT_* variable (the session's test server exports its
    PREFECT_API_URL), plus `extra`: each process here talks only to the server this module starts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", **extra)
    return env


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, alive: Callable[[], str | None]) -> T:
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
        return clean_environment(
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
        return self._call("POST", path, body).json()

    def get(self, path: str) -> Any:
        return self._call("GET", path).json()

    def delete(self, path: str) -> None:
        self._call("DELETE", path)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        """One API call, tried again on 503, as Prefect's own client does: a SQLite-backed server answers 503
        when its database stays locked under a burst of writes (a busy machine), and rolls the write back."""
        for _ in range(5):
            answer = httpx.request(method, f"{self.api_url}{path}", json=body, timeout=120)
            if answer.status_code != 503:
                break
            time.sleep(2)
        return answer.raise_for_status()


@contextmanager
def running(
    args: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT
) -> Iterator[subprocess.Popen[bytes]]:
    """A subprocess writing to `log`, interrupted (then killed) on exit."""
    with log.open("ab") as sink:  # the child keeps its own copy of the descriptor
        child = subprocess.Popen(args, env=env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        yield child
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=30)


@contextmanager
def prefect_server_in(base: Path, *, scheduler: bool = True) -> Iterator[PrefectServer]:
    """`prefect server start` on a free port with an empty home under `base` (its first start creates the
    database), its scheduler service looping every few seconds (or off: only the runs a test creates run)."""
    home = base / "server-home"
    port = free_port()
    env = clean_environment(
        PREFECT_HOME=str(home),
        PREFECT_UI_ENABLED="false",
        PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED=str(scheduler).lower(),
        # Both scheduler loops often, so a deployment is scheduled within seconds (defaults: 60 s and 5 s).
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="3",
        PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS="2",
        PREFECT_LOGGING_SERVER_LEVEL="INFO",
    )
    log = base / "server.log"
    args = [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with running(args, env, log, cwd=base) as server_process:
        server = PrefectServer(server_process, f"http://127.0.0.1:{port}/api", home, log)

        def healthy() -> bool | None:
            try:
                return httpx.get(f"{server.api_url}/health", timeout=5).status_code == 200 or None
            except httpx.HTTPError:
                return None

        wait_for("the Prefect server's /api/health", healthy, 240, server.problem)
        yield server


def prefect_cli(server: PrefectServer, *arguments: str, **env: str) -> str:
    """Run the Prefect CLI of this venv against `server` (from the project directory); its output."""
    return _run(server, [PREFECT, *arguments], env)


def kitsync_cli(server: PrefectServer, *arguments: str, **env: str) -> str:
    """Run `kitsync` (this checkout's) against `server`; its output."""
    return _run(server, [sys.executable, "-m", "flows.cli", *arguments], env)


def _run(server: PrefectServer, args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(  # noqa: S603 - this venv's own commands, fixed arguments
        args,
        cwd=ROOT,
        env=server.client_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{' '.join(args[-3:])}:\n{(done.stdout + done.stderr)[-3000:]}"
    return done.stdout
