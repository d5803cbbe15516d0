"""Benchmark: a small load's time as the warehouse grows, publish-by-copy against DuckLake.

For each size, a taxonomy lake of that many rows is written by kitsync's lake writer and loaded in full into
both warehouses through the real load path (`warehouse.load.load`): the embedded single file published by
copy (`kitsync.duckdb`) and the DuckLake catalog published by copy with its data as parquet files beside it
(`kitsync.ducklake`). Then `--loads` small loads each land the same number of new rows at every size (1% of
the smallest size: new kits, one lake file) and are timed; the median is reported with what each small load
wrote (the copied snapshot or catalog, new parquet files). Goal: a small load's time flat within 20% from
the smallest to the largest size.

    .venv/bin/python bench/scale.py                                  # 100k and 1M rows, a few minutes here
    .venv/bin/python bench/scale.py --sizes 1000000,10000000,50000000 --json scale.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import _harness as h
import numpy as np
import pyarrow as pa

from transform.schemas import ALL_SPECS
from warehouse.duck import query
from warehouse.lake import write_table
from warehouse.load import load

TAXA_PER_KIT = 150
SMALL_SHARE = 0.01
FLAT_GOAL = 1.2
BACKENDS = {"publish-by-copy": "kitsync.duckdb", "ducklake": "kitsync.ducklake"}
_BATCH_ROWS = (
    1_500_000  # rows per lake file while building (a sync's batches are smaller; fewer files is faster)
)
_RANKS = np.array(["kingdom", "phylum", "class", "order", "family", "genus", "species"])


@dataclass(frozen=True)
class SmallLoads:
    backend: str
    size: int
    seconds: list[float]
    bytes_written: list[int]
    full_load: float

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def taxonomy_rows(first_kit: int, kits: int, seed: int) -> pa.Table:
    """`kits` kits of 150 taxa each, kit ids from `first_kit` on (new kits never collide with held ones)."""
    rng = np.random.default_rng(seed)
    rows = kits * TAXA_PER_KIT
    taxon = rng.integers(0, 3000, rows)
    kit_ids = np.char.add("BS1-", np.char.zfill(np.arange(first_kit, first_kit + kits).astype(str), 8))
    columns = {
        "provider": pa.array(np.full(rows, "biomesight")),
        "kit_id": pa.array(np.repeat(kit_ids, TAXA_PER_KIT)),
        "rank": pa.array(_RANKS[taxon % len(_RANKS)]),
        "taxon": pa.array(np.char.add("t", taxon.astype(str))),
        # the lineage carries the row's position in its kit, so (kit, rank, lineage) stays a key
        "lineage": pa.array(
            np.char.add(np.char.add("l__", taxon.astype(str)), np.tile(np.arange(150), kits).astype(str))
        ),
        "relative_abundance": pa.array(rng.random(rows)),
        "read_count": pa.array(rng.integers(0, 50_000, rows)),
        "observed_at": pa.array(
            np.full(rows, datetime(2026, 11, 1, 12, tzinfo=UTC)), pa.timestamp("us", tz="UTC")
        ),
    }
    spec = ALL_SPECS["taxonomy"]
    return pa.Table.from_arrays([columns[f.name] for f in spec.schema], schema=spec.schema)


def write_kits(lake: Path, first_kit: int, kits: int, seed: int) -> None:
    per_file = max(1, _BATCH_ROWS // TAXA_PER_KIT)
    for number, first in enumerate(range(first_kit, first_kit + kits, per_file)):
        count = min(per_file, first_kit + kits - first)
        write_table(
            lake,
            ALL_SPECS["taxonomy"],
            taxonomy_rows(first, count, seed + number),
            ingest_date=date(2026, 11, 1),
        )


def _files_under(directory: Path) -> dict[Path, tuple[int, int, int]]:
    return {
        p: (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size)
        for p in directory.rglob("*")
        if p.is_file()
    }


def _bytes_written(before: dict[Path, tuple[int, int, int]], after: dict[Path, tuple[int, int, int]]) -> int:
    """Bytes of the files a load created or replaced (a published copy counts whole; the writer's own
    database, changed in place, counts by its growth)."""
    total = 0
    for path, (inode, mtime, size) in after.items():
        old = before.get(path)
        if old is None or old[0] != inode:
            total += size
        elif old[1] != mtime:
            total += max(0, size - old[2])
    return total


def measure(size: int, small_rows: int, loads: int, backends: list[str], work: Path) -> list[SmallLoads]:
    """Build a lake of `size` rows, load it into each backend, then time `loads` small loads on each."""
    kits = max(1, size // TAXA_PER_KIT)
    small_kits = max(1, small_rows // TAXA_PER_KIT)
    lake = work / f"lake-{size}"
    write_kits(lake, 0, kits, seed=size)
    results = []
    for backend in backends:
        warehouse = work / f"warehouse-{size}-{backend}" / BACKENDS[backend]
        full = h.timed(lambda warehouse=warehouse: load(lake, warehouse))
        seconds, written = [], []
        next_kit = kits + 1_000_000 * (1 + backends.index(backend))  # each backend its own new kits
        for number in range(loads):
            # the small files land in the shared lake: a backend measured later takes them in with its full
            # load, and its own small loads add kits of their own
            write_kits(lake, next_kit + number * small_kits, small_kits, seed=size + 1000 + number)
            before = _files_under(warehouse.parent)
            timed = h.timed(lambda warehouse=warehouse: load(lake, warehouse))
            after = _files_under(warehouse.parent)
            seconds.append(timed.seconds)
            written.append(_bytes_written(before, after))
        results.append(SmallLoads(backend, size, seconds, written, full.seconds))
    return results


def _count(warehouse: Path) -> int:
    return int(query(warehouse, "SELECT count(*) AS n FROM taxonomy").column("n")[0].as_py())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,1000000", help="taxonomy rows per size, comma-separated")
    parser.add_argument("--loads", type=int, default=3, help="small loads timed per size and backend")
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="comma-separated: " + ", ".join(BACKENDS)
    )
    parser.add_argument("--json", type=Path, help="write the figures as a JSON list to this file")
    parser.add_argument("--work-dir", type=Path, help="where lakes and warehouses go (default: a temp dir)")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    backends = [b.strip() for b in args.backends.split(",")]
    for backend in backends:
        if backend not in BACKENDS:
            parser.error(f"unknown backend {backend!r}; one of {', '.join(BACKENDS)}")

    # The same small load at every size (1% of the smallest): what should stay flat is the cost of one
    # change of a given size as the warehouse grows, so the change itself must not grow with it.
    small_rows = max(TAXA_PER_KIT, round(sizes[0] * SMALL_SHARE))
    results: list[SmallLoads] = []
    with tempfile.TemporaryDirectory(prefix="kitsync-bench-scale-", dir=args.work_dir) as directory:
        for size in sizes:
            started = time.perf_counter()
            results += measure(size, small_rows, args.loads, backends, Path(directory))
            print(f"size {size:,}: measured in {time.perf_counter() - started:.0f} s", flush=True)

    by = {(r.backend, r.size): r for r in results}
    h.header(
        "scale: the same small load against the warehouse's size",
        small_load=f"{small_rows:,} new taxonomy rows (new kits; {SMALL_SHARE:.0%} of the smallest size), "
        f"median of {args.loads}",
    )
    h.table(
        [
            "backend",
            "taxonomy rows",
            "full load s",
            "small load s (median)",
            "MB written per small load (new or replaced files)",
        ],
        [
            (r.backend, r.size, r.full_load, r.median, statistics.median(r.bytes_written) / 1e6)
            for r in results
        ],
    )
    rows: list[dict[str, object]] = []
    reference = "publish-by-copy" if "publish-by-copy" in backends else backends[0]
    chosen = "ducklake" if "ducklake" in backends else backends[0]
    for size in sizes:
        ours, base = by[(chosen, size)].median, by[(reference, size)].median
        rows.append(
            {
                "name": f"small load at {size:,} rows: {chosen} vs {reference} (s)",
                "kitsync": round(ours, 4),
                "baseline": round(base, 4),
                "ratio": round(ours / base, 3),
                "goal": None,
                "met": None,
                "size": size,
            }
        )

    for size in sizes:
        ours_mb = statistics.median(by[(chosen, size)].bytes_written) / 1e6
        base_mb = statistics.median(by[(reference, size)].bytes_written) / 1e6
        rows.append(
            {
                "name": f"MB written by a small load at {size:,} rows: {chosen} vs {reference}",
                "kitsync": round(ours_mb, 2),
                "baseline": round(base_mb, 2),
                "ratio": round(ours_mb / base_mb, 3) if base_mb else None,
                "goal": None,
                "met": None,
                "size": size,
            }
        )

    def growth(backend: str) -> float:
        return by[(backend, sizes[-1])].median / by[(backend, sizes[0])].median

    flat = growth(chosen)
    rows.append(
        {
            "name": f"small load growth {sizes[0]:,} -> {sizes[-1]:,} rows ({chosen}; baseline: {reference})",
            "kitsync": round(flat, 3),
            "baseline": round(growth(reference), 3),
            "ratio": round(flat, 3),
            "goal": FLAT_GOAL,
            "met": flat <= FLAT_GOAL,
            "size": sizes[-1],
        }
    )
    for backend in backends:
        print(
            f"{backend}: small load at {sizes[-1]:,} rows = {growth(backend):.2f} x the one at {sizes[0]:,}; "
            f"goal <= {FLAT_GOAL}: {h.verdict(growth(backend), FLAT_GOAL, at_most=True)}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
