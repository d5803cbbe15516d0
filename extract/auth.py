"""How kitsync proves who it is (httpx.Auth): OAuth2 client credentials for Biomesight, Gencove's API key.

The token request is yielded from the auth flow, so it travels through the same client and therefore the same
retry transport and timeouts as every other request; no second HTTP stack to configure.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator

import anyio
import httpx

from extract.errors import AuthenticationFailed
from extract.redaction import describe_request
from extract.responses import json_object, malformed, partner_message, raise_for_status
from extract.retry import IDEMPOTENT_EXTENSION

logger = logging.getLogger("kitsync.extract")

TOKEN_PATH = "/api/v1/auth/token"  # noqa: S105 - a path, not a password
# Used when the token response omits expires_in: short, so a wrong guess costs one extra token request.
_DEFAULT_EXPIRES_IN = 300.0
# A request's sends at most: on a 401 it asks for a new token once itself, and follows a token another caller
# fetched meanwhile (a run's batches share one client, so a token revoked early fails every request then in
# flight: they all resend with the one new token, and one revoked again while they resend follows the next).
_SENDS_PER_REQUEST = 3


class BiomesightAuth(httpx.Auth):
    """Biomesight's client-credentials flow: one cached bearer token, refreshed before expiry and on a 401
    (each request asks for a new token at most once, and follows one another caller fetched; see
    `_SENDS_PER_REQUEST`).

    Under concurrency only one caller refreshes (a threading lock for sync clients, an anyio lock for async
    ones); the others wait and reuse the token it fetched. `clock` is monotonic seconds, injectable for tests.
    """

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token_url = f"{base_url.rstrip('/')}{TOKEN_PATH}"
        self.client_id = client_id
        self._basic = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._token: str | None = None
        self._refresh_at = 0.0
        self._sync_lock = threading.Lock()
        self._async_lock = anyio.Lock()
        # Once the token endpoint refused these credentials, every caller waiting for a token gets that same
        # answer without asking again: the credentials cannot have changed within this client's life.
        self._refused: AuthenticationFailed | None = None

    def __repr__(self) -> str:
        return f"BiomesightAuth(token_url={self.token_url!r}, client_id={self.client_id!r})"

    def _current_token(self) -> str | None:
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        return None

    def _token_request(self, original: httpx.Request) -> httpx.Request:
        if self._refused is not None:
            raise self._refused
        # Carry the caller's timeout: a bare Request would otherwise have none at all.
        extensions = {IDEMPOTENT_EXTENSION: True}
        if "timeout" in original.extensions:
            extensions["timeout"] = original.extensions["timeout"]
        return httpx.Request(
            "POST",
            self.token_url,
            headers={"Authorization": self._basic, "Accept": "application/json"},
            data={"grant_type": "client_credentials"},
            extensions=extensions,
        )

    def _accept_token(self, response: httpx.Response) -> str:
        """Store the token from a token-endpoint response and return it; raise if there is none."""
        if response.status_code in (400, 401, 403):
            self._refused = AuthenticationFailed(
                f"Biomesight refused client id {self.client_id!r} ({response.status_code}): "
                f"{partner_message(response)}",
                endpoint=describe_request(response.request),
                status=response.status_code,
            )
            raise self._refused
        raise_for_status(response)
        payload = json_object(response, required=("access_token",))
        token = payload["access_token"]
        if not isinstance(token, str) or not token:
            raise malformed(response, "access_token is not a non-empty string")
        try:
            expires_in = float(payload.get("expires_in", _DEFAULT_EXPIRES_IN))
        except (TypeError, ValueError):
            raise malformed(response, "expires_in is not a number") from None
        # Refresh `margin` early, but never so early that a short-lived token is refreshed on every request.
        margin = min(self._refresh_margin, expires_in / 2)
        self._token = token
        self._refresh_at = self._clock() + expires_in - margin
        logger.info("fetched a Biomesight token for %r, valid %.0f s", self.client_id, expires_in)
        return token

    def _invalidate(self, rejected: str) -> None:
        # Only drop the token the partner rejected: another caller may already have fetched a newer one.
        if self._token == rejected:
            self._token = None

    @staticmethod
    def _authorize(request: httpx.Request, token: str) -> httpx.Request:
        request.headers["Authorization"] = f"Bearer {token}"
        return request

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._current_token()
        if token is None:
            with self._sync_lock:
                token = self._current_token()
                if token is None:
                    token_response = yield self._token_request(request)
                    token_response.read()
                    token = self._accept_token(token_response)
        fetched = False
        for _ in range(_SENDS_PER_REQUEST - 1):
            response = yield self._authorize(request, token)
            if response.status_code != 401:
                return
            logger.info("%s -> 401; resending with a fresh token", describe_request(request))
            with self._sync_lock:
                self._invalidate(token)
                fresh = self._current_token()
                if fresh is None:
                    if fetched:
                        return  # our own fresh token was refused too: the 401 is the answer
                    token_response = yield self._token_request(request)
                    token_response.read()
                    fresh = self._accept_token(token_response)
                    fetched = True
            token = fresh
        yield self._authorize(request, token)

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = self._current_token()
        if token is None:
            async with self._async_lock:
                token = self._current_token()
                if token is None:
                    token_response = yield self._token_request(request)
                    await token_response.aread()
                    token = self._accept_token(token_response)
        fetched = False
        for _ in range(_SENDS_PER_REQUEST - 1):
            response = yield self._authorize(request, token)
            if response.status_code != 401:
                return
            logger.info("%s -> 401; resending with a fresh token", describe_request(request))
            async with self._async_lock:
                self._invalidate(token)
                fresh = self._current_token()
                if fresh is None:
                    if fetched:
                        return  # our own fresh token was refused too: the 401 is the answer
                    token_response = yield self._token_request(request)
                    await token_response.aread()
                    fresh = self._accept_token(token_response)
                    fetched = True
            token = fresh
        yield self._authorize(request, token)


class GencoveAuth(httpx.Auth):
    """Gencove's `Authorization: Api-Key <key>`; the key never appears in repr or logs."""

    def __init__(self, api_key: str) -> None:
        self._header = f"Api-Key {api_key}"

    def __repr__(self) -> str:
        return "GencoveAuth(api_key=REDACTED)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request
