"""Fault injection: per endpoint, at a rate and/or for the first N requests, deterministic from a seed.

A rule names an endpoint (`biomesight.results`, `gencove.project_samples`, ... or `*`), a kind, and when.
Transport-level kinds (429, 5xx, slow, drop, truncate) are applied by the middleware around every handler;
content kinds (bad_base64, broken_csv, unknown_status, expire_token) are drawn by the handler at the moment
they can apply, so that "the first 3 requests" means 3 requests that really were corrupted.

Rule spec (CLI `--fault` and `add_spec`): `endpoint:kind[:rate][:key=value,...]`, for example
`biomesight.results:429:0.1`, `gencove.sample:503:count=2`, `*:slow:0.05:delay=1.5`,
`biomesight.results:429:count=3,retry_after=2`. Keys: `count`, `retry_after` (429), `delay` (slow, seconds),
`status` (unknown_status: the status string to send).
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sandbox.traffic import Traffic
from sandbox.wire import json_response

BIOMESIGHT_ENDPOINTS = (
    "biomesight.token",
    "biomesight.order",
    "biomesight.register_kit",
    "biomesight.results",
    "biomesight.kit_status",
    "biomesight.order_status",
)
GENCOVE_ENDPOINTS = (
    "gencove.sample_kit",
    "gencove.project_samples",
    "gencove.sample",
    "gencove.metadata",
    "gencove.sample_statuses",
    "gencove.quality_controls",
    "gencove.trait_scores",
    "gencove.ancestry",
    "gencove.file_checksum",
)
ENDPOINTS = BIOMESIGHT_ENDPOINTS + GENCOVE_ENDPOINTS

TRANSPORT_KINDS = ("drop", "429", "500", "502", "503", "slow", "truncate")
CONTENT_KINDS = ("bad_base64", "broken_csv", "unknown_status", "expire_token")
FAULT_KINDS = TRANSPORT_KINDS + CONTENT_KINDS

# Where a content fault can apply; a rule for another endpoint never fires (and never uses up its count).
_CONTENT_ENDPOINTS = {
    "bad_base64": ("biomesight.results",),
    "broken_csv": ("biomesight.results",),
    "unknown_status": (
        "biomesight.kit_status",
        "biomesight.order_status",
        "gencove.project_samples",
        "gencove.sample",
        "gencove.sample_statuses",
    ),
    "expire_token": tuple(name for name in BIOMESIGHT_ENDPOINTS if name != "biomesight.token"),
}
DEFAULT_UNKNOWN_STATUS = {"biomesight": "Awaiting Courier", "gencove": "sequencing_queued"}
DEFAULT_SLOW_SECONDS = 2.0


@dataclass
class FaultRule:
    """One injected misbehaviour; `injected` counts how often it fired."""

    endpoint: str
    kind: str
    rate: float = 1.0
    count: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    injected: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; choose from {', '.join(FAULT_KINDS)}")
        if self.endpoint != "*" and self.endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {self.endpoint!r}; choose from *, {', '.join(ENDPOINTS)}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be within [0, 1], got {self.rate}")
        if self.count is not None and self.count < 0:
            raise ValueError(f"fault count must not be negative, got {self.count}")

    def applies_to(self, endpoint: str, kind: str) -> bool:
        """Whether this rule may fire for a request to `endpoint` asking about `kind`."""
        if kind != self.kind or (self.endpoint not in ("*", endpoint)):
            return False
        allowed = _CONTENT_ENDPOINTS.get(kind)
        return allowed is None or endpoint in allowed

    def as_json(self) -> dict[str, Any]:
        """The rule as the admin endpoint shows it."""
        return {
            "endpoint": self.endpoint,
            "kind": self.kind,
            "rate": self.rate,
            "count": self.count,
            "params": self.params,
            "injected": self.injected,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> FaultRule:
        """A rule from the admin endpoint's JSON (same keys as `as_json`, `injected` ignored)."""
        count = body.get("count")
        rate = body.get("rate")
        return cls(
            endpoint=str(body.get("endpoint", "*")),
            kind=str(body["kind"]),
            rate=float(rate) if rate is not None else 1.0,
            count=int(count) if count is not None else None,
            params=dict(body.get("params") or {}),
        )


def parse_fault_spec(spec: str) -> FaultRule:
    """A rule from `endpoint:kind[:rate][:key=value,...]` (see the module docstring)."""
    parts = spec.split(":")
    if len(parts) < 2 or len(parts) > 4:
        raise ValueError(f"fault spec {spec!r} is not endpoint:kind[:rate][:key=value,...]")
    endpoint, kind, *rest = parts
    rate = 1.0
    params: dict[str, Any] = {}
    for part in rest:
        if "=" in part:
            for pair in part.split(","):
                key, _, value = pair.partition("=")
                params[key.strip()] = _number_or_text(value.strip())
        else:
            rate = float(part)
    count = params.pop("count", None)
    return FaultRule(endpoint, kind, rate, int(count) if count is not None else None, params)


def _number_or_text(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


class FaultPlan:
    """The active rules and their seeded random draws; safe to change from any thread while serving."""

    def __init__(self, rules: list[FaultRule] | None = None, seed: int = 0) -> None:
        self.seed = seed
        self._rules: list[FaultRule] = []
        self._rngs: list[random.Random] = []
        self._lock = threading.Lock()
        for rule in rules or []:
            self.add(rule)

    def add(self, rule: FaultRule) -> FaultRule:
        """Append a rule; each draws from its own seeded generator, so adding one does not shift others."""
        with self._lock:
            self._rngs.append(random.Random(f"{self.seed}:{len(self._rules)}:{rule.endpoint}:{rule.kind}"))
            self._rules.append(rule)
        return rule

    def add_spec(self, spec: str) -> FaultRule:
        """Parse and append a `endpoint:kind[:rate][:params]` rule."""
        return self.add(parse_fault_spec(spec))

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()
            self._rngs.clear()

    def rules(self) -> list[FaultRule]:
        """A snapshot of the rules."""
        with self._lock:
            return list(self._rules)

    def take(self, endpoint: str, kind: str) -> FaultRule | None:
        """The rule that fires for this request and kind, if any (consuming one of its count)."""
        with self._lock:
            for rule, rng in zip(self._rules, self._rngs, strict=True):
                if not rule.applies_to(endpoint, kind):
                    continue
                if rule.count is not None and rule.injected >= rule.count:
                    continue
                if rule.rate < 1.0 and rng.random() >= rule.rate:
                    continue
                rule.injected += 1
                return rule
        return None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def endpoint_of(request: web.Request) -> str | None:
    """The endpoint name a partner route was registered under (None for admin and unknown paths)."""
    route = request.match_info.route
    name = getattr(route, "name", None)
    return name if name in ENDPOINTS else None


def fault_middleware(plan: FaultPlan, traffic: Traffic) -> Any:
    """aiohttp middleware: counts every partner request and applies the transport-level faults."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        endpoint = endpoint_of(request)
        if endpoint is None:
            return await handler(request)
        response = await _apply_faults(plan, endpoint, request, handler)
        if response is None:
            traffic.record(endpoint, "dropped")
            # The transport is already aborted: aiohttp's write of this response fails quietly (it treats it
            # as the client going away), so the client sees the connection close with no response at all.
            return web.Response(status=500)
        traffic.record(endpoint, response.status)
        return response

    return middleware


async def _apply_faults(
    plan: FaultPlan, endpoint: str, request: web.Request, handler: Handler
) -> web.StreamResponse | None:
    if plan.take(endpoint, "drop") is not None:
        if request.transport is not None:
            request.transport.abort()
        return None
    for status in ("429", "500", "502", "503"):
        rule = plan.take(endpoint, status)
        if rule is not None:
            return _error_response(endpoint, int(status), rule)
    slow = plan.take(endpoint, "slow")
    if slow is not None:
        await asyncio.sleep(float(slow.params.get("delay", DEFAULT_SLOW_SECONDS)))
    response = await handler(request)
    ok_with_body = 200 <= response.status < 300 and isinstance(response, web.Response) and response.body
    if ok_with_body and plan.take(endpoint, "truncate") is not None:
        body = bytes(response.body)  # type: ignore[arg-type]
        return web.Response(
            body=body[: len(body) // 2], status=response.status, content_type=response.content_type
        )
    return response


_REASONS = {
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service temporarily unavailable",
}


def _error_response(endpoint: str, status: int, rule: FaultRule) -> web.Response:
    headers: dict[str, str] = {}
    retry_after = rule.params.get("retry_after")
    if status == 429 and retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if endpoint.startswith("gencove."):
        if status == 503:
            body: Any = {
                "maintenance": True,
                "maintenance_eta": str(rule.params.get("eta", "2 hours")),
                "maintenance_message": "Gencove is undergoing scheduled maintenance.",
            }
        elif status == 429:
            body = {"detail": "Request was throttled."}
        else:
            body = {"detail": _REASONS[status]}
    else:
        body = {"error": _REASONS[status]}
    return json_response(body, status=status, headers=headers)


def unknown_status_for(rule: FaultRule, partner: str) -> str:
    """The out-of-vocabulary status an `unknown_status` rule makes a partner send."""
    return str(rule.params.get("status", DEFAULT_UNKNOWN_STATUS[partner]))
