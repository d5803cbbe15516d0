"""Benchmark 5: peak memory of a full first sync at three world sizes (`--kits` / 10, 3 x / 10 and `--kits`).

Each sync runs in a child process of its own (import the export, sync Biomesight, sync Gencove, each with its
load) and reports its own peak RSS (`resource.getrusage(RUSAGE_SELF).ru_maxrss`). The sandbox runs in yet
another process and Prefect's server in another, so neither is counted. Work streams in batches of kits, so
the peak should not grow with the number of kits.

    .venv/bin/python bench/memory.py --kits 100000     # 10k, 30k and 100k kits
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
    args = h.arguments(__doc__ or "", default_kits=100_000).parse_args()
    sizes = [max(10, args.kits // 10), max(30, 3 * args.kits // 10), args.kits]
    with h.prefect_session() as prefect_startup:
        # Children use this process's Prefect server instead of each starting one.
        from prefect.settings import PREFECT_API_URL

        os.environ["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
        results = []
        for kits in sizes:
            results.append((kits, measure(kits, args.seed, h.tuning(args))))
            print(f"  {kits:,} kits: {results[-1][1]['peak_mib']:.0f} MiB", file=sys.stderr)
    h.header(
        "memory: peak RSS of a full first sync (child process)",
        sync="track import + sync-biomesight + sync-gencove with their loads, in a child process",
        sandbox="own process (not counted); Prefect server: this script's, ready in "
        f"{prefect_startup:.1f} s (not counted)",
        kitsync_settings=", ".join(f"{k}={v}" for k, v in h.tuning(args).items()),
    )
    smallest = results[0][1]["peak_mib"]
    h.table(
        [
            "kits (+ as many Gencove samples)",
            "requests",
            "rows written",
            "sync seconds",
            "peak RSS MiB",
            "x smallest",
        ],
        [
            (kits, r["requests"], r["rows"], r["seconds"], r["peak_mib"], f"{r['peak_mib'] / smallest:.2f}")
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
