"""In-memory partners behind httpx.MockTransport for the extract unit tests (fixtures live in conftest)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from extract.retry import Backoff

BASE_URL = "https://biomesight.test"
GENCOVE_URL = "https://gencove.test"
CLIENT_ID = "platform-client-7"
CLIENT_SECRET = "s3cr3t-CLIENT-value-xyzzy"
API_KEY = "gencove-KEY-0123456789-plugh"
# No waiting in unit tests: the delays a test cares about come from Retry-After, which is honoured exactly.
NO_WAIT = Backoff(base=0.0, cap=0.0)

Route = Callable[[httpx.Request], httpx.Response]


def snapshot(request: httpx.Request) -> httpx.Request:
    """A copy of a request as it was sent: auth flows mutate the original's headers when they resend it."""
    return httpx.Request(request.method, request.url, headers=request.headers.copy(), content=request.content)


def respond(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    """A JSON response (or raw bytes/str when given) for a fake route."""
    if isinstance(body, bytes | str):
        return httpx.Response(status, content=body, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


@dataclass
class FakeBiomesight:
    """Biomesight's token endpoint plus the routes a test adds; accepts only tokens it issued, not revoked."""

    expires_in: int = 3600
    token_status: int = 200
    routes: dict[str, Route] = field(default_factory=dict)
    issued: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    api_requests: list[httpx.Request] = field(default_factory=list)
    token_requests: list[httpx.Request] = field(default_factory=list)
    latency: float = 0.0

    def route(
        self, path: str, status: int = 200, body: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        self.routes[path] = lambda _request: respond(status, body, headers)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/auth/token":
            return self._token(request)
        self.api_requests.append(snapshot(request))
        bearer = request.headers.get("Authorization", "")
        token = bearer.removeprefix("Bearer ")
        if not bearer.startswith("Bearer ") or token not in self.issued or token in self.revoked:
            return respond(401, {"error": "Invalid or expired token"})
        path = request.url.raw_path.decode().split("?")[0]
        if path not in self.routes:
            return respond(404, {"error": "Kit not found"})
        return self.routes[path](request)

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        # A little latency so that concurrent requests really overlap.
        await anyio.sleep(self.latency or 0.005)
        return self.handle(request)

    def _token(self, request: httpx.Request) -> httpx.Response:
        self.token_requests.append(snapshot(request))
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if self.token_status != 200 or request.headers.get("Authorization") != expected:
            status = self.token_status if self.token_status != 200 else 401
            return respond(status, {"error": "invalid_client"})
        token = f"tok-{len(self.issued) + 1}-SECRETTOKEN"
        self.issued.append(token)
        return respond(200, {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in})


@dataclass
class FakeGencove:
    """Gencove routes keyed by path; checks the API key; records requests."""

    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def route(
        self, path: str, status: int = 200, body: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        self.routes[path] = lambda _request: respond(status, body, headers)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(snapshot(request))
        if request.headers.get("Authorization") != f"Api-Key {API_KEY}":
            return respond(401, {"detail": "Invalid API key."})
        route = self.routes.get(request.url.path)
        return route(request) if route else respond(404, {"detail": "Not found."})

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        await anyio.sleep(0.001)
        return self.handle(request)


def json_body(request: httpx.Request) -> Any:
    return json.loads(request.content)
