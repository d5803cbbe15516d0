"""Reference tables transform knows by heart: the status map and the stages, for funnels and lookups."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa

from transform.result import build_table
from transform.status import DOCUMENTED, PATH_STAGES, STAGE_RANK, STAGES, is_final_stage


def status_map_table(observed_at: datetime) -> pa.Table:
    """Every documented partner status with its stage, failure reason, finality and funnel rank."""
    rows = [
        {
            "provider": mapping.provider,
            "entity": mapping.entity,
            "partner_status": mapping.partner_status,
            "stage": mapping.stage,
            "failure_reason": mapping.failure_reason,
            "is_final": mapping.is_final,
            "stage_rank": STAGE_RANK[mapping.stage],
            "description": mapping.description,
            "reached_stage": mapping.reached_stage,
            "reached_rank": None if mapping.reached_stage is None else STAGE_RANK[mapping.reached_stage],
            "observed_at": observed_at,
        }
        for mapping in DOCUMENTED
    ]
    return build_table("status_map", rows)


def lifecycle_stages_table(observed_at: datetime) -> pa.Table:
    """Every canonical stage with its funnel rank, so the views never repeat the vocabulary in SQL.

    Provider "all": stages are the same for both partners.
    """
    rows = [
        {
            "provider": "all",
            "stage": stage,
            "stage_rank": STAGE_RANK[stage],
            "on_path": stage in PATH_STAGES,
            "is_final": is_final_stage(stage, "kit"),
            "observed_at": observed_at,
        }
        for stage in STAGES
    ]
    return build_table("lifecycle_stages", rows)
