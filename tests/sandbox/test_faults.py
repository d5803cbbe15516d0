"""Fault injection: rule parsing, seeded determinism, and every fault kind observed over real HTTP."""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import time

import pytest
import requests

from sandbox.accounts import BIOMESIGHT_CLIENT_ID, BIOMESIGHT_CLIENT_SECRET, GENCOVE_PROJECT_IDS
from sandbox.faults import FaultPlan, FaultRule, parse_fault_spec
from sandbox.model import World
from sandbox.server import SandboxServer

TIMEOUT = 10
PROJECT = GENCOVE_PROJECT_IDS[0]


def bm(server: SandboxServer, path: str) -> str:
    return f"{server.base_url}/api/v1/{path}"


def gc(server: SandboxServer, path: str) -> str:
    return f"{server.base_url}/api/v2/{path}"


# --- rules ------------------------------------------------------------------------------------------------


def test_parse_fault_specs() -> None:
    rule = parse_fault_spec("biomesight.results:429:0.1")
    assert (rule.endpoint, rule.kind, rule.rate, rule.count, rule.params) == (
        "biomesight.results",
        "429",
        0.1,
        None,
        {},
    )
    rule = parse_fault_spec("gencove.sample:503:count=2")
    assert (rule.rate, rule.count) == (1.0, 2)
    rule = parse_fault_spec("*:slow:0.5:delay=1.5")
    assert (rule.endpoint, rule.rate, rule.params) == ("*", 0.5, {"delay": 1.5})
    rule = parse_fault_spec("biomesight.results:429:count=3,retry_after=2")
    assert (rule.count, rule.params) == (3, {"retry_after": 2})


@pytest.mark.parametrize(
    "spec", ["biomesight.results", "nowhere:429", "biomesight.results:418", "*:500:1.5", "a:b:c:d:e"]
)
def test_bad_fault_specs_are_rejected(spec: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_fault_spec(spec)


def test_draws_are_deterministic_for_a_seed() -> None:
    def hits(seed: int) -> list[bool]:
        plan = FaultPlan([FaultRule("biomesight.results", "500", rate=0.3)], seed=seed)
        return [plan.take("biomesight.results", "500") is not None for _ in range(2000)]

    first = hits(5)
    assert first == hits(5)
    assert first != hits(6)
    assert 0.25 < sum(first) / len(first) < 0.35


def test_count_limits_the_first_n_requests() -> None:
    plan = FaultPlan([FaultRule("gencove.sample", "502", count=3)])
    fired = [plan.take("gencove.sample", "502") is not None for _ in range(6)]
    assert fired == [True, True, True, False, False, False]
    assert plan.rules()[0].injected == 3


def test_rules_only_fire_where_they_apply() -> None:
    plan = FaultPlan([FaultRule("*", "bad_base64", count=1), FaultRule("biomesight.token", "500")])
    assert plan.take("biomesight.kit_status", "bad_base64") is None  # not a results endpoint: count kept
    assert plan.take("biomesight.results", "bad_base64") is not None
    assert plan.take("biomesight.order", "500") is None


# --- transport kinds over HTTP ----------------------------------------------------------------------------


def test_429_with_and_without_retry_after(world: World) -> None:
    faults = ["biomesight.token:429:count=1,retry_after=7", "gencove.project_samples:429:count=1"]
    with SandboxServer(world, faults=faults) as server:
        throttled = requests.post(
            bm(server, "auth/token"),
            auth=(BIOMESIGHT_CLIENT_ID, BIOMESIGHT_CLIENT_SECRET),
            data={"grant_type": "client_credentials"},
            timeout=TIMEOUT,
        )
        assert throttled.status_code == 429
        assert throttled.headers["Retry-After"] == "7"
        assert set(throttled.json()) == {"error"}
        headers = {"Authorization": "Api-Key sandbox-gencove-api-key"}
        plain = requests.get(gc(server, f"project-samples/{PROJECT}"), headers=headers, timeout=TIMEOUT)
        assert plain.status_code == 429
        assert "Retry-After" not in plain.headers
        assert "detail" in plain.json()
        # count=1: the next request goes through
        assert requests.get(gc(server, f"project-samples/{PROJECT}"), headers=headers, timeout=TIMEOUT).ok


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_in_each_partners_shape(
    server: SandboxServer, api_key: dict[str, str], status: int
) -> None:
    server.add_fault(f"*:{status}:count=2")
    biomesight = requests.get(bm(server, "status/kit/BS1-DONE1"), timeout=TIMEOUT)
    assert biomesight.status_code == status
    assert set(biomesight.json()) == {"error"}
    gencove = requests.get(gc(server, "samples/x"), headers=api_key, timeout=TIMEOUT)
    assert gencove.status_code == status
    if status == 503:
        body = gencove.json()
        assert body["maintenance"] is True
        assert set(body) == {"maintenance", "maintenance_eta", "maintenance_message"}
    else:
        assert set(gencove.json()) == {"detail"}


def test_slow_responses(server: SandboxServer, bearer: dict[str, str]) -> None:
    server.add_fault("biomesight.kit_status:slow:count=1,delay=0.4")
    started = time.perf_counter()
    response = requests.get(bm(server, "status/kit/BS1-DONE1"), headers=bearer, timeout=TIMEOUT)
    assert response.status_code == 200
    assert time.perf_counter() - started >= 0.4
    server.add_fault("biomesight.kit_status:slow:count=1,delay=0.5")
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(bm(server, "status/kit/BS1-DONE1"), headers=bearer, timeout=0.2)


def test_dropped_connections(server: SandboxServer, bearer: dict[str, str]) -> None:
    server.add_fault("biomesight.kit_status:drop:count=1")
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(bm(server, "status/kit/BS1-DONE1"), headers=bearer, timeout=TIMEOUT)
    assert (
        requests.get(bm(server, "status/kit/BS1-DONE1"), headers=bearer, timeout=TIMEOUT).status_code == 200
    )
    assert server.request_counts()["biomesight.kit_status"] == {"dropped": 1, "200": 1}


def test_truncated_bodies(server: SandboxServer, api_key: dict[str, str]) -> None:
    whole = requests.get(gc(server, f"project-samples/{PROJECT}"), headers=api_key, timeout=TIMEOUT)
    server.add_fault("gencove.project_samples:truncate:count=1")
    cut = requests.get(gc(server, f"project-samples/{PROJECT}"), headers=api_key, timeout=TIMEOUT)
    assert cut.status_code == 200
    assert len(cut.content) == len(whole.content) // 2
    assert whole.content.startswith(cut.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.content)


# --- content kinds over HTTP ------------------------------------------------------------------------------


def test_bad_base64(server: SandboxServer, bearer: dict[str, str]) -> None:
    server.add_fault("biomesight.results:bad_base64:count=2")
    for fmt in ("csv", "csv"):
        body = requests.get(
            bm(server, "results/BS1-DONE1"), headers=bearer, params={"format": fmt}, timeout=TIMEOUT
        ).json()
        with pytest.raises(binascii.Error):
            base64.b64decode(body["csv"])
    clean = requests.get(
        bm(server, "results/BS1-DONE1"), headers=bearer, params={"format": "csv"}, timeout=TIMEOUT
    )
    base64.b64decode(clean.json()["csv"], validate=True)


def test_broken_csv_alternates_header_and_abundance(server: SandboxServer, bearer: dict[str, str]) -> None:
    clean = requests.get(
        bm(server, "results/BS1-DONE1"), headers=bearer, params={"format": "csv"}, timeout=TIMEOUT
    )
    good_rows = list(csv.reader(io.StringIO(base64.b64decode(clean.json()["csv"]).decode())))
    server.add_fault("biomesight.results:broken_csv:count=2")
    broken = []
    for _ in range(2):
        body = requests.get(
            bm(server, "results/BS1-DONE1"), headers=bearer, params={"format": "csv"}, timeout=TIMEOUT
        ).json()
        broken.append(list(csv.reader(io.StringIO(base64.b64decode(body["csv"], validate=True).decode()))))
    header_broken, values_broken = broken
    assert header_broken[0] != good_rows[0]
    assert header_broken[1:] == good_rows[1:]
    assert values_broken[0] == good_rows[0]
    assert "n/a" in values_broken[1]


def test_unknown_statuses(server: SandboxServer, bearer: dict[str, str], api_key: dict[str, str]) -> None:
    server.add_fault("biomesight.kit_status:unknown_status:count=1")
    server.add_fault("biomesight.order_status:unknown_status:count=1,status=Held at Customs")
    server.add_fault("gencove.project_samples:unknown_status:count=1")
    server.add_fault("gencove.sample:unknown_status:count=1")
    kit = requests.get(bm(server, "status/kit/BS1-DONE1"), headers=bearer, timeout=TIMEOUT).json()
    assert kit["status"] == "Awaiting Courier"
    order = requests.get(bm(server, "status/order/ORD-DONE"), headers=bearer, timeout=TIMEOUT).json()
    assert order["status"] == "Held at Customs"
    page = requests.get(gc(server, f"project-samples/{PROJECT}"), headers=api_key, timeout=TIMEOUT).json()
    assert {item["last_status"]["status"] for item in page["results"]} == {"sequencing_queued"}
    sample_id = page["results"][0]["id"]
    detail = requests.get(gc(server, f"samples/{sample_id}"), headers=api_key, timeout=TIMEOUT).json()
    assert detail["last_status"]["status"] == "sequencing_queued"
    again = requests.get(gc(server, f"samples/{sample_id}"), headers=api_key, timeout=TIMEOUT).json()
    assert again["last_status"]["status"] != "sequencing_queued"


def test_expire_token(server: SandboxServer, bearer: dict[str, str]) -> None:
    server.add_fault("biomesight.results:expire_token:count=1")
    assert (
        requests.get(bm(server, "status/kit/BS1-DONE1"), headers=bearer, timeout=TIMEOUT).status_code == 200
    )
    expired = requests.get(bm(server, "results/BS1-DONE1"), headers=bearer, timeout=TIMEOUT)
    assert (expired.status_code, expired.json()) == (401, {"error": "Token expired"})
    # The token stays expired everywhere; a fresh one works.
    assert (
        requests.get(bm(server, "status/kit/BS1-DONE1"), headers=bearer, timeout=TIMEOUT).status_code == 401
    )
    token = requests.post(
        bm(server, "auth/token"),
        auth=(BIOMESIGHT_CLIENT_ID, BIOMESIGHT_CLIENT_SECRET),
        data={"grant_type": "client_credentials"},
        timeout=TIMEOUT,
    ).json()["access_token"]
    fresh = {"Authorization": f"Bearer {token}"}
    assert requests.get(bm(server, "results/BS1-DONE1"), headers=fresh, timeout=TIMEOUT).status_code == 200


def test_faults_through_the_admin_endpoint(server: SandboxServer, bearer: dict[str, str]) -> None:
    admin = f"{server.base_url}/_sandbox/faults"
    created = requests.post(admin, json={"spec": "biomesight.kit_status:500:count=1"}, timeout=TIMEOUT)
    assert created.status_code == 201
    by_fields = requests.post(
        admin, json={"endpoint": "biomesight.order_status", "kind": "502", "count": 1}, timeout=TIMEOUT
    )
    assert by_fields.status_code == 201
    assert requests.post(admin, json={"kind": "teapot"}, timeout=TIMEOUT).status_code == 400
    assert (
        requests.get(bm(server, "status/kit/BS1-DONE1"), headers=bearer, timeout=TIMEOUT).status_code == 500
    )
    assert (
        requests.get(bm(server, "status/order/ORD-DONE"), headers=bearer, timeout=TIMEOUT).status_code == 502
    )
    listed = requests.get(admin, timeout=TIMEOUT).json()
    assert [(rule["kind"], rule["injected"]) for rule in listed] == [("500", 1), ("502", 1)]
    assert requests.delete(admin, timeout=TIMEOUT).json() == []
    assert requests.get(admin, timeout=TIMEOUT).json() == []


def test_fault_rate_over_http_is_seeded(world: World) -> None:
    def statuses() -> list[int]:
        with SandboxServer(world, faults=["gencove.metadata:500:0.5"], fault_seed=3) as server:
            headers = {"Authorization": "Api-Key sandbox-gencove-api-key"}
            sample_id = next(iter(world.samples))
            return [
                requests.get(
                    gc(server, f"sample-metadata/{sample_id}"), headers=headers, timeout=TIMEOUT
                ).status_code
                for _ in range(40)
            ]

    first = statuses()
    assert first == statuses()
    assert 5 < first.count(500) < 35
