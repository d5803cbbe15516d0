"""Benchmark: the taxonomy CSV transform (pyarrow's reader, vectorized) against the Python parser it replaced.

Both parse the same CSVs: every ready kit's taxonomy CSV of a generated sandbox world (its three dialects, in
the world's mix), rendered in this process (no HTTP: the transform alone is timed). The baseline is the
Python parser as it was at BASELINE_REV, loaded from git (`git show REV:transform/taxonomy.py`) into a module
of its own, so the repository keeps one parser. Before timing, both must agree: the same rows for every
world CSV, and the same quarantine row (reason and detail) for each CSV of a corpus of damaged ones (made from
world CSVs), all in one batch as a sync hands them over.

    .venv/bin/python bench/taxonomy_parse.py --kits 2000
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import _harness as h

from transform import taxonomy

BASELINE_REV = "7ae87459284e00ae4141c2a06653b7b68405eeca"  # the last commit with the Python parser
GOAL = 3.0  # our target: the transform at least 3x the Python parser's kits/s (none stated in the issue)
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def baseline_module(rev: str) -> ModuleType:
    """transform/taxonomy.py as it was at `rev`, imported under another name."""
    return h.module_at(rev, "transform/taxonomy.py", "taxonomy_baseline")


def world_csvs(kits: int, seed: int) -> dict[str, bytes]:
    """Every kit's taxonomy CSV in a generated world (kits whose result exists), as the API serves it."""
    from sandbox.results import render_taxonomy_csv
    from sandbox.world import generate_world

    world = generate_world(seed=seed, kits=kits)
    return {
        kit_id: render_taxonomy_csv(kit.result).encode()
        for kit_id, kit in world.kits.items()
        if kit.result is not None
    }


def damaged(csvs: Mapping[str, bytes], seed: int, count: int) -> dict[str, bytes]:
    """CSVs a lab's export could plausibly send: cut short, a bad number, a short or long row, blank rows,
    UTF-16, a BOM, an unknown header, only a header."""
    rng = random.Random(seed)
    kits = sorted(csvs)
    out: dict[str, bytes] = {}
    for i in range(count):
        lines = csvs[rng.choice(kits)].decode().splitlines()
        row = rng.randrange(1, len(lines))
        cells = lines[row].split(",")
        kind = i % 9
        if kind == 0:
            lines = lines[: rng.randrange(1, len(lines))]
        elif kind == 1:
            cells[-1] = rng.choice(["x", "-1", "1.5", "", "1e400", "1_000"])
            lines[row] = ",".join(cells)
        elif kind == 2:
            lines[row] = ",".join(cells[:-1])
        elif kind == 3:
            lines[row] = ",".join([*cells, "extra"])
        elif kind == 4:
            lines.insert(row, " , ")
            lines.insert(0, "")
        elif kind == 5:
            out[f"bad-{i}"] = "\n".join(lines).encode("utf-16")
            continue
        elif kind == 6:
            out[f"bad-{i}"] = b"\xef\xbb\xbf" + "\n".join(lines).encode()
            continue
        elif kind == 7:
            lines[0] = lines[0].replace(lines[0].split(",")[0], "what")
        else:
            lines = lines[:1]
        out[f"bad-{i}"] = "\n".join(lines).encode()
    return out


def _outcome(module: ModuleType, csvs: Mapping[str, bytes]) -> dict[str, Any]:
    """Per kit: its rows, or its quarantine reason and detail, from one module's batch transform."""
    result = module.transform_biomesight_taxonomy(csvs, observed_at=NOW)
    out: dict[str, Any] = {}
    for row in result.table("taxonomy").to_pylist():
        out.setdefault(row["kit_id"], []).append(
            (
                row["rank"],
                row["taxon"],
                row["lineage"],
                round(row["relative_abundance"], 12),
                row["read_count"],
            )
        )
    for row in result.quarantine.to_pylist():
        out[row["entity_id"]] = (row["reason"], row["detail"])
    return out


def disagreements(baseline: ModuleType, csvs: Mapping[str, bytes]) -> list[str]:
    """Kits whose rows or quarantine row differ between the two transforms (given the same batch)."""
    ours, theirs = _outcome(taxonomy, csvs), _outcome(baseline, csvs)
    return sorted(kit_id for kit_id in csvs if ours.get(kit_id) != theirs.get(kit_id))


def best_seconds(run: Callable[[], Any], repeats: int) -> float:
    """The fastest of `repeats` runs (the least disturbed by the other processes on a shared machine)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = h.arguments(__doc__ or "", default_kits=2000)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per parser (the best counts)")
    parser.add_argument("--baseline-rev", default=BASELINE_REV, help="git revision of the Python parser")
    args = parser.parse_args()

    baseline = baseline_module(args.baseline_rev)
    csvs = world_csvs(args.kits, args.seed)
    broken = damaged(csvs, args.seed, 300)
    differing = disagreements(baseline, {**csvs, **broken})
    if differing:
        print(f"the parsers disagree on {len(differing)} CSVs, e.g. {differing[:5]}", file=sys.stderr)

    def transform(module: ModuleType) -> Callable[[], Any]:
        return lambda: module.transform_biomesight_taxonomy(csvs, observed_at=NOW)

    ours = best_seconds(transform(taxonomy), args.repeats)
    theirs = best_seconds(transform(baseline), args.repeats)
    rows = transform(taxonomy)().table("taxonomy").num_rows
    h.header(
        "taxonomy_parse: the taxonomy CSV transform, pyarrow vs the Python parser",
        csvs=f"{len(csvs):,} ready kits of a {args.kits:,}-kit world (seed {args.seed}), {rows:,} rows",
        baseline=f"transform/taxonomy.py at {args.baseline_rev[:12]} (loaded from git)",
        agreement=f"{len(csvs) + len(broken) - len(differing):,} of {len(csvs) + len(broken):,} CSVs "
        f"({len(broken)} damaged) give the same rows or quarantine reason and detail",
        timing=f"best of {args.repeats} runs each, one thread",
    )
    h.table(
        ["parser", "seconds", "ms per kit", "kits/s"],
        [
            ("kitsync (pyarrow, vectorized)", ours, 1000 * ours / len(csvs), len(csvs) / ours),
            ("Python parser (baseline)", theirs, 1000 * theirs / len(csvs), len(csvs) / theirs),
        ],
    )
    result = h.figure(
        "taxonomy transform kits/s vs the Python parser",
        len(csvs) / ours,
        len(csvs) / theirs,
        goal=GOAL,
        size=args.kits,
    )
    print(
        f"taxonomy transform = {result.ratio:.2f} x the Python parser; goal >= {GOAL}: "
        f"{h.verdict(result.ratio, GOAL)}; parsers agree: {'yes' if not differing else 'NO'}"
    )
    h.write_figures(args.json, [result])
    if differing:
        sys.exit(1)


if __name__ == "__main__":
    main()
