"""A run's summary rendered for people: a Prefect markdown and table artifact, and a log line."""

from __future__ import annotations

import json
from typing import Any

from flows.logs import logger


def summary_markdown(summary: dict[str, Any]) -> str:
    """The run summary as the markdown artifact shows it: counts, sections, the error, the warehouse."""
    lines = [f"# {summary['flow']} — {summary['state']}", ""]
    if summary.get("complete") is False:
        lines += [f"**Incomplete**: {summary.get('incomplete_reason', 'see below')}", ""]
    lines += ["| measure | value |", "|---|---|"]
    for key in (
        "orders_polled",
        "kits_polled",
        "status_changes",
        "results_fetched",
        "requests_failed",
        "seconds",
    ):
        lines.append(f"| {key.replace('_', ' ')} | {summary.get(key, 0)} |")
    for section in ("rows_written", "quarantined", "unknown_statuses", "deferred", "incomplete"):
        values = summary.get(section) or {}
        lines += ["", f"## {section.replace('_', ' ')}", ""]
        if not values:
            lines.append("none")
        else:
            lines += ["| what | count |", "|---|---|"]
            lines += [f"| {name} | {n} |" for name, n in values.items()]
    if "error" in summary:
        lines += ["", "## error", "", f"`{summary['error']}`"]
    lines += ["", f"Warehouse: `{summary['warehouse']}`"]
    return "\n".join(lines)


async def publish_summary(flow: str, summary: dict[str, Any]) -> None:
    """A markdown and a table artifact when running under Prefect; a log line either way."""
    logger.info("%s summary: %s", flow, json.dumps(summary, default=str))
    try:
        from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
        from prefect.context import FlowRunContext

        if FlowRunContext.get() is None:
            return
        key = flow.replace("_", "-")
        await acreate_markdown_artifact(
            markdown=summary_markdown(summary), key=f"{key}-summary", description="run summary"
        )
        rows = [{"table": name, "rows": n} for name, n in summary.get("rows_written", {}).items()]
        if rows:
            await acreate_table_artifact(table=rows, key=f"{key}-rows", description="rows written per table")
    except ImportError:  # pragma: no cover - prefect is a hard dependency; kept for library use
        return
