"""kitsync's deployments, declared once in `prefect.yaml` and read from there by `kitsync serve`.

`prefect deploy --all` registers prefect.yaml's deployments on a work pool; `kitsync serve` serves the
same ones (names, entry points, descriptions, tags, parameters, schedules, concurrency limits) from one
process, read from the same file. The only knob `serve` adds is a schedule override from the settings
(KITSYNC_GENCOVE_CRON / KITSYNC_BIOMESIGHT_CRON, unset by default), for hours that differ from the pool's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flows.settings import Settings

PROJECT_DIR = Path(__file__).resolve().parents[1]
PREFECT_YAML = PROJECT_DIR / "prefect.yaml"
# The settings that override a deployment's cron under `kitsync serve`, by deployment name.
CRON_SETTINGS = {"sync-gencove-hourly": "gencove_cron", "sync-biomesight-hourly": "biomesight_cron"}


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment as prefect.yaml declares it (cron None: no schedule, started by hand or from the UI)."""

    name: str
    entrypoint: str
    cron: str | None
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    timezone: str = "UTC"
    concurrency_limit: int | None = None
    collision_strategy: str | None = None


def _spec(declared: dict[str, Any]) -> DeploymentSpec:
    schedules = declared.get("schedules") or []
    if len(schedules) > 1:
        raise ValueError(f"{declared['name']}: kitsync declares at most one schedule per deployment")
    schedule = schedules[0] if schedules else {}
    limit = declared.get("concurrency_limit")
    # prefect.yaml takes either a number or {limit, collision_strategy}.
    options = limit if isinstance(limit, dict) else {"limit": limit}
    return DeploymentSpec(
        name=declared["name"],
        entrypoint=declared["entrypoint"],
        cron=schedule.get("cron"),
        description=declared.get("description", ""),
        parameters=dict(declared.get("parameters") or {}),
        tags=tuple(declared.get("tags") or ()),
        timezone=schedule.get("timezone", "UTC"),
        concurrency_limit=options.get("limit"),
        collision_strategy=options.get("collision_strategy"),
    )


def declared_deployments(path: Path = PREFECT_YAML) -> list[DeploymentSpec]:
    """The deployments prefect.yaml declares, in its order."""
    return [_spec(declared) for declared in yaml.safe_load(path.read_text())["deployments"]]


def deployment_specs(settings: Settings) -> list[DeploymentSpec]:
    """prefect.yaml's deployments with the settings' schedule overrides (what `kitsync serve` serves)."""
    specs = []
    for spec in declared_deployments():
        override = getattr(settings, CRON_SETTINGS.get(spec.name, ""), None)
        if override is not None and spec.cron is None:
            raise ValueError(f"{spec.name} has no schedule in prefect.yaml to override")
        specs.append(spec if override is None else _with_cron(spec, override))
    return specs


def _with_cron(spec: DeploymentSpec, cron: str) -> DeploymentSpec:
    from dataclasses import replace

    return replace(spec, cron=cron)


def _concurrency(spec: DeploymentSpec) -> Any:
    if spec.concurrency_limit is None:
        return None
    if spec.collision_strategy is None:
        return spec.concurrency_limit
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    return ConcurrencyLimitConfig(
        limit=spec.concurrency_limit, collision_strategy=ConcurrencyLimitStrategy(spec.collision_strategy)
    )


def runner_deployments(settings: Settings) -> list[Any]:
    """The deployments `kitsync serve` serves, as Prefect's runner builds them from prefect.yaml."""
    from prefect.deployments.runner import RunnerDeployment
    from prefect.schedules import Cron

    # From the entry point as declared (relative to the project directory, where serve runs), so a served run
    # loads the same flow object a worker's run does.
    return [
        RunnerDeployment.from_entrypoint(
            spec.entrypoint,
            name=spec.name,
            schedules=[Cron(spec.cron, timezone=spec.timezone)] if spec.cron else [],
            description=spec.description,
            parameters=spec.parameters,
            tags=list(spec.tags),
            concurrency_limit=_concurrency(spec),
        )
        for spec in deployment_specs(settings)
    ]


def serve_all(settings: Settings) -> None:
    """Serve every deployment from this process until interrupted (no worker or work pool needed)."""
    from prefect import serve

    serve(*runner_deployments(settings))
