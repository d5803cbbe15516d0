"""The server as a whole: lifecycle, admin endpoints, request counts, the foreground command, a real world."""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import sys
from datetime import timedelta

import pytest
import requests

from sandbox.accounts import (
    BIOMESIGHT_CLIENT_ID,
    BIOMESIGHT_CLIENT_SECRET,
    GENCOVE_API_KEY,
    GENCOVE_PROJECT_IDS,
)
from sandbox.export import platform_export
from sandbox.model import World, status_at
from sandbox.server import SandboxServer, add_arguments
from sandbox.wire import biomesight_time
from sandbox.world import generate_world

TIMEOUT = 10


def test_server_lifecycle_and_properties(world: World) -> None:
    server = SandboxServer(world)
    with pytest.raises(RuntimeError):
        _ = server.base_url
    with server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.world is world
        assert server.clock is world.clock
        assert requests.get(f"{server.base_url}/_sandbox/clock", timeout=TIMEOUT).ok
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{server.base_url}/_sandbox/clock", timeout=TIMEOUT)


def test_clock_admin(server: SandboxServer) -> None:
    clock = f"{server.base_url}/_sandbox/clock"
    start = server.clock.now()
    assert requests.get(clock, timeout=TIMEOUT).json() == {"now": start.isoformat()}
    moved = requests.post(clock, json={"advance_hours": 6}, timeout=TIMEOUT).json()
    assert moved["previous"] == start.isoformat()
    assert moved["now"] == (start + timedelta(hours=6)).isoformat()
    requests.post(clock, json={"advance_days": 1.5}, timeout=TIMEOUT)
    assert server.clock.now() == start + timedelta(hours=6, days=1.5)
    target = start + timedelta(days=10)
    requests.post(clock, json={"set": target.isoformat().replace("+00:00", "Z")}, timeout=TIMEOUT)
    assert server.clock.now() == target
    requests.post(clock, json={"set": start.isoformat()}, timeout=TIMEOUT)
    assert server.clock.now() == target, "the clock never moves back"
    for bad in ({}, {"set": "soon"}, {"advance_hours": "x"}, {"advance_days": -1}):
        assert requests.post(clock, json=bad, timeout=TIMEOUT).status_code == 400, bad
    assert server.advance(timedelta(hours=1)) == target + timedelta(hours=1)


def test_request_counts_by_endpoint_and_status(server: SandboxServer, bearer: dict[str, str]) -> None:
    requests.get(f"{server.base_url}/api/v1/status/kit/BS1-DONE1", headers=bearer, timeout=TIMEOUT)
    requests.get(f"{server.base_url}/api/v1/status/kit/BS1-DONE1", headers=bearer, timeout=TIMEOUT)
    requests.get(f"{server.base_url}/api/v1/status/kit/BS1-NOPE", headers=bearer, timeout=TIMEOUT)
    requests.get(f"{server.base_url}/api/v2/samples/x", timeout=TIMEOUT)
    expected = {
        "biomesight.token": {"200": 1},
        "biomesight.kit_status": {"200": 2, "404": 1},
        "gencove.sample": {"401": 1},
    }
    assert server.request_counts() == expected
    admin = f"{server.base_url}/_sandbox/requests"
    assert requests.get(admin, timeout=TIMEOUT).json() == expected  # admin calls are not counted
    requests.delete(admin, timeout=TIMEOUT)
    assert server.request_counts() == {}
    requests.get(f"{server.base_url}/api/v2/samples/x", timeout=TIMEOUT)
    requests.post(admin, timeout=TIMEOUT)
    assert requests.get(admin, timeout=TIMEOUT).json() == {}


def test_export_csv_is_the_platform_export(server: SandboxServer, world: World) -> None:
    response = requests.get(f"{server.base_url}/_sandbox/export.csv", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    expected = platform_export(world, world.clock.now())
    assert rows == [{key: str(value) for key, value in row.items()} for row in expected]


def test_accounts_and_unknown_admin_paths(server: SandboxServer) -> None:
    accounts = requests.get(f"{server.base_url}/_sandbox/accounts", timeout=TIMEOUT).json()
    assert accounts["biomesight"][0]["client_id"] == BIOMESIGHT_CLIENT_ID
    assert accounts["gencove"][0]["project_ids"] == list(GENCOVE_PROJECT_IDS)
    missing = requests.get(f"{server.base_url}/_sandbox/nothing", timeout=TIMEOUT)
    assert (missing.status_code, set(missing.json())) == (404, {"error"})


def test_add_arguments_parses_the_serve_options() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--port",
            "0",
            "--seed",
            "3",
            "--kits",
            "40",
            "--fault",
            "biomesight.results:429:0.1",
            "--fault",
            "*:slow:0.01",
        ]
    )
    assert (args.host, args.port, args.seed, args.kits) == ("127.0.0.1", 0, 3, 40)
    assert args.fault == ["biomesight.results:429:0.1", "*:slow:0.01"]
    assert args.token_ttl is None
    assert args.biomesight_webhook_url is None


def test_serve_prints_urls_and_credentials_and_answers() -> None:
    code = (
        "import argparse, sandbox.server as s; p = argparse.ArgumentParser(); s.add_arguments(p); "
        "s.run_from_args(p.parse_args(['--port', '0', '--kits', '30', '--fault', 'gencove.sample:500:0.0']))"
    )
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(4)]
        base_url = banner[0].split(" serving on ")[1].split()[0]
        rest = [process.stdout.readline() for _ in range(7)]
        text = "".join(banner + rest)
        assert BIOMESIGHT_CLIENT_SECRET in text
        assert GENCOVE_API_KEY in text
        assert all(project in text for project in GENCOVE_PROJECT_IDS)
        assert "gencove.sample 500" in text
        token = requests.post(
            f"{base_url}/api/v1/auth/token",
            auth=(BIOMESIGHT_CLIENT_ID, BIOMESIGHT_CLIENT_SECRET),
            data={"grant_type": "client_credentials"},
            timeout=TIMEOUT,
        )
        assert token.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        if process.stderr is not None:
            process.stderr.close()


def test_every_kit_of_a_generated_world_answers_its_truth() -> None:
    world = generate_world(seed=5, kits=120, gencove_samples=10)
    with SandboxServer(world) as server, requests.Session() as http:
        token = http.post(
            f"{server.base_url}/api/v1/auth/token",
            auth=(BIOMESIGHT_CLIENT_ID, BIOMESIGHT_CLIENT_SECRET),
            data={"grant_type": "client_credentials"},
            timeout=TIMEOUT,
        ).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        now = world.clock.now()
        checked = 0
        for kit in world.kits.values():
            if kit.account != BIOMESIGHT_CLIENT_ID or world.orders[kit.order_id].purchase_date > now:
                continue
            response = http.get(f"{server.base_url}/api/v1/status/kit/{kit.kit_id}", timeout=TIMEOUT)
            change = status_at(kit.timeline, now)
            if change is None:
                assert response.status_code == 404
            else:
                assert response.json()["status"] == change.status
                assert response.json()["date"] == biomesight_time(change.at)
            results = http.get(f"{server.base_url}/api/v1/results/{kit.kit_id}", timeout=TIMEOUT)
            ready = kit.results_ready_at is not None and kit.results_ready_at <= now
            assert results.status_code == (200 if ready else 202)
            checked += 1
        assert checked > 0
