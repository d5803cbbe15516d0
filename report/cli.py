"""`kitsync report`: the sub-command's arguments and handler, for flows/cli.py to add to its command tree.

The report never reads settings (only flows/ does): the command line hands it a function that resolves the
default data directory, so the arrow runs flows -> report and never back.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from report.cohorts import DEFAULT_DIMENSION, cohort_dimensions

WAREHOUSE_FILE = Path("warehouse") / "kitsync.duckdb"


def add_report_command(subparsers: Any, *, default_data_dir: Callable[[], Path]) -> argparse.ArgumentParser:
    """Add `report` to an argparse sub-command set (the object `add_subparsers()` returned).

    `default_data_dir` is called only when the command runs without `--data-dir` (flows/cli.py passes the
    settings' data directory). Only argparse is imported here, so building the command tree (`kitsync --help`)
    stays fast; the handler imports matplotlib and DuckDB when it runs.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "report",
        help="write the cohort report: one self-contained HTML file of charts from the warehouse views",
        description=(
            "Write one self-contained HTML file (charts embedded, opens offline) built from the published "
            "warehouse's analysis views: lifecycle funnel, turnaround per stage, failure rates, scores, top "
            "genera, alpha diversity and stuck kits, with cohorts along one dimension."
        ),
    )
    parser.add_argument(
        "--out", type=Path, default=Path("report.html"), help="file to write (default: report.html)"
    )
    parser.add_argument(
        "--cohort",
        choices=cohort_dimensions(),
        default=DEFAULT_DIMENSION,
        help=f"dimension to compare cohorts along (default: {DEFAULT_DIMENSION})",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="kitsync data directory holding warehouse/kitsync.duckdb (default: KITSYNC_DATA_DIR or ./data)",
    )
    parser.set_defaults(handler=partial(run_report_command, default_data_dir=default_data_dir))
    return parser


def run_report_command(args: argparse.Namespace, *, default_data_dir: Callable[[], Path]) -> int:
    """Build the report from `{data_dir}/warehouse/kitsync.duckdb`; returns the process exit status."""
    from report.build import write_report

    data_dir = args.data_dir if args.data_dir is not None else default_data_dir()
    warehouse = Path(data_dir).absolute() / WAREHOUSE_FILE
    if not warehouse.is_file():
        print(  # noqa: T201 - the command's answer
            f"kitsync report: no published warehouse at {warehouse}; run a sync or load first",
            file=sys.stderr,
        )
        return 2
    out = Path(args.out).absolute()
    report = write_report(warehouse, out, args.cohort)
    headlines = report.headlines
    print(  # noqa: T201 - the command's answer
        f"kitsync report: wrote {out} ({out.stat().st_size // 1024} KB; cohorts by {args.cohort}; "
        f"{headlines.kits} kits, {headlines.kits_with_results} with results, {headlines.stuck_kits} stuck)"
    )
    return 0
