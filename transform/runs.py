"""Run summaries -> the sync_runs table, so every sync, load and backfill leaves a queryable trace."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from transform.result import TransformResult, build_table
from transform.values import parse_timestamp, to_json

_SECRET_KEY: Final = re.compile(
    r"secret|token|password|passwd|api_?key|credential|authori[sz]ation|cookie", re.I
)


def _timestamp(value: object, field: str) -> datetime | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"sync run {field} must be an aware datetime")
        return value
    return parse_timestamp(value)


def _without_secrets(value: Any) -> Any:
    """Parameters as JSON, minus anything named like a credential (a run row is read by every analyst)."""
    if isinstance(value, Mapping):
        return {str(k): _without_secrets(v) for k, v in value.items() if not _SECRET_KEY.search(str(k))}
    if isinstance(value, list | tuple):
        return [_without_secrets(v) for v in value]
    return value


def transform_sync_run(summary: Mapping[str, Any], *, observed_at: datetime) -> TransformResult:
    """A flow's run summary -> one sync_runs row.

    Expected keys: run_id, flow, provider ("biomesight" | "gencove" | "all", default "all"), started_at,
    finished_at (optional), state, counts (mapping), parameters (mapping), complete (bool, optional) and
    incomplete_reason (text, optional). Our own flows write the summary,
    so a malformed one is a bug and raises ValueError instead of being quarantined.
    """
    missing = [field for field in ("run_id", "flow", "started_at", "state") if not summary.get(field)]
    if missing:
        raise ValueError(f"sync run summary lacks {missing}")
    row = {
        "run_id": str(summary["run_id"]),
        "flow": str(summary["flow"]),
        "provider": str(summary.get("provider") or "all"),
        "started_at": _timestamp(summary["started_at"], "started_at"),
        "finished_at": _timestamp(summary.get("finished_at"), "finished_at"),
        "state": str(summary["state"]),
        "counts_json": None if summary.get("counts") is None else to_json(summary["counts"]),
        "parameters_json": None
        if summary.get("parameters") is None
        else to_json(_without_secrets(summary["parameters"])),
        "complete": summary["complete"] if isinstance(summary.get("complete"), bool) else None,
        "incomplete_reason": None
        if summary.get("incomplete_reason") is None
        else str(summary["incomplete_reason"])[:1000],
        "observed_at": observed_at,
    }
    return TransformResult(tables={"sync_runs": build_table("sync_runs", [row])})
