"""Biomesight's OAuth2 bearer tokens: opaque, bound to one client, expiring by virtual AND wall-clock time.

Two clocks because two kinds of test need them: advancing the virtual clock by days must expire every token
(as real time would have), while a short configured lifetime (`token_ttl`) must expire tokens during a
real-time run, so a client's refresh-before-expiry and refresh-on-401 paths run without touching the clock.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

DOCUMENTED_LIFETIME_SECONDS = 3600


@dataclass(frozen=True)
class IssuedToken:
    """What the sandbox remembers about one access token."""

    account: str
    issued_virtual: datetime
    issued_wall: float
    lifetime_seconds: float

    def expired(self, virtual_now: datetime) -> bool:
        """Expired once either clock has run past the lifetime."""
        lifetime = timedelta(seconds=self.lifetime_seconds)
        return (
            virtual_now - self.issued_virtual >= lifetime
            or time.monotonic() - self.issued_wall >= self.lifetime_seconds
        )


class TokenStore:
    """Issues and checks bearer tokens; `ttl` (seconds) shortens the documented one-hour lifetime."""

    def __init__(self, ttl: float | None = None) -> None:
        self.ttl = ttl
        self._tokens: dict[str, IssuedToken] = {}
        self._lock = threading.Lock()

    @property
    def lifetime_seconds(self) -> float:
        """The lifetime newly issued tokens get (and `expires_in` reports, rounded down)."""
        return float(self.ttl) if self.ttl is not None else float(DOCUMENTED_LIFETIME_SECONDS)

    def issue(self, account: str, virtual_now: datetime) -> str:
        """A new opaque token for `account`; earlier tokens stay valid until they expire, as with OAuth2."""
        token = secrets.token_urlsafe(32)
        issued = IssuedToken(account, virtual_now, time.monotonic(), self.lifetime_seconds)
        with self._lock:
            self._tokens[token] = issued
        return token

    def lookup(self, token: str) -> IssuedToken | None:
        """The issued token, expired or not, or None for a token the sandbox never issued."""
        with self._lock:
            return self._tokens.get(token)

    def expire(self, token: str) -> None:
        """Expire a token now, for good, as a partner that revokes early would (the `expire_token` fault)."""
        with self._lock:
            issued = self._tokens.get(token)
            if issued is not None:
                self._tokens[token] = replace(issued, lifetime_seconds=0.0)
