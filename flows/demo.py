"""`kitsync demo`: the main job on the embedded default, start to finish, in one process and offline.

It starts the sandbox (both partner APIs on 127.0.0.1) and the webhook receiver in-process, points the
sandbox's pushes at the receiver, imports the platform's order export, then runs the Biomesight and Gencove
syncs over several simulated hours (advancing the sandbox's virtual clock between rounds), loads DuckDB and
prints what happened plus four cohort questions answered from the warehouse (the last one across partners).
Prefect runs on its temporary local server: nothing else needs to be running.

`simulate` is the same job without the printing; the end-to-end tests run it to get a realistic warehouse.
"""

from __future__ import annotations

import asyncio
import csv
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from flows.output import render
from flows.settings import Settings
from sandbox.export import EXPORT_COLUMNS, platform_export
from sandbox.server import SandboxServer
from sandbox.world import generate_world
from warehouse.duck import query

DEMO_MARKER = ".kitsync-demo"

# One customer, one key at both partners: Gencove's trait risk against Biomesight's genus abundance.
CROSS_PARTNER_SQL = """
SELECT trait_group AS lactose_intolerance, n AS customers,
       round(100 * mean, 2) AS mean_bifidobacterium_pct, round(100 * median, 2) AS median_bifidobacterium_pct,
       (SELECT count(*) FROM customers WHERE bought_both) AS customers_who_bought_both
FROM microbiome_by_trait
WHERE trait_key = 'lactose_intolerance' AND grouping = 'risk' AND measure = 'Bifidobacterium'
ORDER BY trait_group
"""

# Four questions an analyst asks first, answered from the views; the last spans both partners.
COHORT_QUESTIONS: tuple[tuple[str, str], ...] = (
    (
        "How long from order to results, and how many kits end off the path? (days, by provider)",
        """
        SELECT provider, count(*) AS kits, count(results_ready_at) AS with_results,
               round(median(days_total), 1) AS median_order_to_results,
               round(quantile_cont(days_total, 0.9), 1) AS p90_order_to_results,
               round(median(
                   date_diff('second', CAST(sample_date AS TIMESTAMPTZ), results_ready_at) / 86400.0
               ), 1) AS median_sample_to_results,
               round(100.0 * count(*) FILTER (
                   WHERE current_stage IN ('failed', 'cancelled', 'replaced', 'lost')
               ) / count(*), 1) AS pct_ended_off_path
        FROM kit_lifecycle
        GROUP BY provider ORDER BY provider
        """,
    ),
    (
        "Does stool consistency go with gut diversity? (Diversity score by Bristol scale)",
        """
        SELECT cohort_value AS bristol_scale, n, round(mean, 1) AS mean, round(median, 1) AS median,
               round(p25, 1) AS p25, round(p75, 1) AS p75
        FROM cohort_scores
        WHERE cohort_dimension = 'bristol_scale' AND score_key = 'diversity'
        ORDER BY CAST(cohort_value AS INTEGER)
        """,
    ),
    (
        "Which genera differ most between countries? (prevalence and mean abundance, top 8 by spread)",
        """
        WITH g AS (
            SELECT cohort_value AS country, taxon, kits_profiled, prevalence, mean_abundance
            FROM taxa_prevalence
            WHERE cohort_dimension = 'country' AND rank = 'genus' AND kits_profiled >= 10
        ), spread AS (
            SELECT taxon, max(mean_abundance) - min(mean_abundance) AS spread FROM g GROUP BY taxon
        )
        SELECT g.taxon, g.country, g.kits_profiled AS kits, round(g.prevalence, 2) AS prevalence,
               round(100 * g.mean_abundance, 2) AS mean_abundance_pct
        FROM g JOIN (SELECT taxon FROM spread ORDER BY spread DESC, taxon LIMIT 8) AS top USING (taxon)
        ORDER BY g.taxon, g.mean_abundance DESC
        """,
    ),
    (
        "Customers with both tests: does a high lactose-intolerance risk (Gencove) go with more "
        "Bifidobacterium (Biomesight)?",
        CROSS_PARTNER_SQL,
    ),
)


class DemoDataDirError(RuntimeError):
    """The data directory holds something other than an earlier demo's output; the demo will not touch it."""


@dataclass
class RoundReport:
    """What one simulated round did."""

    virtual_time: str
    summaries: list[dict[str, Any]] = field(default_factory=list)


def sandbox_environment(server: SandboxServer, data_dir: Path) -> dict[str, str]:
    """The `KITSYNC_*` variables that point kitsync at an in-process sandbox and a data directory."""
    return {
        "KITSYNC_DATA_DIR": str(data_dir),
        "KITSYNC_BIOMESIGHT_BASE_URL": server.base_url,
        "KITSYNC_GENCOVE_BASE_URL": server.base_url,
        # Every round would re-render the report; the demo renders it once at the end instead.
        "KITSYNC_REPORT_AFTER_SYNC": "false",
    }


@contextmanager
def environment(overrides: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration (flows read `Settings` from the environment at run time)."""
    saved = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def webhooks_to_receiver(server: SandboxServer, settings: Settings) -> Iterator[str]:
    """Run the receiver in a thread and point the sandbox's pushes at it; yields the receiver's URL."""
    from flows.receiver import webhook_app, webhook_server_in_thread

    with webhook_server_in_thread(webhook_app(settings)) as url:
        server.set_webhook_urls(f"{url}/webhooks/biomesight", f"{url}/webhooks/gencove")
        try:
            yield url
        finally:
            server.set_webhook_urls(None, None)


def _import_export(server: SandboxServer) -> dict[str, Any]:
    """Import the platform's order export as it stands at the sandbox's now (through a private temp file)."""
    from flows.track import track_import

    with server.world.lock:
        rows = platform_export(server.world, server.clock.now())
    with tempfile.TemporaryDirectory(prefix="kitsync-export-") as directory:
        path = Path(directory) / "platform-export.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        return asyncio.run(track_import(str(path)))


async def _sync_both(*flows: Callable[[], Awaitable[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Run the partners' syncs at once (as `kitsync sync` does): their summaries in order; the first error
    is raised once every sync has ended (one partner's failure does not cut the other short)."""
    outcomes = await asyncio.gather(*(flow() for flow in flows), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return list(outcomes)


def simulate(
    server: SandboxServer,
    *,
    rounds: int,
    step: timedelta,
    on_round: Callable[[int, RoundReport], None] | None = None,
) -> list[RoundReport]:
    """Run `rounds` rounds of (import the export, sync Biomesight and Gencove at once), moving the clock by
    `step` after each but the last. Settings come from the environment (see `sandbox_environment`)."""
    from flows.biomesight import sync_biomesight
    from flows.gencove import sync_gencove

    reports = []
    for number in range(1, rounds + 1):
        report = RoundReport(virtual_time=server.clock.now().isoformat(timespec="minutes"))
        report.summaries.append(_import_export(server))
        report.summaries.extend(asyncio.run(_sync_both(sync_biomesight, sync_gencove)))
        reports.append(report)
        if on_round is not None:
            on_round(number, report)
        if number < rounds:
            server.advance(step)
            server.wait_webhooks()
    return reports


def prepare_data_dir(data_dir: Path) -> None:
    """Start the demo from an empty data directory, clearing only what an earlier demo left there."""
    if data_dir.exists() and any(data_dir.iterdir()):
        if not (data_dir / DEMO_MARKER).exists():
            raise DemoDataDirError(
                f"{data_dir} already holds kitsync data that the demo did not make; "
                "point KITSYNC_DATA_DIR at an empty or new directory to run the demo"
            )
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (data_dir / DEMO_MARKER).write_text("made by `kitsync demo`; the next demo may delete this directory\n")


def _print_round(number: int, report: RoundReport) -> None:
    polled = sum(s.get("kits_polled", 0) + s.get("orders_polled", 0) for s in report.summaries)
    changes = sum(s.get("status_changes", 0) for s in report.summaries)
    fetched = sum(s.get("results_fetched", 0) for s in report.summaries)
    quarantined = sum(sum((s.get("quarantined") or {}).values()) for s in report.summaries)
    rows = sum(sum((s.get("rows_written") or {}).values()) for s in report.summaries)
    webhooks = sum((s.get("rows_written") or {}).get("webhook_events", 0) for s in report.summaries)
    print(
        f"  round {number} at {report.virtual_time}: polled {polled}, status changes {changes}, "
        f"results fetched {fetched}, webhook events {webhooks}, rows written {rows}, "
        f"quarantined {quarantined}"
    )


def run_demo(*, seed: int = 7, kits: int = 300, rounds: int = 4, step_hours: float = 12.0) -> int:
    """The `kitsync demo` command; returns the process exit status."""
    settings = Settings()
    data_dir = settings.data_dir.absolute()
    try:
        prepare_data_dir(data_dir)
    except DemoDataDirError as error:
        print(f"kitsync demo: {error}")
        return 2
    started = time.monotonic()
    print(f"kitsync demo: sandbox world seed {seed}, {kits} Biomesight kits; data in {data_dir}")
    world = generate_world(seed=seed, kits=kits)
    with SandboxServer(world) as server, environment(sandbox_environment(server, data_dir)):
        settings = Settings()
        print(
            f"  sandbox (both partner APIs) on {server.base_url}, "
            f"virtual now {server.clock.now():%Y-%m-%d %H:%M}"
        )
        with webhooks_to_receiver(server, settings) as receiver:
            print(f"  webhook receiver on {receiver}; the sandbox pushes status changes to it")
            reports = simulate(server, rounds=rounds, step=timedelta(hours=step_hours), on_round=_print_round)
        requests = server.request_counts()
    _print_totals(reports, requests)
    warehouse = data_dir / "warehouse" / "kitsync.duckdb"
    for title, sql in COHORT_QUESTIONS:
        print(f"\n{title}\n")
        print(render(query(warehouse, sql), max_rows=20))
    from flows.report import publish_report

    report = asyncio.run(publish_report(Settings()))
    print(f"Cohort report (open it in a browser): {report.get('path')}")
    print(f"Done in {time.monotonic() - started:.0f} s. The DuckDB warehouse is {warehouse}")
    print("Query it: .venv/bin/kitsync query \"SELECT * FROM funnel WHERE cohort_dimension = 'provider'\"")
    return 0


def _print_totals(reports: list[RoundReport], requests: dict[str, dict[str, int]]) -> None:
    rows: dict[str, int] = {}
    quarantined: dict[str, int] = {}
    unknown: dict[str, int] = {}
    for report in reports:
        for summary in report.summaries:
            for name, n in (summary.get("rows_written") or {}).items():
                rows[name] = rows.get(name, 0) + n
            for reason, n in (summary.get("quarantined") or {}).items():
                quarantined[reason] = quarantined.get(reason, 0) + n
            for status, n in (summary.get("unknown_statuses") or {}).items():
                unknown[status] = unknown.get(status, 0) + n
    total_requests = sum(sum(by_status.values()) for by_status in requests.values())
    print(f"\nRun summary: {len(reports)} rounds, {total_requests} partner requests")
    print("  rows written: " + ", ".join(f"{name} {n}" for name, n in sorted(rows.items())))
    print("  quarantined: " + (", ".join(f"{r} {n}" for r, n in sorted(quarantined.items())) or "none"))
    print("  unknown statuses: " + (", ".join(f"{s} {n}" for s, n in sorted(unknown.items())) or "none"))
