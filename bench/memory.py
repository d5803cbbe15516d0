"""Benchmark 5: peak memory of a full first sync at three world sizes (`--kits` / 10, 3 x / 10 and `--kits`).

Each sync runs in a child process of its own and reports its own peak RSS
(`resource.getrusage(RUSAGE_SELF).ru_maxrss`); Prefect's server runs in another process, not counted. Work
streams in batches of kits, so the peak should not grow with the number of kits. Two modes:

- `--mode sandbox`: import the export, sync Biomesight, sync Gencove (each with its load) against the
  sandbox in its own process. Complete, but a 100k-kit first sync takes over an hour on a small machine,
  most of it the sandbox's CPU and the HTTP round trips, neither of which holds memory in kitsync beyond a
  batch.
- `--mode synthetic` (what `make bench` runs at 10k, 30k and 100k): a synthetic world streamed through
  kitsync's own path, batch by batch: the real `track-import` flow on an export of N kits, then per batch of
  `--batch-size` kits the Biomesight status, results and taxonomy transforms on payloads rendered by the
  sandbox's own generators (real taxonomy CSVs, all three dialects, ~150 rows a kit), the lake writer, and
  at the end the full DuckDB load. What can grow with N in kitsync's process (the export, the lake, the
  load) is all there; what is left out (HTTP clients, Prefect tasks, Gencove) is bounded by the batch. The
  world is never held: kit i's payloads are derived from (seed, i) when its batch comes.

    .venv/bin/python bench/memory.py --kits 100000 --mode synthetic    # 10k, 30k and 100k kits
    .venv/bin/python bench/memory.py --kits 10000                      # 1k, 3k, 10k through the sandbox
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _harness as h

GOAL = 0.20


def child(base_url: str, data_dir: Path) -> None:
    """Run in the child process: a full first sync, then print peak RSS and seconds as one JSON line."""
    import httpx

    from flows.biomesight import sync_biomesight
    from flows.gencove import sync_gencove
    from flows.track import track_import

    started = time.perf_counter()
    export = data_dir.parent / "export.csv"
    export.write_bytes(httpx.get(f"{base_url}/_sandbox/export.csv", timeout=600).content)
    summaries = [
        asyncio.run(track_import(str(export))),
        asyncio.run(sync_biomesight()),
        asyncio.run(sync_gencove()),
    ]
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = sum(sum((s.get("rows_written") or {}).values()) for s in summaries)
    states = [s.get("state") for s in summaries]
    print(
        json.dumps(
            {
                "peak_mib": peak_kib / 1024,
                "seconds": time.perf_counter() - started,
                "rows": rows,
                "states": states,
            }
        )
    )


SYNTHETIC_START = datetime(2026, 5, 1, tzinfo=UTC)
PIPELINES = (1, 2, 3)  # the sandbox's pipelines: one taxonomy CSV dialect each
COUNTRIES = ("GB", "US", "DE", "NL", "IE")


def synthetic_child(data_dir: Path, kits: int, batch: int, seed: int) -> None:
    """Run in the child process: stream a synthetic world of `kits` kits through kitsync's transforms, lake
    writer and load (see the module docstring); print peak RSS, seconds and rows as one JSON line."""
    from flows.settings import Settings
    from flows.track import track_import
    from sandbox.results import ResultRecipe, build_result, render_results_json, render_taxonomy_csv
    from sandbox.taxonomy import Cohort
    from transform import (
        concat_results,
        transform_biomesight_results,
        transform_biomesight_statuses,
        transform_biomesight_taxonomy,
    )
    from warehouse.batches import write_tables
    from warehouse.load import load

    started = time.perf_counter()
    export = data_dir.parent / "export.csv"
    with export.open("w", newline="") as sink:
        writer = csv.writer(sink)
        writer.writerow(
            [
                "order_id",
                "kit_id",
                "purchase_date",
                "sample_date",
                "sample_type",
                "bristol_scale",
                "bm_frequency",
                "customer_id",
                "country_code",
            ]
        )
        for n in range(kits):
            writer.writerow(
                [
                    f"ORD-S{n:07d}",
                    f"KIT-S{n:07d}",
                    "2026-04-01T10:00:00Z",
                    "2026-04-20",
                    "Gut",
                    1 + n % 7,
                    "Once daily",
                    f"CUST-S{n:07d}",
                    COUNTRIES[n % len(COUNTRIES)],
                ]
            )
    summary = asyncio.run(track_import(str(export)))
    rows = sum((summary.get("rows_written") or {}).values())
    Settings()  # the same settings the flows read (KITSYNC_* from the parent)
    observed_at = SYNTHETIC_START + timedelta(days=60)
    for first in range(0, kits, batch):
        orders, statuses, results, taxonomies = [], [], {}, {}
        for n in range(first, min(first + batch, kits)):
            kit_id = f"KIT-S{n:07d}"
            recipe = ResultRecipe(
                seed * 1_000_003 + n,
                kit_id,
                10_000_000 + n,
                PIPELINES[n % len(PIPELINES)],
                SYNTHETIC_START + timedelta(days=50, minutes=n),
                Cohort(COUNTRIES[n % len(COUNTRIES)], 1 + n % 7, "Once daily"),
            )
            result = build_result(recipe)
            orders.append(
                {"order_id": f"ORD-S{n:07d}", "status": "Delivered", "date": "2026-05-10T10:00:00Z"}
            )
            statuses.append({"kit_id": kit_id, "status": "Results Processed", "date": "2026-06-20T10:00:00Z"})
            results[kit_id] = render_results_json(_KitView(kit_id, result))
            taxonomies[kit_id] = render_taxonomy_csv(result).encode()
        batch_result = concat_results(
            (
                transform_biomesight_statuses(orders, source="poll", observed_at=observed_at, entity="order"),
                transform_biomesight_statuses(statuses, source="poll", observed_at=observed_at, entity="kit"),
                transform_biomesight_results(results, observed_at=observed_at),
                transform_biomesight_taxonomy(taxonomies, observed_at=observed_at),
            )
        )
        written = write_tables(data_dir, batch_result.tables, ingest_date=observed_at.date())
        rows += sum(written.values())
    before_load_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    load(data_dir, data_dir / "warehouse" / "kitsync.duckdb")
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "peak_mib": peak_kib / 1024,
                "peak_before_load_mib": before_load_kib / 1024,
                "seconds": time.perf_counter() - started,
                "rows": rows,
                "states": [summary.get("state")],
            }
        )
    )


class _KitView:
    """What `render_results_json` reads of a sandbox kit: its id and its result."""

    def __init__(self, kit_id: str, result: Any) -> None:
        self.kit_id, self.result = kit_id, result


def measure_synthetic(kits: int, seed: int, settings: dict[str, str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="kitsync-bench-memory-") as directory:
        data_dir = Path(directory) / "data"
        data_dir.mkdir()
        env = {**os.environ, "KITSYNC_DATA_DIR": str(data_dir)}
        env.update({f"KITSYNC_{name.upper()}": value for name, value in settings.items()})
        batch = settings.get("batch_size") or "500"
        command = [sys.executable, __file__, "--synthetic-child", str(data_dir), str(kits), batch, str(seed)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise RuntimeError(f"the synthetic sync at {kits} kits failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
    if any(state != "completed" for state in result["states"]):
        raise RuntimeError(f"the import at {kits} kits did not complete: {result['states']}")
    return {**result, "requests": 0}


def measure(kits: int, seed: int, settings: dict[str, str]) -> dict[str, float]:
    with (
        h.sandbox(kits, seed=seed) as box,
        tempfile.TemporaryDirectory(prefix="kitsync-bench-memory-") as directory,
    ):
        data_dir = Path(directory) / "data"
        data_dir.mkdir()
        env = {**os.environ, **h.kitsync_environment(box, data_dir, **settings)}
        command = [sys.executable, __file__, "--child", box.base_url, str(data_dir)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise RuntimeError(f"the sync at {kits} kits failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        requests = box.requests_total()
    if any(state != "completed" for state in result["states"]):
        raise RuntimeError(f"a sync at {kits} kits did not complete: {result['states']}")
    return {**result, "requests": requests}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]))
        return
    if len(sys.argv) == 6 and sys.argv[1] == "--synthetic-child":
        synthetic_child(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
        return
    parser = h.arguments(__doc__ or "", default_kits=100_000)
    parser.add_argument(
        "--mode", choices=("sandbox", "synthetic"), default="sandbox", help="see the module docstring"
    )
    args = parser.parse_args()
    run = measure_synthetic if args.mode == "synthetic" else measure
    sizes = [max(10, args.kits // 10), max(30, 3 * args.kits // 10), args.kits]
    with h.prefect_session() as prefect_startup:
        # Children use this process's Prefect server instead of each starting one.
        from prefect.settings import PREFECT_API_URL

        os.environ["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
        results = []
        for kits in sizes:
            results.append((kits, run(kits, args.seed, h.tuning(args))))
            print(f"  {kits:,} kits: {results[-1][1]['peak_mib']:.0f} MiB", file=sys.stderr)
    h.header(
        "memory: peak RSS of a full first sync (child process)",
        sync="track import + sync-biomesight + sync-gencove with their loads, in a child process"
        if args.mode == "sandbox"
        else "synthetic world streamed: track-import flow, then per batch the Biomesight transforms and the "
        "lake writer, then the full load, in a child process",
        sandbox="own process (not counted)"
        if args.mode == "sandbox"
        else "none (payloads rendered per batch)",
        prefect=f"this script's server, ready in {prefect_startup:.1f} s (not counted)",
        kitsync_settings=", ".join(f"{k}={v}" for k, v in h.tuning(args).items()),
    )
    smallest = results[0][1]["peak_mib"]
    h.table(
        [
            "kits (+ as many Gencove samples)" if args.mode == "sandbox" else "kits (Biomesight only)",
            "requests",
            "rows written",
            "sync seconds",
            "peak RSS MiB",
            "peak before the last load MiB",
            "x smallest",
        ],
        [
            (
                kits,
                r["requests"],
                r["rows"],
                r["seconds"],
                r["peak_mib"],
                r.get("peak_before_load_mib", ""),
                f"{r['peak_mib'] / smallest:.2f}",
            )
            for kits, r in results
        ],
    )
    peaks = [r["peak_mib"] for _, r in results]
    spread = max(peaks) / min(peaks) - 1
    verdict = h.verdict(spread, GOAL, at_most=True)
    print(f"peak RSS spread = {spread:.0%} across sizes; goal within {GOAL:.0%}: {verdict}")
    h.write_figures(
        args.json,
        [
            h.figure(
                f"peak RSS MiB, largest vs smallest of {', '.join(f'{k:,}' for k in sizes)} kits (spread)",
                max(peaks),
                min(peaks),
                goal=GOAL,
                size=args.kits,
                at_most=True,
                ratio=spread,
            )
        ],
    )


if __name__ == "__main__":
    main()
