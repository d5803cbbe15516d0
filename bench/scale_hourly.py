"""Benchmark (issue 13, with bench/scale.py): an hourly run with the lake on object storage vs local disk.

An hourly run with the lake on a local S3-compatible server against the same run with the
lake on local disk. One sandbox world (its own process) and one Prefect server serve both; moto's S3 server
runs in a process of its own too (`python -m moto.server`), so its CPU is not billed to kitsync's process,
as a real object store's would not be. Each side gets its own data directory and a first sync (platform
export, Biomesight, Gencove; timed, reported without a goal). Then `--rounds` times: the sandbox clock moves
`--step-hours`, and the hourly run (Biomesight then Gencove) runs on each side at the same sandbox time, the
side going first alternating. Goal: the median hourly run on S3 <= 1.3x the one on local disk.

The same hourly work on two workers against one: bench/scale_workers.py. A small load against the
warehouse's size: bench/scale.py.

    .venv/bin/python bench/scale_hourly.py --kits 1000
    .venv/bin/python bench/scale_hourly.py --kits 300 --rounds 2 --json s3.json
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _harness as h
import httpx

S3_GOAL = 1.3
ACCESS_KEY = "kitsync-bench-access-key"
SECRET_KEY = "kitsync-bench-secret-key"  # noqa: S105 - moto's throwaway credentials, not a secret
REGION = "us-east-1"
SIDES = ("local disk", "S3 (moto)")


# --- the S3-compatible server, in its own process -----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_ACCESS_LINE = re.compile(rb'"(?:GET|PUT|POST|HEAD|DELETE) ')


@dataclass
class S3Server:
    endpoint: str
    log: Path

    def requests(self) -> int:
        """Requests the store has answered so far (lines of its access log)."""
        return len(_ACCESS_LINE.findall(self.log.read_bytes()))

    def environment(self) -> dict[str, str]:
        """The standard AWS variables a deployment sets to reach its store."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
        }

    def new_bucket(self) -> str:
        import boto3

        name = f"kitsync-bench-{uuid.uuid4().hex[:12]}"
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )
        client.create_bucket(Bucket=name)
        return f"s3://{name}/lake"


@contextlib.contextmanager
def s3_server(log: Path) -> Iterator[S3Server]:
    """moto's S3-compatible server in a child process on a free loopback port, until the block ends."""
    port = _free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)  # noqa: S603
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(endpoint + "/moto-api/", timeout=5)
                break
            if process.poll() is not None:
                raise RuntimeError(f"moto's server exited ({process.returncode}): {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError("moto's server did not start within 180 s")
            time.sleep(0.2)
        yield S3Server(endpoint, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- the hourly run -----------------------------------------------------------------------------------------


def hourly_run(env: dict[str, str]) -> dict[str, float]:
    """One hourly run (Biomesight, then Gencove) in `env`; seconds of each and in all."""
    from flows.biomesight import sync_biomesight
    from flows.gencove import sync_gencove

    with h.environment(env):
        biomesight = h.timed(lambda: asyncio.run(sync_biomesight()))
        gencove = h.timed(lambda: asyncio.run(sync_gencove()))
    for summary in (biomesight.value, gencove.value):
        if summary.get("state") != "completed":
            raise RuntimeError(f"an hourly run did not complete: {summary}")
    return {
        "biomesight": biomesight.seconds,
        "gencove": gencove.seconds,
        "total": biomesight.seconds + gencove.seconds,
    }


def measure_s3(args: Any) -> list[h.Figure]:
    settings = h.tuning(args)
    with (
        tempfile.TemporaryDirectory(prefix="kitsync-bench-scale-s3-") as directory,
        s3_server(Path(directory) / "moto.log") as store,
        h.sandbox(args.kits, seed=args.seed) as box,
        h.prefect_session() as prefect_startup,
    ):
        work = Path(directory)
        lake_uri = store.new_bucket()
        envs = {
            SIDES[0]: h.kitsync_environment(box, work / "local" / "data", **settings),
            SIDES[1]: {
                **h.kitsync_environment(box, work / "s3" / "data", lake_uri=lake_uri, **settings),
                **store.environment(),
            },
        }
        first: dict[str, h.SyncTimes] = {}
        for side, env in envs.items():
            extra = {"lake_uri": lake_uri} if side == SIDES[1] else {}
            with h.environment(store.environment() if side == SIDES[1] else {}):
                first[side] = h.first_sync(box, Path(env["KITSYNC_DATA_DIR"]), **settings, **extra)
            print(f"  first sync on {side}: {first[side].total:.1f} s", file=sys.stderr)
        kits = h.warehouse_counts(Path(envs[SIDES[0]]["KITSYNC_DATA_DIR"]), ["kits"])["kits"]
        s3_kits = h.warehouse_counts(Path(envs[SIDES[1]]["KITSYNC_DATA_DIR"]), ["kits"])["kits"]
        if kits != s3_kits:
            raise RuntimeError(f"the two sides disagree after the first sync: {kits} vs {s3_kits} kits")
        runs: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
        for number in range(args.rounds):
            box.advance(args.step_hours)
            order = SIDES if number % 2 == 0 else SIDES[::-1]
            for side in order:
                before = store.requests()
                runs[side].append(hourly_run(envs[side]))
                runs[side][-1]["s3_requests"] = store.requests() - before
            print(
                f"  round {number + 1}: " + ", ".join(f"{s} {runs[s][-1]['total']:.2f} s" for s in SIDES),
                file=sys.stderr,
            )

        if args.store_log is not None:
            shutil.copyfile(store.log, args.store_log)

    def median(side: str, part: str) -> float:
        return statistics.median(r[part] for r in runs[side])

    h.header(
        "scale: hourly runs with the lake on an S3-compatible server vs on local disk",
        world=f"{args.kits:,} sandbox kits (Biomesight and Gencove); {kits:,} kits tracked after the first "
        "sync",
        object_store="moto's S3 server (python -m moto.server) in its own process on loopback: no network "
        "latency, so this is the cost of kitsync's object-store path, not of a remote store",
        rounds=f"{args.rounds} hourly runs per side, clock +{args.step_hours:g} h before each; medians",
        prefect=f"server ready in {prefect_startup:.1f} s, not timed",
        kitsync_settings=", ".join(f"{k}={v}" for k, v in settings.items()),
    )
    h.table(
        [
            "lake on",
            "first sync s",
            "hourly Biomesight s",
            "hourly Gencove s",
            "hourly run s (median)",
            "S3 requests per hourly run",
        ],
        [
            (
                side,
                first[side].total,
                median(side, "biomesight"),
                median(side, "gencove"),
                median(side, "total"),
                round(median(side, "s3_requests")),
            )
            for side in SIDES
        ],
    )
    hourly = h.figure(
        "hourly run seconds, lake on S3 (moto) vs local disk",
        median(SIDES[1], "total"),
        median(SIDES[0], "total"),
        goal=S3_GOAL,
        size=args.kits,
        at_most=True,
    )
    first_sync = h.Figure(
        "first sync seconds, lake on S3 (moto) vs local disk",
        first[SIDES[1]].total,
        first[SIDES[0]].total,
        first[SIDES[1]].total / first[SIDES[0]].total,
        None,
        None,
        args.kits,
    )
    print(
        f"hourly run on S3 = {hourly.ratio:.2f} x on local disk; goal <= {S3_GOAL}: "
        f"{'met' if hourly.met else 'NOT met'}"
    )
    print(f"first sync on S3 = {first_sync.ratio:.2f} x on local disk (no goal)")
    return [hourly, first_sync]


def main() -> None:
    parser = h.arguments(__doc__ or "", default_kits=1000)
    parser.add_argument("--rounds", type=int, default=3, help="hourly runs timed per side")
    parser.add_argument("--step-hours", type=float, default=1.0, help="sandbox clock step before each run")
    parser.add_argument(
        "--store-log", type=Path, default=None, help="keep moto's access log (every S3 request) in this file"
    )
    args = parser.parse_args()
    h.write_figures(args.json, measure_s3(args))


if __name__ == "__main__":
    main()
