"""The cohort report after a sync: rewrite `{data_dir}/reports/report-latest.html` and tell Prefect about it.

The sync flows call `publish_report` once their load has published the warehouse; `cohort_report` is the same
as a flow of its own (a deployment, or a re-render along another cohort dimension from the Prefect UI).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from prefect import flow

from flows.logs import run_logger
from flows.runtime import data_paths, run_settings
from flows.settings import Settings
from report.cohorts import DEFAULT_DIMENSION

REPORT_ARTIFACT_KEY = "cohort-report"
REPORT_FILE = Path("reports") / "report-latest.html"
logger = logging.getLogger("kitsync.flows")


def report_path(settings: Settings) -> Path:
    """Where the latest report lives under the data directory."""
    return data_paths(settings).data_dir / REPORT_FILE


async def publish_report(settings: Settings, *, cohort: str = DEFAULT_DIMENSION) -> dict[str, Any]:
    """Render the report from the published warehouse and, inside a Prefect flow run, publish its headline
    numbers and a link to the file as the markdown artifact `cohort-report`.

    Returns a JSON-able summary. A data directory with no published warehouse yet (a first sync that loaded
    nothing) is reported as skipped rather than raised: there is nothing to draw, and nothing is wrong.
    """
    from report.build import write_report
    from warehouse.duck import ensure_private_dir

    warehouse = data_paths(settings).warehouse
    out = report_path(settings)
    if not warehouse.is_file():
        logger.info("cohort report skipped: no published warehouse at %s", warehouse)
        return {"status": "skipped", "reason": f"no published warehouse at {warehouse}", "path": None}
    ensure_private_dir(out.parent)
    # matplotlib and DuckDB block for a few seconds: off the event loop, so a flow's other work keeps going.
    report = await asyncio.to_thread(write_report, warehouse, out, cohort)
    summary: dict[str, Any] = {
        "status": "written",
        "path": str(out),
        "url": out.as_uri(),
        "cohort": cohort,
        "headlines": report.headlines.to_dict(),
        "findings": report.findings,
        "artifact": None,
    }
    summary["artifact"] = await _publish_artifact(report, out)
    logger.info("cohort report written to %s", out)
    return summary


async def _publish_artifact(report: Any, out: Path) -> str | None:
    """The markdown artifact's key when running inside a flow run; None outside Prefect (a plain call)."""
    from prefect.artifacts import acreate_markdown_artifact
    from prefect.context import FlowRunContext

    from report.headlines import headlines_markdown

    if FlowRunContext.get() is None:
        return None
    await acreate_markdown_artifact(
        markdown=headlines_markdown(report.headlines, report_link=out.as_uri(), findings=report.findings),
        key=REPORT_ARTIFACT_KEY,
        description="cohort report: headline numbers and a link to the HTML file",
    )
    return REPORT_ARTIFACT_KEY


@flow(name="cohort-report")
async def cohort_report(cohort: str = DEFAULT_DIMENSION) -> dict[str, Any]:
    """Re-render the cohort report from the published warehouse (settings read at run time)."""
    return await publish_report(await run_settings(), cohort=cohort)


async def report_for_run_summary(settings: Settings) -> dict[str, Any]:
    """The cohort report after a sync, summed up for its run summary; a report that fails to render never
    fails the sync (its data is loaded; only the picture is missing), it says so here."""
    try:
        report = await publish_report(settings)
    except Exception as error:
        run_logger().warning("cohort report failed: %s: %s", type(error).__name__, error)
        return {"status": "failed", "error": f"{type(error).__name__}: {error}"[:300]}
    return {key: report.get(key) for key in ("status", "path", "artifact")}
