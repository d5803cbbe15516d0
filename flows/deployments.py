"""The deployments, for `kitsync serve` (one process serving them all on their schedules).

`prefect.yaml` declares the same deployments for a work pool (`prefect deploy --all`); a test checks that the
two agree on names, schedules and entry points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flows.settings import Settings


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment: which flow, under what name, on which schedule (None: started by hand)."""

    name: str
    entrypoint: str
    cron: str | None
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)


def deployment_specs(settings: Settings) -> list[DeploymentSpec]:
    """kitsync's deployments with their schedules from the settings."""
    return [
        DeploymentSpec(
            "sync-gencove-hourly",
            "flows/gencove.py:sync_gencove",
            settings.gencove_cron,
            "Gencove: list changed samples of each project, fetch results of final ones, load.",
        ),
        DeploymentSpec(
            "sync-biomesight-hourly",
            "flows/biomesight.py:sync_biomesight",
            settings.biomesight_cron,
            "Biomesight: poll tracked orders and kits that are not final, fetch ready results, load.",
        ),
        DeploymentSpec(
            "load-warehouse",
            "flows/load.py:load_warehouse",
            None,
            "Load new lake files into DuckDB (optionally compacting the lake first).",
        ),
        DeploymentSpec(
            "backfill",
            "flows/backfill.py:backfill",
            None,
            "Re-sync a date range or explicit kits in resumable windows (started from the UI's form).",
        ),
    ]


def _flow_of(entrypoint: str) -> Any:
    from prefect.flows import load_flow_from_entrypoint

    return load_flow_from_entrypoint(entrypoint)


def serve_all(settings: Settings) -> None:
    """Serve every deployment from this process until interrupted (no worker or work pool needed)."""
    from prefect import serve

    deployments = [
        _flow_of(spec.entrypoint).to_deployment(
            name=spec.name, cron=spec.cron, description=spec.description, parameters=spec.parameters
        )
        for spec in deployment_specs(settings)
    ]
    serve(*deployments)
