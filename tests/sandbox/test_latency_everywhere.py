"""The benchmarks' latency mode (`*:slow` on the sandbox) reaches every partner route, none left fast."""

from __future__ import annotations

from sandbox import biomesight_api, gencove_api
from sandbox.faults import ENDPOINTS, FaultRule
from sandbox.server import build_app
from sandbox.state import SandboxState
from sandbox.world import generate_world


def test_every_partner_route_is_an_endpoint_a_star_slow_rule_delays() -> None:
    app = build_app(SandboxState(world=generate_world(seed=1, kits=5, gencove_samples=2)))
    partner_routes = [
        route
        for route in app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith((biomesight_api.PREFIX, gencove_api.PREFIX))
        and route.method != "HEAD"
    ]
    assert partner_routes
    names = {route.name for route in partner_routes}
    assert names <= set(ENDPOINTS), names - set(ENDPOINTS)
    assert set(ENDPOINTS) <= names  # every declared endpoint is served
    latency = FaultRule("*", "slow", params={"delay": 0.1})
    assert all(latency.applies_to(name, "slow") for name in names)
