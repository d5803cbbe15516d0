"""`prefect deploy --all` of prefect.yaml against a temporary Prefect server registers what kitsync declares.

Runs the real Prefect command line in a subprocess against the session's test server, then reads back what
the server recorded: every deployment, its entry point, schedule, concurrency and parameter form.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from flows.deployments import deployment_specs
from flows.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))


def _prefect(*arguments: str, api_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the Prefect CLI of this venv, fixed arguments
        [PREFECT, *arguments],
        cwd=ROOT,
        env={**os.environ, "PREFECT_API_URL": api_url},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def registered(prefect_api: str) -> dict[str, dict[str, Any]]:
    """The deployments the server holds after `prefect deploy --all`, by name."""
    pool = _prefect("work-pool", "create", "kitsync-process", "--type", "process", api_url=prefect_api)
    assert pool.returncode == 0, pool.stderr[-2000:]
    deployed = _prefect("--no-prompt", "deploy", "--all", api_url=prefect_api)
    assert deployed.returncode == 0, (deployed.stdout + deployed.stderr)[-3000:]
    found = _post(f"{prefect_api}/deployments/filter", {}).raise_for_status().json()
    return {deployment["name"]: deployment for deployment in found}


def test_every_declared_deployment_is_registered_with_its_schedule(
    registered: dict[str, dict[str, Any]],
) -> None:
    declared = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    specs = {spec.name: spec for spec in deployment_specs(Settings())}
    assert set(registered) == {d["name"] for d in declared} == set(specs)
    for name, spec in specs.items():
        deployment = registered[name]
        assert deployment["entrypoint"] == spec.entrypoint
        assert deployment["work_pool_name"] == "kitsync-process"
        crons = [s["schedule"]["cron"] for s in deployment["schedules"]]
        assert crons == ([spec.cron] if spec.cron else [])
        assert deployment["description"] == spec.description
    for name in ("sync-gencove-hourly", "sync-biomesight-hourly", "load-warehouse"):
        assert registered[name]["global_concurrency_limit"]["limit"] == 1


def test_the_backfill_form_has_every_parameter_typed_and_described(
    registered: dict[str, dict[str, Any]],
) -> None:
    schema = registered["backfill"]["parameter_openapi_schema"]
    properties = schema["properties"]
    assert list(properties) == [
        "kits",
        "provider",
        "refetch_results",
        "reprocess_from_raw",
        "window_days",
        "start_over",
    ]
    assert all(field["description"] for field in properties.values())
    # The one choice the form cannot do without is required, and it is a choice between the two slices.
    assert schema["required"] == ["kits"]
    assert "kits" not in registered["backfill"]["parameters"]
    choices = {ref["$ref"].rsplit("/", 1)[-1] for ref in properties["kits"]["anyOf"]}
    by_dates, by_ids = (schema["definitions"][name] for name in sorted(choices))
    assert by_dates["required"] == ["start_date", "end_date"]
    assert by_dates["properties"]["start_date"] == {**by_dates["properties"]["start_date"], "format": "date"}
    assert by_dates["properties"]["date_field"]["enum"] == ["purchase_date", "sample_date"]
    assert by_ids["required"] == ["kit_ids"]
    assert by_ids["properties"]["kit_ids"]["minItems"] == 1
    assert all(field["description"] for d in (by_dates, by_ids) for field in d["properties"].values())
    assert properties["provider"]["enum"] == ["all", "biomesight", "gencove"]
    assert properties["window_days"] == {**properties["window_days"], "type": "integer", "default": 30}
    assert properties["refetch_results"]["type"] == properties["reprocess_from_raw"]["type"] == "boolean"
    assert registered["backfill"]["schedules"] == []
    assert registered["backfill"]["enforce_parameter_schema"] is True


def test_sync_forms_describe_their_parameters(registered: dict[str, dict[str, Any]]) -> None:
    gencove = registered["sync-gencove-hourly"]["parameter_openapi_schema"]["properties"]
    biomesight = registered["sync-biomesight-hourly"]["parameter_openapi_schema"]["properties"]
    assert set(gencove) == {"project_ids", "load"}
    assert set(biomesight) == {"load", "fetch_pdf"}
    assert all(field["description"] for field in (*gencove.values(), *biomesight.values()))


def _retried(method: str, url: str, body: dict[str, Any] | None = None) -> httpx.Response:
    """One call to the test server, tried again on 503 as Prefect's own client does: its SQLite database
    answers 503 when it stays locked under another test's burst of writes (a busy machine) and rolls back."""
    for _ in range(5):
        answer = httpx.request(method, url, json=body, timeout=60)
        if answer.status_code != 503:
            break
        time.sleep(2)
    return answer


def _post(url: str, body: dict[str, Any]) -> httpx.Response:
    return _retried("POST", url, body)


def test_a_backfill_submitted_without_its_kits_is_refused_before_any_run_exists(
    registered: dict[str, dict[str, Any]], prefect_api: str
) -> None:
    """What the UI's Run button sends (create a flow run from the deployment): the server checks the form
    against the enforced parameter schema, so a backfill without a date range or kit ids never starts."""
    deployment = registered["backfill"]
    create = f"{prefect_api}/deployments/{deployment['id']}/create_flow_run"

    refused = {
        "the defaults only": {},
        "an empty list of kits": {"kits": {"kit_ids": []}},
        "a range without its end": {"kits": {"start_date": "2026-01-01"}},
        "both kinds at once": {
            "kits": {"start_date": "2026-01-01", "end_date": "2026-01-31", "kit_ids": ["BS1-AAAAA"]}
        },
    }
    for what, parameters in refused.items():
        answer = _post(create, {"parameters": parameters})
        assert answer.status_code == 409, (what, answer.status_code, answer.text)
        assert "Error creating flow run" in answer.json()["detail"], what
    assert "'kits' is a required property" in _post(create, {}).json()["detail"]

    runs = f"{prefect_api}/flow_runs/filter"
    of_backfill = {"deployments": {"id": {"any_": [deployment["id"]]}}}
    assert _post(runs, of_backfill).raise_for_status().json() == []

    # The same form with a choice made is accepted. Those runs are deleted at once: a worker of this session's
    # server (another test's) must never pick them up.
    for kits in ({"start_date": "2026-01-01", "end_date": "2026-01-31"}, {"kit_ids": ["BS1-AAAAA"]}):
        created = _post(create, {"parameters": {"kits": kits}})
        assert created.status_code == 201, created.text
        _retried("DELETE", f"{prefect_api}/flow_runs/{created.json()['id']}").raise_for_status()
        assert created.json()["parameters"] == {**deployment["parameters"], "kits": kits}
