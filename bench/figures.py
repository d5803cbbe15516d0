"""The figures of bench runs (their --json files) as one table and, with --out, one JSON list.

.venv/bin/python bench/figures.py bench-results/[0-9]*.json --out bench-results/figures.json
.venv/bin/python bench/figures.py old/figures.json new/figures.json     # two runs side by side
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import _harness as h


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="+", type=Path, help="JSON files written by the bench scripts' --json")
    parser.add_argument("--out", type=Path, default=None, help="write all figures to this JSON file")
    args = parser.parse_args()
    figures = []
    for path in args.files:
        for figure in json.loads(path.read_text()):
            if set(figure) != set(h.FIGURE_KEYS):
                raise SystemExit(f"{path}: a figure with keys {sorted(figure)}, not {list(h.FIGURE_KEYS)}")
            figures.append({"file": path.name, **figure})
    h.table(
        ["file", "figure", "size", "kitsync", "baseline", "ratio", "goal", "met"],
        [
            (
                f["file"],
                f["name"],
                f["size"],
                "" if f["kitsync"] is None else f["kitsync"],
                f["baseline"],
                "" if f["ratio"] is None else f["ratio"],
                "" if f["goal"] is None else f["goal"],
                {True: "met", False: "NOT met", None: ""}[f["met"]],
            )
            for f in figures
        ],
    )
    if args.out is not None:
        args.out.write_text(json.dumps([{k: f[k] for k in h.FIGURE_KEYS} for f in figures], indent=2) + "\n")


if __name__ == "__main__":
    main()
