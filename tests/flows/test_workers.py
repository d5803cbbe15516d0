"""Two workers on one work pool share each partner's request budget, and two runs of one sync never overlap.

The README's path for several workers, in subprocesses: a Prefect server of its own, the work pool,
`kitsync setup` (twice: it is idempotent), `prefect deploy --all`, then two `prefect worker start` on the pool
(each one run at a time, so a second run due at once must go to the other worker). Three runs are created at
once: two of the Gencove sync and a Gencove backfill. Observed from outside kitsync:
- both workers took runs (each run's log, streamed by the worker that ran it, names the run);
- the Gencove requests in flight, counted by a proxy between the workers and the sandbox, never exceed the
  budget, while the sync and the backfill, on two workers, ran at the same time (each run alone would keep
  KITSYNC_CONCURRENCY = 8 requests in flight without the budget);
- the two sync runs' intervals in Prefect do not overlap (the deployment's concurrency limit);
- with the partner's limit deleted, a run fails with one line naming `kitsync setup` (strict: a missing limit
  is an error, never unlimited).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web

from flows.limits import limit_name
from sandbox.server import SandboxServer
from sandbox.world import generate_world
from tests.flows.prefect_processes import (
    PREFECT,
    PrefectServer,
    kitsync_cli,
    prefect_cli,
    prefect_server_in,
    running,
    wait_for,
)

pytestmark = pytest.mark.slow

BUDGET = 3  # Gencove requests in flight across both workers
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
RAN = re.compile(r"View at \S*/flow-run/([0-9a-f-]{36})")
HOP_BY_HOP = {"connection", "content-length", "transfer-encoding", "host", "keep-alive"}


class InFlightProxy:
    """A reverse proxy in front of the sandbox that counts each partner's requests in flight (what the partner
    sees) and keeps the most seen at once."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.total: Counter[str] = Counter()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="proxy", daemon=True)
        self.base_url = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        partner = {"/api/v1": "biomesight", "/api/v2": "gencove"}.get(request.path[:7], "other")
        self.now[partner] += 1  # one event loop: no lock needed
        self.total[partner] += 1
        self.peak[partner] = max(self.peak[partner], self.now[partner])
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
            async with self._session.request(
                request.method, self.upstream + request.path_qs, headers=headers, data=await request.read()
            ) as answer:
                body = await answer.read()
                kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
                return web.Response(status=answer.status, body=body, headers=kept)
        finally:
            self.now[partner] -= 1

    async def _start(self) -> str:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        await self._runner.cleanup()
        await self._session.close()

    def __enter__(self) -> InFlightProxy:
        self._thread.start()
        self.base_url = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(60)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(60)
        self._loop.close()


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    # No scheduler: an hourly run falling due during the test would be one more run on the workers.
    with prefect_server_in(tmp_path_factory.mktemp("prefect-server"), scheduler=False) as server:
        yield server


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    # Every partner answer takes 0.1 s, so a client's requests overlap as they would over a network.
    with SandboxServer(generate_world(seed=13, kits=30), faults=["*:slow:1:delay=0.1"]) as server:
        yield server


def _partner_limits(server: PrefectServer) -> dict[str, int]:
    found = server.post("/v2/concurrency_limits/filter", {"limit": 200})
    return {limit["name"]: limit["limit"] for limit in found if limit["name"].startswith("kitsync-")}


def _create_run(server: PrefectServer, deployment_id: str, parameters: dict[str, Any] | None = None) -> str:
    body = {"parameters": parameters or {}}
    return str(server.post(f"/deployments/{deployment_id}/create_flow_run", body)["id"])


def _final_runs(server: PrefectServer, run_ids: list[str], alive: Any) -> dict[str, dict[str, Any]]:
    def all_final() -> dict[str, dict[str, Any]] | None:
        try:
            runs = {run_id: server.get(f"/flow_runs/{run_id}") for run_id in run_ids}
        except httpx.TransportError:  # a server slow to answer on a busy machine: ask again
            return None
        return runs if all(run["state"]["type"] in FINAL for run in runs.values()) else None

    # Each run starts a Python process (seconds on a quiet machine, a minute on a loaded one).
    return wait_for(f"runs {run_ids} to finish", all_final, 900, alive)


def _interval(run: dict[str, Any]) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(run["start_time"]), datetime.fromisoformat(run["end_time"])


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    (a_start, a_end), (b_start, b_end) = _interval(a), _interval(b)
    return a_start < b_end and b_start < a_end


def test_two_workers_share_the_partner_budget_and_a_sync_never_overlaps_itself(
    prefect_server: PrefectServer, sandbox: SandboxServer, tmp_path: Path
) -> None:
    budgets = {"KITSYNC_GENCOVE_REQUEST_BUDGET": str(BUDGET), "KITSYNC_BIOMESIGHT_REQUEST_BUDGET": "5"}
    prefect_cli(prefect_server, "work-pool", "create", "kitsync-process", "--type", "process")
    kitsync_cli(prefect_server, "setup", **budgets)
    kitsync_cli(prefect_server, "setup", **budgets)  # idempotent: the same limits, not an error
    assert _partner_limits(prefect_server) == {limit_name("gencove"): BUDGET, limit_name("biomesight"): 5}
    prefect_cli(prefect_server, "--no-prompt", "deploy", "--all")
    deployments = {d["name"]: d["id"] for d in prefect_server.post("/deployments/filter", {})}

    with InFlightProxy(sandbox.base_url) as proxy:
        env = prefect_server.client_env(
            PREFECT_WORKER_QUERY_SECONDS="1",
            PREFECT_LOGGING_LEVEL="INFO",
            KITSYNC_DATA_DIR=str(tmp_path / "data"),
            KITSYNC_BIOMESIGHT_BASE_URL=proxy.base_url,
            KITSYNC_GENCOVE_BASE_URL=proxy.base_url,
            KITSYNC_REPORT_AFTER_SYNC="false",
            KITSYNC_CONCURRENCY="8",
            KITSYNC_BATCH_SIZE="10",
            **budgets,
        )
        logs = {name: tmp_path / f"{name}.log" for name in ("worker-a", "worker-b")}
        worker = [PREFECT, "worker", "start", "--pool", "kitsync-process", "--limit", "1", "--name"]
        with (
            running([*worker, "worker-a"], env, logs["worker-a"]) as worker_a,
            running([*worker, "worker-b"], env, logs["worker-b"]) as worker_b,
        ):

            def alive() -> str | None:
                for name, child in (("worker-a", worker_a), ("worker-b", worker_b)):
                    if child.poll() is not None:
                        return f"{name} exited: {logs[name].read_text(errors='replace')[-3000:]}"
                return prefect_server.problem()

            today = sandbox.clock.now().date()
            sync = [_create_run(prefect_server, deployments["sync-gencove-hourly"]) for _ in range(2)]
            backfill = _create_run(
                prefect_server,
                deployments["backfill"],
                {
                    "kits": {"start_date": str(today - timedelta(days=400)), "end_date": str(today)},
                    "provider": "gencove",
                    "refetch_results": True,
                    "window_days": 401,
                },
            )
            runs = _final_runs(prefect_server, [*sync, backfill], alive)
            states = {run_id: (run["state"]["type"], run["state"]["message"]) for run_id, run in runs.items()}
            assert all(state == "COMPLETED" for state, _ in states.values()), states

            # Which worker ran each run: the run's own log, streamed by the worker that started its process,
            # links to it ("View at .../flow-run/<id>"); a worker that lost a run to the other only logs that
            # it tried to submit it.
            ran = {name: set(RAN.findall(log.read_text(errors="replace"))) for name, log in logs.items()}
            assert all(ran.values()), ran  # both workers took runs
            assert sorted([*ran["worker-a"], *ran["worker-b"]]) == sorted(runs)  # each run on one worker

            assert not _overlap(runs[sync[0]], runs[sync[1]])
            assert any(_overlap(runs[backfill], runs[s]) for s in sync)  # the budget was shared
            assert 2 <= proxy.peak["gencove"] <= BUDGET, proxy.peak
            assert proxy.total["gencove"] > 20, proxy.total

            # Without the partner's limit a run fails at once, naming the fix, rather than running unlimited.
            prefect_server.delete(f"/v2/concurrency_limits/{limit_name('gencove')}")
            requests_before = proxy.total["gencove"]
            failing = _create_run(prefect_server, deployments["sync-gencove-hourly"])
            state = _final_runs(prefect_server, [failing], alive)[failing]["state"]
            assert state["type"] == "FAILED", state
            assert "kitsync setup" in state["message"], state["message"]
            assert "\n" not in state["message"].strip()
            assert proxy.total["gencove"] == requests_before  # not one Gencove request without the budget
