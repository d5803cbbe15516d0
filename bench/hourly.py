"""Benchmark 3: an hourly Biomesight run over many tracked kits, few of them in flight.

Setup (not timed): a sandbox world sized so that about `--in-flight` of `--kits` tracked kits are not final;
kitsync imports its export and syncs it for real, so the warehouse knows every real kit's status. The rest of
the tracked kits are padded in with kitsync's own transforms, as a past sync would have left them: orders
delivered, kits with results processed, results and taxonomy loaded. They never need polling again, which
is the point: an hourly run must cost what is in flight, not what was ever sold.

Timed: (1) an hourly run with nothing changed since the last one; (2) after moving the sandbox clock until
about `--changed` of the tracked kits changed status, the next hourly run. Each is compared with the fastest
bare loop making the same requests (poll the in-flight orders and kits; JSON and CSV results of those found
ready), run just before it against the same sandbox.

Gencove is not part of this benchmark: its hourly cost is a listing by `modified` (pages of changes), not a
poll per tracked sample.

    .venv/bin/python bench/hourly.py --kits 100000
    .venv/bin/python bench/hourly.py --kits 20000 --latency-ms 100     # partners 100 ms away

`--profile out.txt` profiles both timed runs (the second into `out-changed.txt`).

With `--latency-ms N` every partner endpoint answers N ms late during the timed runs (the setup runs without),
and the bare loop keeps kitsync's concurrency limit in flight; the goal is then kitsync >= 0.9x the bare
loop's speed (its seconds over kitsync's), not the <= 1.2x cost ratio.
"""

from __future__ import annotations

import asyncio
import math
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _harness as h
import httpx

from sandbox.model import World, status_at
from sandbox.world import generate_world
from transform import (
    concat_results,
    transform_biomesight_results,
    transform_biomesight_statuses,
    transform_biomesight_taxonomy,
    transform_platform_export,
)
from transform.status import is_final
from warehouse.batches import write_tables
from warehouse.load import load
from warehouse.state import biomesight_plan

GOAL = 1.2
OURS = "kitsync-sandbox"
PAD_BATCH = 5000
BARE_LIMIT = 64  # the bare loop's in-flight limit without latency (its fastest here)


def _in_flight(world: World, at: datetime) -> tuple[int, int]:
    """(not-final kits, registered kits) of our account at `at`, from the sandbox's ground truth."""
    registered = [
        k
        for k in world.kits.values()
        if k.account == OURS and k.registered_at is not None and k.registered_at <= at
    ]
    moving = 0
    for kit in registered:
        change = status_at(kit.timeline, at)
        moving += change is None or not is_final("biomesight", change.status, "kit")
    return moving, len(registered)


def _changed(world: World, since: datetime, until: datetime) -> int:
    """Our registered kits whose status changes in (since, until]."""
    return sum(
        1
        for k in world.kits.values()
        if k.account == OURS
        and k.registered_at is not None
        and k.registered_at <= since
        and any(since < change.at <= until for change in k.timeline)
    )


def world_size(kits: int, share: float, seed: int) -> int:
    """Sandbox kits whose world has about `share * kits` registered kits in flight (from a sample world)."""
    sample = generate_world(seed=seed, kits=2000, gencove_samples=0)
    moving, _ = _in_flight(sample, sample.clock.now())
    return max(50, math.ceil(share * kits / max(moving, 1) * 2000))


def hours_until_changed(world: World, target: int) -> int:
    """The smallest clock step (whole hours) after which at least `target` of our kits changed status."""
    now = world.clock.now()
    for hours in (*range(1, 48), *range(48, 24 * 60, 12)):
        if _changed(world, now, now + timedelta(hours=hours)) >= target:
            return hours
    return 24 * 60


def pad_tracked(data_dir: Path, count: int) -> None:
    """Track `count` more kits, final and with results loaded, as past syncs would have left them."""
    from flows.settings import Settings

    key = Settings().pseudonym_key.get_secret_value().encode()
    observed_at = datetime(2026, 10, 1, tzinfo=UTC)
    csv_bytes = b"taxonomy,abundance\nk__Bacteria; p__Firmicutes,60\nk__Bacteria; p__Bacteroidetes,40\n"
    for first in range(0, count, PAD_BATCH):
        numbers = range(first, min(first + PAD_BATCH, count))
        export, orders, kits, results = [], [], [], {}
        for n in numbers:
            order_id, kit_id = f"ORD-PAD-{n:07d}", f"PAD-{n:07d}"
            export.append(
                {
                    "order_id": order_id,
                    "kit_id": kit_id,
                    "purchase_date": "2026-05-01T10:00:00Z",
                    "sample_date": "2026-05-20",
                    "sample_type": "Gut",
                    "bristol_scale": "4",
                    "bm_frequency": "Once daily",
                    "customer_id": f"CUST-P{n:07d}",
                    "country_code": "GB",
                }
            )
            orders.append({"order_id": order_id, "status": "Delivered", "date": "2026-05-10T10:00:00Z"})
            kits.append({"kit_id": kit_id, "status": "Results Processed", "date": "2026-06-20T10:00:00Z"})
            results[kit_id] = {
                "scores": {"gut_health": 50.0, "Diversity": 2.0},
                "recommendations": {},
                "general": {
                    "kit_id": kit_id,
                    "sample_id": 10_000_000 + n,
                    "export_date": "2026-06-20 10:00:00",
                    "pipeline_id": 3,
                },
            }
        result = concat_results(
            (
                transform_platform_export(export, key=key, observed_at=observed_at),
                transform_biomesight_statuses(orders, source="poll", observed_at=observed_at, entity="order"),
                transform_biomesight_statuses(kits, source="poll", observed_at=observed_at, entity="kit"),
                transform_biomesight_results(results, observed_at=observed_at),
                transform_biomesight_taxonomy(dict.fromkeys(results, csv_bytes), observed_at=observed_at),
            )
        )
        write_tables(data_dir, result.tables, ingest_date=observed_at.date())
    load(data_dir, data_dir / "warehouse" / "kitsync.duckdb")


async def bare_poll(base_url: str, orders: list[str], kits: list[str], limit: int = BARE_LIMIT) -> int:
    """Poll every id, fetch results of kits found ready; httpx on the aiohttp transport, `limit` in flight."""
    from httpx_aiohttp import AiohttpTransport
    from sync_vs_raw import _biomesight_token, _ready

    token = _biomesight_token(base_url)
    headers = {"Authorization": f"Bearer {token}"}
    gate = asyncio.Semaphore(limit)
    transport = AiohttpTransport(limits=httpx.Limits(max_connections=limit))
    async with httpx.AsyncClient(base_url=base_url, transport=transport, timeout=60) as client:

        async def get(path: str, params: dict[str, str] | None = None) -> bytes:
            async with gate:
                return (await client.get(path, params=params, headers=headers)).content

        async def kit(kit_id: str) -> None:
            if _ready(await get(f"/api/v1/status/kit/{kit_id}")):
                await asyncio.gather(
                    get(f"/api/v1/results/{kit_id}", {"format": "json"}),
                    get(f"/api/v1/results/{kit_id}", {"format": "csv"}),
                )

        await asyncio.gather(*(get(f"/api/v1/status/order/{o}") for o in orders), *(kit(k) for k in kits))
    return len(orders) + len(kits)


def hourly_round(
    box: h.Sandbox, data_dir: Path, env: dict[str, str], profile: Path | None = None, limit: int = BARE_LIMIT
) -> dict[str, Any]:
    """The bare loop, then kitsync's hourly run, at the same sandbox time; seconds and requests of both."""
    from flows.biomesight import sync_biomesight

    plan = biomesight_plan(data_dir / "warehouse" / "kitsync.duckdb")
    box.reset_request_counts()
    started, cpu = time.perf_counter(), time.process_time()
    asyncio.run(bare_poll(box.base_url, plan.orders_to_poll, plan.kits_to_poll, limit))
    bare_seconds = time.perf_counter() - started
    bare_cpu = time.process_time() - cpu
    bare_requests = box.requests_total("biomesight.") - box.requests_total("biomesight.token")
    box.reset_request_counts()
    published = data_dir / "warehouse" / "kitsync.duckdb"
    before = published.stat()
    cpu = time.process_time()
    with h.environment(env), h.profiled(profile):
        run = h.timed(lambda: asyncio.run(sync_biomesight()))
    kitsync_cpu = time.process_time() - cpu
    after = published.stat()
    counts = box.request_counts()
    return {
        "in_flight": len(plan.orders_to_poll) + len(plan.kits_to_poll),
        "in_flight_kits": len(plan.kits_to_poll),
        "bare_seconds": bare_seconds,
        "bare_cpu": bare_cpu,
        "cpu": kitsync_cpu,
        "bare_requests": bare_requests,
        "seconds": run.seconds,
        "requests": sum(sum(s.values()) for e, s in counts.items() if e != "biomesight.token"),
        "token_requests": sum(counts.get("biomesight.token", {}).values()),
        "loads": run.value.get("warehouse_loads", 0),
        "published": (before.st_ino, before.st_mtime_ns) != (after.st_ino, after.st_mtime_ns),
        "results_requests": sum(counts.get("biomesight.results", {}).values()),
        "status_changes": run.value.get("status_changes", 0),
        "state": run.value.get("state"),
    }


def main() -> None:
    parser = h.arguments(__doc__ or "", default_kits=100_000)
    parser.add_argument("--in-flight", type=float, default=0.05, help="share of tracked kits not final")
    parser.add_argument("--changed", type=float, default=0.01, help="share of tracked kits that change")
    h.latency_argument(parser)
    args = parser.parse_args()
    limit = h.concurrency(h.tuning(args)) if args.latency_ms else BARE_LIMIT
    size = world_size(args.kits, args.in_flight, args.seed)
    world = generate_world(seed=args.seed, kits=size, gencove_samples=0)  # the sandbox's ground truth
    _, registered = _in_flight(world, world.clock.now())
    step = hours_until_changed(world, math.ceil(args.changed * args.kits))
    with (
        h.sandbox(size, seed=args.seed, gencove_samples=0) as box,
        h.prefect_session() as prefect_startup,
        tempfile.TemporaryDirectory(prefix="kitsync-bench-hourly-") as directory,
    ):
        data_dir = Path(directory) / "data"
        env = h.kitsync_environment(box, data_dir, **h.tuning(args))
        setup_started = time.perf_counter()
        with h.environment(env):
            from flows.biomesight import sync_biomesight
            from flows.track import track_import

            data_dir.mkdir(parents=True)
            asyncio.run(track_import(str(box.export_csv(Path(directory) / "export.csv"))))
            asyncio.run(sync_biomesight())
            pad_tracked(data_dir, max(0, args.kits - registered))
        tracked = h.warehouse_counts(data_dir, ["kits"])["kits"]
        setup = time.perf_counter() - setup_started
        print(f"  setup done in {setup:.0f} s; tracked kits {tracked:,}", file=sys.stderr)
        if args.latency_ms:
            box.add_latency(args.latency_ms)
        unchanged = hourly_round(box, data_dir, env, args.profile, limit)
        box.advance(step)
        again = None if args.profile is None else args.profile.with_stem(f"{args.profile.stem}-changed")
        changed = hourly_round(box, data_dir, env, again, limit=limit)

    h.header(
        "hourly: Biomesight hourly runs over many tracked kits",
        tracked_kits=f"{tracked:,} ({registered:,} from a sandbox world of {size:,} kits, the rest padded)",
        in_flight=f"{unchanged['in_flight_kits']:,} kits ({unchanged['in_flight_kits'] / tracked:.1%}) "
        f"plus {unchanged['in_flight'] - unchanged['in_flight_kits']:,} orders not final",
        sandbox="own process; setup (first sync + padding) took "
        f"{setup:.0f} s, not timed; Prefect server ready in {prefect_startup:.1f} s, not timed",
        kitsync_settings=", ".join(f"{k}={v}" for k, v in h.tuning(args).items()),
        clock_step=f"{step} h before the second run ({changed['status_changes']:,} status changes seen)",
        latency=f"{args.latency_ms:g} ms on every partner endpoint; bare loop at kitsync's limit ({limit})"
        if args.latency_ms
        else f"none; bare loop at {limit} in flight",
    )
    rows = []
    for name, r in (("nothing changed", unchanged), (f"~{args.changed:.0%} changed", changed)):
        rows.append(
            (
                name,
                r["in_flight"],
                r["requests"],
                r["results_requests"],
                r["status_changes"],
                r["bare_seconds"],
                r["seconds"],
                f"{r['seconds'] / r['bare_seconds']:.2f}",
            )
        )
    h.table(
        [
            "hourly run",
            "in flight (orders+kits)",
            "kitsync requests",
            "of which results",
            "status changes",
            "bare loop s",
            "kitsync s",
            "x bare",
        ],
        rows,
    )
    figures = []
    for name, r in (("nothing changed", unchanged), ("changed", changed)):
        same = "yes" if r["requests"] == r["bare_requests"] else f"no (bare loop {r['bare_requests']:,})"
        if args.latency_ms:
            result = h.figure(
                f"hourly run ({name}) speed vs the bare loop at {limit} in flight, "
                f"{args.latency_ms:g} ms latency",
                1 / r["seconds"],
                1 / r["bare_seconds"],
                goal=h.LATENCY_GOAL,
                size=args.kits,
            )
            claim = f"kitsync = {result.ratio:.2f} x the bare loop's speed; goal >= {h.LATENCY_GOAL}"
        else:
            result = h.figure(
                f"hourly run ({name}) seconds vs bare polling of what is in flight",
                r["seconds"],
                r["bare_seconds"],
                goal=GOAL,
                size=args.kits,
                at_most=True,
            )
            claim = f"kitsync = {result.ratio:.2f} x the bare loop; goal <= {GOAL}"
        figures.append(result)
        print(
            f"{name}: {claim}: {'met' if result.met else 'NOT met'}; "
            f"requests {r['requests']:,} = in flight {r['in_flight']:,} + results {r['results_requests']:,}; "
            f"same as bare loop: {same}; token requests {r['token_requests']}; warehouse loads {r['loads']}; "
            f"client CPU {r['cpu']:.2f} s (bare loop {r['bare_cpu']:.2f} s); "
            f"published: {'yes' if r['published'] else 'no'}"
        )
    h.write_figures(args.json, figures)


if __name__ == "__main__":
    main()
