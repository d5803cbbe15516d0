"""A run that cannot do its work says so: the real `kitsync` command against the real sandbox and the
session's Prefect server.

A refused credential or a partner that cannot be reached is the run's failure, not a record's: the command
stops at the first refusal, exits non-zero with one line naming the setting or URL to check (never the
secret), Prefect records the run Failed and so does `sync_runs`. Ctrl-C ends a sync with one line, the run is
recorded interrupted, and the next run ends like an uninterrupted one. An export that is not one (a binary
file named .csv, a CSV without kit_id) is refused before anything is imported.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from flows.cli import main
from flows.demo import _import_export, environment, sandbox_environment
from flows.runtime import unreachable_after
from flows.settings import Settings
from sandbox.server import SandboxServer
from sandbox.world import generate_world
from tests.reliability.conftest import FAST_RETRIES
from tests.reliability.figures import FIGURES
from tests.reliability.reconcile import contents, duplicates
from warehouse.duck import connect_readonly

REPO = Path(__file__).resolve().parents[2]
WAREHOUSE = Path("warehouse") / "kitsync.duckdb"
# Prefect's own run-log lines ("12:34:56.789 | ERROR   | Flow run ..."): its log, not the command's output.
PREFECT_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d+ \| ")
WRONG_KEY = "not-our-gencove-key-7f3a"
WRONG_SECRET = "not-our-biomesight-secret-9c2e"


@dataclass
class Bench:
    server: SandboxServer
    base: Path  # a data directory holding the imported export: what every case starts from
    root: Path

    def env(self, data_dir: Path, **extra: str) -> dict[str, str]:
        return {**sandbox_environment(self.server, data_dir), **FAST_RETRIES, **extra}

    def copy(self, name: str) -> Path:
        target = self.root / name
        shutil.copytree(self.base, target, symlinks=True)
        return target

    def command(self, data_dir: Path, *argv: str, **extra: str) -> subprocess.Popen[str]:
        """`kitsync ARGV` as its own process, on the session's Prefect server."""
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "flows.cli", *argv],
            cwd=REPO,
            env={**os.environ, **self.env(data_dir, **extra)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, data_dir: Path, *argv: str, **extra: str) -> tuple[int, str, str, float]:
        started = time.monotonic()
        process = self.command(data_dir, *argv, **extra)
        out, err = process.communicate(timeout=300)
        return process.returncode, out, err, time.monotonic() - started

    def sync(self, data_dir: Path) -> list[dict[str, Any]]:
        """A normal sync of both partners, in this process (the same flows the command runs)."""
        import asyncio

        from flows.biomesight import sync_biomesight
        from flows.gencove import sync_gencove

        with environment(self.env(data_dir)):
            return [asyncio.run(sync_biomesight()), asyncio.run(sync_gencove())]


@pytest.fixture(scope="module")
def bench(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    root = tmp_path_factory.mktemp("run-failures")
    with SandboxServer(generate_world(seed=29, kits=30)) as server:
        bench = Bench(server=server, base=root / "base", root=root)
        with environment(bench.env(bench.base)):
            assert _import_export(server)["state"] == "completed"
        yield bench


def _own_lines(err: str) -> list[str]:
    """What the command itself printed on stderr (Prefect's run-log lines set aside)."""
    return [line for line in err.splitlines() if line.strip() and not PREFECT_LOG_LINE.match(line)]


def _rows(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    connection = connect_readonly(data_dir / WAREHOUSE)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def _prefect_runs(api: str, flow_name: str) -> dict[str, str]:
    """Flow run id -> state type of every run of the flow the session's Prefect server holds."""
    found = httpx.post(
        f"{api}/flow_runs/filter", json={"flows": {"name": {"any_": [flow_name]}}}, timeout=30
    ).raise_for_status()
    return {run["id"]: run["state_type"] for run in found.json()}


def _assert_failed_everywhere(api: str, data_dir: Path, flow: str, before: dict[str, str]) -> str:
    """The run is Failed in Prefect and `failed` in the warehouse's sync_runs, under the same run id."""
    new = {run_id: state for run_id, state in _prefect_runs(api, flow).items() if run_id not in before}
    assert list(new.values()) == ["FAILED"], new
    [run_id] = new
    recorded = _rows(data_dir, f"SELECT run_id, state FROM sync_runs WHERE flow = '{flow}'")  # noqa: S608
    assert recorded == [(run_id, "failed")]
    return run_id


def test_a_refused_gencove_key_fails_the_run_at_the_first_request(bench: Bench, prefect_api: str) -> None:
    data_dir = bench.copy("gencove-key")
    bench.server.reset_request_counts()
    before = _prefect_runs(prefect_api, "sync-gencove")

    status, out, err, _ = bench.run(data_dir, "sync", KITSYNC_GENCOVE_API_KEY=WRONG_KEY)

    assert status == 1
    [line] = _own_lines(err)
    assert line.startswith("kitsync sync: Gencove refused the API key"), line
    assert "Invalid API key." in line
    assert line.endswith("check KITSYNC_GENCOVE_API_KEY")
    assert WRONG_KEY not in out + err
    assert "Traceback" not in err
    # Biomesight, whose credentials are right, still synced; Gencove was asked once, not once per project.
    assert "sync-biomesight: completed" in out
    counts = bench.server.request_counts()
    assert {e: n for e, n in counts.items() if e.startswith("gencove.")} == {
        "gencove.project_samples": {"401": 1}
    }
    _assert_failed_everywhere(prefect_api, data_dir, "sync-gencove", before)
    assert _rows(data_dir, "SELECT count(*) FROM quarantine WHERE provider = 'gencove'") == [(0,)]
    FIGURES.add("bad_inputs", what="refused credentials")


def test_a_refused_biomesight_secret_fails_the_run_after_one_token_request(
    bench: Bench, prefect_api: str
) -> None:
    data_dir = bench.copy("biomesight-secret")
    bench.server.reset_request_counts()
    before = _prefect_runs(prefect_api, "sync-biomesight")

    status, out, err, _ = bench.run(
        data_dir, "sync", "--provider", "biomesight", KITSYNC_BIOMESIGHT_CLIENT_SECRET=WRONG_SECRET
    )

    assert status == 1
    [line] = _own_lines(err)
    assert line.startswith("kitsync sync: Biomesight refused client id 'kitsync-sandbox' (401)"), line
    assert line.endswith("check KITSYNC_BIOMESIGHT_CLIENT_ID and KITSYNC_BIOMESIGHT_CLIENT_SECRET")
    assert WRONG_SECRET not in out + err
    assert "Traceback" not in err
    # Dozens of tracked orders and kits to poll, and not one status request: the token was refused first.
    assert bench.server.request_counts() == {"biomesight.token": {"401": 1}}
    _assert_failed_everywhere(prefect_api, data_dir, "sync-biomesight", before)
    assert _rows(data_dir, "SELECT count(*) FROM quarantine WHERE provider = 'biomesight'") == [(0,)]
    FIGURES.add("bad_inputs", what="refused credentials")


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_partner_fails_the_run_naming_its_url(bench: Bench, prefect_api: str) -> None:
    data_dir = bench.copy("unreachable")
    nowhere = f"http://127.0.0.1:{_closed_port()}"
    before = {flow: _prefect_runs(prefect_api, flow) for flow in ("sync-biomesight", "sync-gencove")}

    status, out, err, seconds = bench.run(
        data_dir, "sync", KITSYNC_BIOMESIGHT_BASE_URL=nowhere, KITSYNC_GENCOVE_BASE_URL=nowhere
    )

    assert status == 1
    lines = _own_lines(err)
    assert [line.split(" at ")[0] for line in lines] == [
        "kitsync sync: cannot reach Biomesight",
        "kitsync sync: cannot reach Gencove",
    ], lines
    for line, setting in zip(lines, ("KITSYNC_BIOMESIGHT_BASE_URL", "KITSYNC_GENCOVE_BASE_URL"), strict=True):
        assert f" at {nowhere} (" in line
        assert f"check {setting}" in line
    assert "Traceback" not in err
    assert out == ""
    for flow, runs in before.items():
        _assert_failed_everywhere(prefect_api, data_dir, flow, runs)
    # With FAST_RETRIES a request gives up in well under a second: the run stopped at the first one instead
    # of retrying every tracked kit (the process time is Prefect's start and two flow runs).
    assert seconds < 120
    FIGURES.add("bad_inputs", what="unreachable partner")


def test_the_default_settings_give_up_on_an_unreachable_partner_within_about_a_minute() -> None:
    """Production's budget, from the default settings: every attempt waits out the connect timeout, every
    retry its longest backoff (a closed port answers at once; a silent host takes the whole budget)."""
    defaults = Settings()
    connect = min(defaults.connect_timeout, defaults.http_timeout)
    backoffs = [
        min(defaults.retry_max_delay, defaults.retry_base_delay * 2**r) for r in range(defaults.max_retries)
    ]
    budget = (defaults.max_retries + 1) * connect + sum(backoffs)

    assert unreachable_after(defaults) == pytest.approx(budget)
    assert 20 <= budget <= 60, budget


def test_ctrl_c_ends_a_sync_with_one_line_and_the_next_run_carries_on(bench: Bench, prefect_api: str) -> None:
    reference = bench.copy("ctrl-c-reference")
    assert {s["state"] for s in bench.sync(reference)} == {"completed"}
    data_dir = bench.copy("ctrl-c")
    slow = bench.server.add_fault("biomesight.kit_status:slow:delay=30")
    before = _prefect_runs(prefect_api, "sync-biomesight")
    try:
        process = bench.command(data_dir, "sync", KITSYNC_HTTP_TIMEOUT="60")
        deadline = time.monotonic() + 180
        while slow.injected == 0 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert slow.injected, "the sync never reached the slow kit statuses"
        time.sleep(1.0)  # mid-request, inside a batch task of a running flow
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        bench.server.clear_faults()

    assert process.returncode == 130
    assert _own_lines(err) == [
        "kitsync sync: interrupted; what was already written is kept and the next run carries on from there"
    ], err[-3000:]
    assert "Traceback" not in err
    assert "sync-gencove" not in out  # nothing more ran after the interruption
    new = {i: s for i, s in _prefect_runs(prefect_api, "sync-biomesight").items() if i not in before}
    assert list(new.values()) == ["CRASHED"], new

    assert {s["state"] for s in bench.sync(data_dir)} == {"completed"}
    [interrupted] = new
    recorded = _rows(data_dir, "SELECT run_id, state FROM sync_runs WHERE flow = 'sync-biomesight'")
    assert (interrupted, "interrupted") in recorded
    assert "completed" not in {state for run_id, state in recorded if run_id == interrupted}
    found = duplicates(data_dir / WAREHOUSE)
    FIGURES.add("duplicates", sum(found.values()))
    assert not found
    expected, actual = contents(reference / WAREHOUSE), contents(data_dir / WAREHOUSE)
    assert [name for name in expected if expected[name] != actual[name]] == []
    FIGURES.add("crash_points", what="Ctrl-C")


def _gzipped_export(path: Path) -> Path:
    path.write_bytes(gzip.compress(b"order_id,kit_id,purchase_date\nORD-1,BS1-AAAAA,2026-01-02\n"))
    return path


def _export_turning_binary(path: Path) -> Path:
    """A readable header and first rows, then bytes that are not text (a file cut into by another one)."""
    head = "order_id,kit_id,purchase_date\n" + "".join(
        f"ORD-{i},BS1-{i:05d},2026-01-02\n" for i in range(500)
    )
    path.write_bytes(head.encode() + bytes(range(128, 256)) * 4 + b"\n")
    return path


def _orders_only_export(path: Path) -> Path:
    path.write_text("order_id,purchase_date,country_code\nORD-1,2026-01-02T10:00:00,GB\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("make", "words"),
    [
        pytest.param(_gzipped_export, ["not a UTF-8 text CSV", "export.csv"], id="binary named .csv"),
        pytest.param(_export_turning_binary, ["not a UTF-8 text CSV"], id="text, then binary"),
        pytest.param(_orders_only_export, ["no kit_id column"], id="no kit_id column"),
    ],
)
def test_an_export_that_is_not_one_is_refused_with_one_line_and_nothing_imported(
    prefect_api: str,  # Prefect set up its logging first, not on this test's captured stderr
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Any,
    words: list[str],
) -> None:
    data_dir = tmp_path / "data"
    export = make(tmp_path / "export.csv")
    with environment({"KITSYNC_DATA_DIR": str(data_dir)}):
        status = main(["track", "import", str(export)])
    err = capsys.readouterr().err.strip().splitlines()

    assert status == 2
    [line] = err
    assert line.startswith("kitsync track: ")
    for word in words:
        assert word in line, line
    assert not data_dir.exists()
    FIGURES.add("bad_inputs", what="export files")
