"""Benchmark 1: kitsync's full first sync against the fastest bare loop making the same requests.

The bare loops read the same platform export, poll every order and kit, fetch JSON and CSV results of the kits
whose status says they are ready, list both Gencove projects by keyset pages of 200 and fetch every final
sample's details (QC whatever the outcome, traits and ancestry for succeeded ones), discarding every body they
do not need to decide what to ask next. They run against the same sandbox process as kitsync, and the
sandbox's own request counter shows that both sides made the same requests. The fastest bare loop is the
ceiling: what the sandbox and one client process can do with no work at all on the bodies.

    .venv/bin/python bench/sync_vs_raw.py --kits 3000
    .venv/bin/python bench/sync_vs_raw.py --kits 1000 --latency-ms 100    # partners 100 ms away

With `--latency-ms N` every partner endpoint answers N ms late (the sandbox's `slow` fault), and kitsync is
compared with the bare loop (httpx on aiohttp) at kitsync's own concurrency limit: with latency the client's
CPU should not be the limit, so kitsync should reach the bare loop's kits/s (goal >= 0.9x).

The same concurrency on both sides: kitsync's first sync runs both partners at once, each with its own limit
of KITSYNC_CONCURRENCY requests in flight; so the async bare loops keep at most their limit in flight PER
PARTNER (one gate each, e.g. 16 to Biomesight and 16 to Gencove), over a connection pool of twice the limit.
"""

from __future__ import annotations

import asyncio
import csv
import io
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _harness as h
import httpx
import orjson

from transform.status import is_final, to_stage

PAGE = 200
GOAL = 0.7


def _ids(export: bytes) -> tuple[list[str], list[str]]:
    rows = list(csv.DictReader(io.StringIO(export.decode())))
    orders = list(dict.fromkeys(r["order_id"] for r in rows))
    kits = list(dict.fromkeys(r["kit_id"] for r in rows if r["kit_id"]))
    return orders, kits


def _listing_params(modified_after: str | None) -> dict[str, Any]:
    """kitsync's listing query: its filters sent at their widest, as extract.gencove sends them."""
    params: dict[str, Any] = {
        "sort_by": "modified",
        "sort_order": "asc",
        "status": "all",
        "archive_status": "all",
        "hidden_status": "all",
        "limit": PAGE,
        "offset": 0,
    }
    if modified_after is not None:
        params["modified_after"] = modified_after
    return params


def _step_back(modified: str) -> str:
    """One microsecond before a listing item's `modified`, as kitsync's keyset cursor asks."""
    from datetime import UTC, datetime, timedelta

    moment = datetime.fromisoformat(modified.replace("Z", "+00:00"))
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (moment.astimezone(UTC) - timedelta(microseconds=1)).isoformat().replace("+00:00", "Z")


class Pages:
    """Keyset paging state of one project listing (the same requests as kitsync's ModifiedCursor)."""

    def __init__(self) -> None:
        self.after: str | None = None
        self.seen_at_boundary: set[str] = set()
        self.done = False

    def take(self, body: bytes) -> list[dict[str, Any]]:
        items = orjson.loads(body)["results"]
        fresh = [i for i in items if i["id"] not in self.seen_at_boundary]
        if len(items) < PAGE:
            self.done = True
            return fresh
        last = items[-1]["modified"]
        self.seen_at_boundary = {i["id"] for i in items if i["modified"] == last}
        self.after = _step_back(last)
        return fresh


def _final_samples(items: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    out = []
    for item in items:
        status = (item.get("last_status") or {}).get("status")
        if isinstance(status, str) and is_final("gencove", status):
            out.append((item["id"], status == "succeeded"))
    return out


def _unkeyed_samples(items: list[dict[str, Any]]) -> list[str]:
    """In-flight samples listed without a client_id: kitsync reads their metadata once for the customer id."""
    final = {sample_id for sample_id, _ in _final_samples(items)}
    return [item["id"] for item in items if not item.get("client_id") and item["id"] not in final]


def _sample_paths(sample_id: str, succeeded: bool) -> list[tuple[str, dict[str, Any] | None]]:
    paths: list[tuple[str, dict[str, Any] | None]] = [
        (f"/api/v2/samples/{sample_id}", None),
        (f"/api/v2/sample-metadata/{sample_id}", None),
        (f"/api/v2/sample-statuses/{sample_id}", {"limit": PAGE, "offset": 0}),
        # every final sample's QC, as kitsync reads it: a failed-QC sample's checks say why it failed
        (f"/api/v2/sample-quality-controls/{sample_id}", {"limit": PAGE, "offset": 0}),
    ]
    if succeeded:
        paths += [
            (f"/api/v2/sample-trait-scores/{sample_id}", {"limit": PAGE, "offset": 0}),
            (f"/api/v2/sample-ancestry/{sample_id}", None),
        ]
    return paths


def _ready(body: bytes) -> bool:
    status = orjson.loads(body).get("status")
    return isinstance(status, str) and to_stage("biomesight", status)[0] == "results_ready"


def _biomesight_token(base_url: str) -> str:
    response = httpx.post(
        f"{base_url}/api/v1/auth/token",
        auth=h.BIOMESIGHT_CLIENT,
        data={"grant_type": "client_credentials"},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["access_token"]


def bare_sequential(base_url: str, orders: list[str], kits: list[str]) -> int:
    """One httpx.Client, one request at a time over a keep-alive connection."""
    token = _biomesight_token(base_url)
    done = 0
    bm = {"Authorization": f"Bearer {token}"}
    gc = {"Authorization": f"Api-Key {h.GENCOVE_KEY}"}
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for order_id in orders:
            client.get(f"/api/v1/status/order/{order_id}", headers=bm).read()
        ready = [k for k in kits if _ready(client.get(f"/api/v1/status/kit/{k}", headers=bm).content)]
        for kit_id in ready:
            for fmt in ("json", "csv"):
                client.get(f"/api/v1/results/{kit_id}", params={"format": fmt}, headers=bm).read()
        done += len(orders) + len(kits) + 2 * len(ready)
        for project in h.GENCOVE_PROJECTS:
            pages, final = Pages(), []
            while not pages.done:
                page = client.get(
                    f"/api/v2/project-samples/{project}", params=_listing_params(pages.after), headers=gc
                )
                items = pages.take(page.content)
                final += _final_samples(items)
                done += 1
                for sample_id in _unkeyed_samples(items):
                    client.get(f"/api/v2/sample-metadata/{sample_id}", headers=gc).read()
                    done += 1
            for sample_id, succeeded in final:
                for path, params in _sample_paths(sample_id, succeeded):
                    client.get(path, params=params, headers=gc).read()
                    done += 1
    return done


async def bare_async(
    base_url: str, orders: list[str], kits: list[str], transport: httpx.AsyncBaseTransport, limit: int
) -> int:
    """One httpx.AsyncClient, Biomesight and Gencove side by side, at most `limit` requests in flight to each
    (one gate per partner, as kitsync syncs both partners at once, each within its own limit)."""
    token = _biomesight_token(base_url)
    gates = {"bm": asyncio.Semaphore(limit), "gc": asyncio.Semaphore(limit)}
    count = 0
    bm = {"Authorization": f"Bearer {token}"}
    gc = {"Authorization": f"Api-Key {h.GENCOVE_KEY}"}

    async with httpx.AsyncClient(base_url=base_url, transport=transport, timeout=60) as client:

        async def get(path: str, params: dict[str, Any] | None, headers: dict[str, str]) -> bytes:
            nonlocal count
            async with gates["bm" if headers is bm else "gc"]:
                response = await client.get(path, params=params, headers=headers)
            count += 1
            return response.content

        async def kit(kit_id: str) -> None:
            if _ready(await get(f"/api/v1/status/kit/{kit_id}", None, bm)):
                await asyncio.gather(
                    get(f"/api/v1/results/{kit_id}", {"format": "json"}, bm),
                    get(f"/api/v1/results/{kit_id}", {"format": "csv"}, bm),
                )

        async def sample(sample_id: str, succeeded: bool) -> None:
            await asyncio.gather(*(get(p, q, gc) for p, q in _sample_paths(sample_id, succeeded)))

        async def project(project_id: str) -> None:
            pages, pending = Pages(), []
            while not pages.done:
                body = await get(f"/api/v2/project-samples/{project_id}", _listing_params(pages.after), gc)
                items = pages.take(body)
                pending += [asyncio.ensure_future(sample(*s)) for s in _final_samples(items)]
                pending += [
                    asyncio.ensure_future(get(f"/api/v2/sample-metadata/{s}", None, gc))
                    for s in _unkeyed_samples(items)
                ]
            await asyncio.gather(*pending)

        await asyncio.gather(
            *(get(f"/api/v1/status/order/{o}", None, bm) for o in orders),
            *(kit(k) for k in kits),
            *(project(p) for p in h.GENCOVE_PROJECTS),
        )
    return count


def _async_runner(
    base_url: str,
    orders: list[str],
    kits: list[str],
    make_transport: Callable[[int], httpx.AsyncBaseTransport],
    limit: int,
) -> Callable[[], int]:
    def run() -> int:
        async def main() -> int:
            # one connection per request in flight: `limit` to each partner
            return await bare_async(base_url, orders, kits, make_transport(2 * limit), limit)

        return asyncio.run(main())

    return run


def _httpx_transport(limit: int) -> httpx.AsyncBaseTransport:
    return httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=limit))


def _aiohttp_transport(limit: int) -> httpx.AsyncBaseTransport:
    from httpx_aiohttp import AiohttpTransport

    return AiohttpTransport(limits=httpx.Limits(max_connections=limit))


@dataclass
class Measured:
    name: str
    seconds: float
    counts: dict[str, int]
    sandbox_cpu: float
    client_cpu: float

    @property
    def requests(self) -> int:
        return sum(self.counts.values())


def measure(box: h.Sandbox, name: str, run: Callable[[], Any]) -> Measured:
    """Wall seconds, requests per endpoint (the sandbox's counter) and CPU seconds on both sides of one run.

    CPU seconds are less at the mercy of other processes on a shared machine than wall seconds, and show
    which side was the limit.
    """
    box.reset_request_counts()
    sandbox_cpu, client_cpu = box.cpu_seconds(), time.process_time()
    started = time.perf_counter()
    run()
    seconds = time.perf_counter() - started
    client_cpu = time.process_time() - client_cpu
    counts = {endpoint: sum(s.values()) for endpoint, s in box.request_counts().items()}
    print(f"  {name}: {seconds:.2f} s, {sum(counts.values()):,} requests", file=sys.stderr)
    return Measured(name, seconds, counts, box.cpu_seconds() - sandbox_cpu, client_cpu)


def _bare_runs(box: h.Sandbox, limits: list[int]) -> list[tuple[str, Callable[[], Any]]]:
    orders, kits = _ids(box.admin("GET", "export.csv").content)
    runs: list[tuple[str, Callable[[], Any]]] = [
        ("httpx.Client, sequential", lambda: bare_sequential(box.base_url, orders, kits))
    ]
    for limit in limits:
        runs.append(
            (
                f"httpx.AsyncClient, {limit} in flight per partner",
                _async_runner(box.base_url, orders, kits, _httpx_transport, limit),
            )
        )
        runs.append(
            (
                f"httpx.AsyncClient on aiohttp, {limit} in flight per partner",
                _async_runner(box.base_url, orders, kits, _aiohttp_transport, limit),
            )
        )
    return runs


def _kitsync_run(
    box: h.Sandbox, data_dir: Path, tuning: dict[str, str], profile: Path | None, out: list[h.SyncTimes]
) -> Callable[[], None]:
    def run() -> None:
        with h.profiled(profile):
            out.append(h.first_sync(box, data_dir, **tuning))

    return run


def main() -> None:
    parser = h.arguments(__doc__ or "", default_kits=3000)
    parser.add_argument("--limits", default="16,64", help="in-flight limits tried for the async bare loops")
    parser.add_argument("--skip-slow", action="store_true", help="skip plain httpx.AsyncClient (slowest)")
    h.latency_argument(parser)
    args = parser.parse_args()
    tuning = h.tuning(args)
    limit = h.concurrency(tuning)
    goal = h.LATENCY_GOAL if args.latency_ms else GOAL

    sync: list[h.SyncTimes] = []
    with (
        h.sandbox(args.kits, seed=args.seed) as box,
        h.prefect_session() as prefect_startup,
        tempfile.TemporaryDirectory(prefix="kitsync-bench-") as directory,
    ):
        if args.latency_ms:
            box.add_latency(args.latency_ms)
            orders, kits = _ids(box.admin("GET", "export.csv").content)
            runs = [
                (
                    f"httpx.AsyncClient on aiohttp, {limit} in flight per partner",
                    _async_runner(box.base_url, orders, kits, _aiohttp_transport, limit),
                )
            ]
        else:
            runs = _bare_runs(box, [int(x) for x in args.limits.split(",")])
        if args.skip_slow:
            runs = [(name, run) for name, run in runs if "AsyncClient," not in name]
        runs.append(
            ("kitsync first sync", _kitsync_run(box, Path(directory) / "data", tuning, args.profile, sync))
        )
        results = [measure(box, name, run) for name, run in runs]

    ours, bare = results[-1], results[:-1]
    fastest = min(bare, key=lambda m: m.seconds)
    h.header(
        "sync_vs_raw: full first sync vs the fastest bare loop",
        kits=f"{args.kits:,} Biomesight kits + {args.kits:,} Gencove samples (seed {args.seed})",
        sandbox=f"own process (world generated in {box.started_in:.1f} s); client in this process",
        prefect=f"server ready in {prefect_startup:.1f} s, before any timing (not in any figure)",
        kitsync_settings=", ".join(f"{k}={v}" for k, v in tuning.items()),
        latency=f"{args.latency_ms:g} ms on every partner endpoint; bare loop at kitsync's limit "
        f"({limit} per partner)"
        if args.latency_ms
        else "none (the sandbox answers in microseconds)",
    )
    units = 2 * args.kits
    h.table(
        ["run", "seconds", "requests", "req/s", "kits/s", "client CPU s", "sandbox CPU s", "x fastest bare"],
        [
            (
                m.name,
                m.seconds,
                m.requests,
                m.requests / m.seconds,
                units / m.seconds,
                m.client_cpu,
                m.sandbox_cpu,
                f"{fastest.seconds / m.seconds:.2f}",
            )
            for m in results
        ],
    )
    differing = {
        e: (ours.counts.get(e, 0), fastest.counts.get(e, 0))
        for e in ours.counts.keys() | fastest.counts.keys()
        if ours.counts.get(e, 0) != fastest.counts.get(e, 0) and e != "biomesight.token"
    }
    print(f"same requests as the bare loop (token requests aside): {differing or 'yes'}")
    print()
    times = sync[0]
    h.table(
        ["kitsync phase (wall)", "seconds"],
        [
            ("track import (export -> lake, load)", times.track_import),
            ("sync-biomesight flow (beside sync-gencove)", times.biomesight),
            ("sync-gencove flow (beside sync-biomesight)", times.gencove),
            ("both partners' flows, at once", times.partners),
        ],
    )
    ratio = fastest.seconds / ours.seconds
    print(
        f"kitsync kits/s = {ratio:.2f} x the fastest bare loop ({fastest.name}); "
        f"goal >= {goal}: {h.verdict(ratio, goal)}"
    )
    name = "first sync kits/s vs the fastest bare loop"
    if args.latency_ms:
        name = f"first sync kits/s vs the bare loop at {limit} in flight per partner, "
        name += f"{args.latency_ms:g} ms latency"
    h.write_figures(
        args.json, [h.figure(name, units / ours.seconds, units / fastest.seconds, goal=goal, size=args.kits)]
    )


if __name__ == "__main__":
    main()
