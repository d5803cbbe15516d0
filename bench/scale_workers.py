"""Benchmark (issue 13, with bench/scale.py and bench/scale_hourly.py): hourly work on 2 workers vs 1.

README's path for several workers, in subprocesses: a Prefect server of its own (scheduler off: only the runs
this script creates run), the `kitsync-process` work pool, `kitsync setup` (each partner's request budget),
`prefect deploy --all`, and `prefect worker start --limit 1` processes on the pool. The sandbox world runs
in its own process; the first sync (platform export, Biomesight, Gencove) is done beforehand in this process,
against the same Prefect server and data directory the workers use (one machine, one disk).

Timed, `--rounds` times each, alternating which goes first: the sandbox clock moves `--step-hours`, then a
Biomesight hourly run and a Gencove hourly run are created at once on the pool, and the wall-clock from their
creation until both are final is taken (worker polling, a process per run and the runs themselves: what an
hourly tick costs), once with one worker (it takes the two runs in turn) and once with two workers. Goal:
the pair on two workers <= 0.8x the pair on one (the ideal, the longer run alone, is well under that when
the two runs are of similar length). Both workers must have taken a run in each two-worker round.

    .venv/bin/python bench/scale_workers.py --kits 1000
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import _harness as h
import httpx

GOAL = 0.8
PREFECT = str(Path(sys.executable).with_name("prefect"))
POOL = "kitsync-process"
DEPLOYMENTS = ("sync-biomesight-hourly", "sync-gencove-hourly")
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
RAN = re.compile(r"View at \S*/flow-run/([0-9a-f-]{36})")
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _clean_environment(**extra: str) -> dict[str, str]:
    """This environment without PREFECT_* variables, plus `extra`: each child talks only to our server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", **extra)
    return env


def _wait_for(what: str, probe: Callable[[], T | None], timeout: float, alive: Callable[[], str | None]) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        problem = alive()
        if problem:
            raise RuntimeError(f"while waiting for {what}: {problem}")
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextlib.contextmanager
def _running(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child process writing to `log`, interrupted (then killed) when the block ends."""
    with log.open("ab") as sink:
        child = subprocess.Popen(args, env=env, cwd=h.REPO, stdout=sink, stderr=subprocess.STDOUT)  # noqa: S603
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


@dataclass
class PrefectServer:
    process: subprocess.Popen[bytes]
    api_url: str
    home: Path
    log: Path

    def client_env(self, **extra: str) -> dict[str, str]:
        return _clean_environment(
            PREFECT_API_URL=self.api_url, PREFECT_HOME=str(self.home.parent / "client-home"), **extra
        )

    def problem(self) -> str | None:
        if self.process.poll() is not None:
            return f"the Prefect server exited ({self.process.returncode}): {self.log.read_text()[-3000:]}"
        return None

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One API call, tried again on 503 (a SQLite-backed server under a burst of writes)."""
        for _ in range(10):
            answer = httpx.request(method, f"{self.api_url}{path}", json=body, timeout=120)
            if answer.status_code != 503:
                break
            time.sleep(2)
        return answer.raise_for_status().json()


@contextlib.contextmanager
def prefect_server(base: Path) -> Iterator[PrefectServer]:
    """`prefect server start` on a free port with an empty home, its scheduler off."""
    home = base / "server-home"
    port = _free_port()
    env = _clean_environment(
        PREFECT_HOME=str(home),
        PREFECT_UI_ENABLED="false",
        PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false",
    )
    log = base / "server.log"
    args = [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with _running(args, env, log) as process:
        server = PrefectServer(process, f"http://127.0.0.1:{port}/api", home, log)

        def healthy() -> bool | None:
            try:
                return httpx.get(f"{server.api_url}/health", timeout=5).status_code == 200 or None
            except httpx.HTTPError:
                return None

        _wait_for("the Prefect server's /api/health", healthy, 300, server.problem)
        yield server


def _cli(server: PrefectServer, args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(  # noqa: S603 - this venv's own commands, fixed arguments
        args,
        cwd=h.REPO,
        env=server.client_env(**env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"{' '.join(args[-3:])} failed:\n{(done.stdout + done.stderr)[-3000:]}")


def _pair(
    server: PrefectServer,
    deployments: dict[str, str],
    workers: list[subprocess.Popen[bytes]],
    logs: list[Path],
) -> dict[str, Any]:
    """Create a Biomesight and a Gencove hourly run at once: wall-clock until both are final, who ran them."""
    sizes = [log.stat().st_size if log.exists() else 0 for log in logs]
    started = time.perf_counter()
    run_ids = [
        str(
            server.call("POST", f"/deployments/{deployments[name]}/create_flow_run", {"parameters": {}})["id"]
        )
        for name in DEPLOYMENTS
    ]

    def alive() -> str | None:
        for child, log in zip(workers, logs, strict=True):
            if child.poll() is not None:
                return f"a worker exited: {log.read_text(errors='replace')[-3000:]}"
        return server.problem()

    def all_final() -> dict[str, Any] | None:
        try:
            runs = {run_id: server.call("GET", f"/flow_runs/{run_id}") for run_id in run_ids}
        except httpx.TransportError:
            return None
        return runs if all(run["state"]["type"] in FINAL for run in runs.values()) else None

    runs = _wait_for("the hourly pair to finish", all_final, 1800, alive)
    wall = time.perf_counter() - started
    states = {run["name"]: run["state"]["type"] for run in runs.values()}
    if set(states.values()) != {"COMPLETED"}:
        raise RuntimeError(f"an hourly run did not complete: {states}")
    ran = [
        set(RAN.findall(log.read_bytes()[size:].decode(errors="replace")))
        for log, size in zip(logs, sizes, strict=True)
    ]
    seconds = {
        name: (
            datetime.fromisoformat(run["end_time"]) - datetime.fromisoformat(run["start_time"])
        ).total_seconds()
        for name, run in zip(DEPLOYMENTS, [runs[i] for i in run_ids], strict=True)
    }
    return {"wall": wall, "run_seconds": seconds, "runs_per_worker": [len(r & set(run_ids)) for r in ran]}


def main() -> None:
    parser = h.arguments(__doc__ or "", default_kits=1000)
    parser.add_argument("--rounds", type=int, default=2, help="hourly pairs timed per worker count")
    parser.add_argument("--step-hours", type=float, default=1.0, help="sandbox clock step before each pair")
    args = parser.parse_args()
    settings = h.tuning(args)
    with (
        tempfile.TemporaryDirectory(prefix="kitsync-bench-scale-workers-") as directory,
        h.sandbox(args.kits, seed=args.seed) as box,
    ):
        work = Path(directory)
        setup_started = time.perf_counter()
        with prefect_server(work) as server:
            data_dir = work / "data"
            kitsync_env = h.kitsync_environment(box, data_dir, **settings)
            _cli(server, [PREFECT, "work-pool", "create", POOL, "--type", "process"], {})
            _cli(server, [sys.executable, "-m", "flows.cli", "setup"], kitsync_env)
            _cli(server, [PREFECT, "--no-prompt", "deploy", "--all"], {})
            deployments = {d["name"]: d["id"] for d in server.call("POST", "/deployments/filter", {})}
            # The first sync, in this process, against the same server (its limits held as the pool's are).
            with h.environment({"PREFECT_API_URL": server.api_url, "KITSYNC_PARTNER_LIMITS": "true"}):
                h._warm_up()
                first = h.first_sync(box, data_dir, **settings)
            setup = time.perf_counter() - setup_started
            print(f"  setup done in {setup:.0f} s (first sync {first.total:.1f} s)", file=sys.stderr)

            env = server.client_env(
                PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_LOGGING_LEVEL="INFO", **kitsync_env
            )
            worker = [PREFECT, "worker", "start", "--pool", POOL, "--limit", "1", "--name"]
            logs = [work / "worker-a.log", work / "worker-b.log"]
            pairs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
            with contextlib.ExitStack() as stack:
                first_worker = stack.enter_context(_running([*worker, "worker-a"], env, logs[0]))
                for number in range(args.rounds):
                    for count in (1, 2) if number % 2 == 0 else (2, 1):
                        box.advance(args.step_hours)
                        if count == 2:
                            with _running([*worker, "worker-b"], env, logs[1]) as second:
                                time.sleep(5)  # the second worker polls the pool before the runs exist
                                pair = _pair(server, deployments, [first_worker, second], logs)
                            if 0 in pair["runs_per_worker"]:
                                print(f"  warning: one worker took both runs: {pair}", file=sys.stderr)
                        else:
                            pair = _pair(server, deployments, [first_worker], logs[:1])
                        pairs[count].append(pair)
                        print(
                            f"  round {number + 1}, {count} worker(s): {pair['wall']:.1f} s", file=sys.stderr
                        )

    def median(count: int) -> float:
        return statistics.median(p["wall"] for p in pairs[count])

    def run_median(count: int, name: str) -> float:
        return statistics.median(p["run_seconds"][name] for p in pairs[count])

    h.header(
        "scale: an hourly pair (Biomesight + Gencove runs created at once) on two work-pool workers vs one",
        world=f"{args.kits:,} sandbox kits (Biomesight and Gencove), first sync done beforehand "
        f"({first.total:.1f} s; setup {setup:.0f} s, not timed)",
        workers="`prefect worker start --pool kitsync-process --limit 1` each; a process per run; "
        "partner budgets from `kitsync setup`; same machine and data directory",
        rounds=f"{args.rounds} pairs per worker count, clock +{args.step_hours:g} h before each; medians",
        kitsync_settings=", ".join(f"{k}={v}" for k, v in settings.items()),
    )
    h.table(
        ["workers", "pair wall-clock s (median)", "Biomesight run s", "Gencove run s", "runs per worker"],
        [
            (
                count,
                median(count),
                run_median(count, DEPLOYMENTS[0]),
                run_median(count, DEPLOYMENTS[1]),
                " / ".join(",".join(map(str, p["runs_per_worker"])) for p in pairs[count]),
            )
            for count in (1, 2)
        ],
    )
    result = h.figure(
        "hourly pair wall-clock seconds, two workers vs one",
        median(2),
        median(1),
        goal=GOAL,
        size=args.kits,
        at_most=True,
    )
    print(
        f"two workers = {result.ratio:.2f} x one worker's wall-clock; goal <= {GOAL}: "
        f"{h.verdict(result.ratio, GOAL, at_most=True)}"
    )
    h.write_figures(args.json, [result])


if __name__ == "__main__":
    main()
