"""`kitsync serve` registers every deployment with its schedule and keeps serving them from one process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from flows.deployments import deployment_specs
from flows.settings import Settings


def _deployments(api_url: str) -> dict[str, dict[str, Any]]:
    found = httpx.post(f"{api_url}/deployments/filter", json={}, timeout=30).raise_for_status().json()
    return {d["name"]: d for d in found}


def test_serve_registers_every_deployment_on_its_schedule(prefect_api: str, tmp_path: Path) -> None:
    crons = {"KITSYNC_GENCOVE_CRON": "5 */2 * * *", "KITSYNC_BIOMESIGHT_CRON": "35 * * * *"}
    env = {**os.environ, **crons, "KITSYNC_DATA_DIR": str(tmp_path / "data")}
    started = datetime.now(UTC)
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=sink
        )
    try:
        specs = {spec.name: spec for spec in deployment_specs(Settings())}
        served: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            # What this process registered: updated after it started (prefect.yaml's test may have made
            # deployments of the same names earlier in the session).
            served = {
                name: d
                for name, d in _deployments(prefect_api).items()
                if name in specs and datetime.fromisoformat(d["updated"]) >= started
            }
            if len(served) == len(specs):
                break
            time.sleep(0.5)
        assert process.poll() is None, log.read_text()[-3000:]
        assert set(served) == set(specs)
        assert [s["schedule"]["cron"] for s in served["sync-gencove-hourly"]["schedules"]] == ["5 */2 * * *"]
        assert [s["schedule"]["cron"] for s in served["sync-biomesight-hourly"]["schedules"]] == [
            "35 * * * *"
        ]
        assert served["backfill"]["schedules"] == served["load-warehouse"]["schedules"] == []
        assert "kits" in served["backfill"]["parameter_openapi_schema"]["required"]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
