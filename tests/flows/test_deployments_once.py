"""The deployments are declared once, in prefect.yaml: `kitsync serve` builds exactly what the file says.

No server needed: Prefect's runner builds its deployment objects locally; they are compared with the file's
raw text (names, entry points, descriptions, tags, parameters, schedules and concurrency).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.deployments import deployment_specs, runner_deployments
from flows.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _declared() -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]}


def test_the_settings_declare_no_schedule_of_their_own() -> None:
    settings = Settings()
    assert settings.gencove_cron is None
    assert settings.biomesight_cron is None


def test_serve_builds_what_prefect_yaml_declares() -> None:
    declared = _declared()
    built = {d.name: d for d in runner_deployments(Settings())}
    assert list(built) == list(declared)
    for name, deployment in built.items():
        spec = declared[name]
        assert deployment.entrypoint == spec["entrypoint"], name
        assert deployment.description == spec["description"], name
        assert deployment.tags == spec["tags"], name
        assert deployment.parameters == spec["parameters"], name
        assert [s.schedule.cron for s in deployment.schedules] == [s["cron"] for s in spec["schedules"]]
        assert [str(s.schedule.timezone) for s in deployment.schedules] == [
            s["timezone"] for s in spec["schedules"]
        ]
        limit = spec.get("concurrency_limit")
        if limit is None:
            assert deployment.concurrency_limit is None, name
        else:
            assert deployment.concurrency_limit == limit["limit"], name
            assert deployment.concurrency_options.collision_strategy.value == limit["collision_strategy"]


def test_every_sync_and_the_load_run_one_at_a_time() -> None:
    declared = _declared()
    for name in ("sync-gencove-hourly", "sync-biomesight-hourly", "load-warehouse"):
        assert declared[name]["concurrency_limit"]["limit"] == 1, name


def test_a_cron_setting_overrides_only_its_own_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITSYNC_GENCOVE_CRON", "5 */2 * * *")
    specs = {spec.name: spec for spec in deployment_specs(Settings())}
    declared = _declared()
    assert specs["sync-gencove-hourly"].cron == "5 */2 * * *"
    assert specs["sync-biomesight-hourly"].cron == declared["sync-biomesight-hourly"]["schedules"][0]["cron"]
    assert specs["sync-gencove-hourly"].parameters == declared["sync-gencove-hourly"]["parameters"]
