"""The partner-error families: retriable ones a later run may clear, fatal ones needing a person or new input,
and `PartnerUnusable`: the partner refused our credentials or cannot be reached at all, so the whole run
cannot do its work (no single record is at fault, and every further request would only be refused again).

Every message is built from sanitized parts only (see `extract.redaction`), so an exception can be logged,
shown in a Prefect artifact or stored in a sync-run row without leaking a secret, a token or a presigned URL.
"""

# The exception names are the domain's words (NotFound, RateLimited...); an "Error" suffix would add nothing.
# ruff: noqa: N818

from __future__ import annotations


class PartnerError(Exception):
    """Something a partner API did (or failed to do) that the caller has to decide about.

    `endpoint` is "METHOD sanitized-url"; `status` is the last HTTP status seen, None when no response came.
    """

    def __init__(self, message: str, *, endpoint: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint
        self.status = status

    def __str__(self) -> str:
        return f"{self.endpoint}: {self.message}" if self.endpoint else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r}, status={self.status!r})"


class RetriableError(PartnerError):
    """The partner or the network failed in a way that clears by itself; `attempts` were already made.

    `retry_after` is the partner's last Retry-After hint in seconds, when it gave one (429, 503 maintenance):
    the earliest a later run should try again.
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str = "",
        status: int | None = None,
        attempts: int = 1,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, endpoint=endpoint, status=status)
        self.attempts = attempts
        self.retry_after = retry_after

    def __str__(self) -> str:
        return (
            f"{super().__str__()} (gave up after {self.attempts} attempt{'s' if self.attempts != 1 else ''})"
        )


class RateLimited(RetriableError):
    """429 to the end."""


class ServerError(RetriableError):
    """5xx to the end (including Gencove's 503 maintenance page)."""


class TransportFailure(RetriableError):
    """No usable response at all: timeouts, refused or dropped connections."""


class FatalError(PartnerError):
    """Retrying the same request will not help."""


class NotReady(FatalError):
    """Biomesight's 202 (results still processing) or 203 (PDF not ready): ask again on a later run."""


class NotFound(FatalError):
    """404: the partner does not know this kit, order, sample or project."""


class Forbidden(FatalError):
    """403: it exists but is not ours (or our address is not whitelisted)."""


class Conflict(FatalError):
    """409: e.g. an order with this order_id already exists."""


class Invalid(FatalError):
    """400 or 422: the partner rejected what we sent; `field_errors` holds DRF-style per-field messages."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str = "",
        status: int | None = None,
        field_errors: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message, endpoint=endpoint, status=status)
        self.field_errors: dict[str, list[str]] = field_errors or {}


class Unauthorized(FatalError):
    """401 even after a fresh token (a refused Gencove API key is `CredentialsRefused` instead)."""


class PartnerUnusable(PartnerError):
    """Nothing of this run can be done with this partner: it refuses our credentials, or cannot be reached.

    Not a record's problem, so never quarantined: the run stops at once and fails, naming what to check.
    `partner` ("Biomesight", "Gencove") is filled in by the client that met it; `url` is the partner's host
    root as configured (scheme, host, port), without credentials.
    """

    partner: str = ""
    url: str = ""


class CredentialsRefused(PartnerUnusable, FatalError):
    """The partner says our credentials are wrong (a key it does not know, client credentials it refuses)."""


class AuthenticationFailed(CredentialsRefused):
    """The token endpoint refused our client credentials: a configuration problem, not a transient one."""


class Unreachable(PartnerUnusable, TransportFailure):
    """No connection to the partner could be opened, even after the retries (refused, no route, DNS, TLS)."""


class MalformedResponse(FatalError):
    """A success status whose body is not what the endpoint promises; `excerpt` is short and redacted."""

    def __init__(
        self, message: str, *, endpoint: str = "", status: int | None = None, excerpt: str = ""
    ) -> None:
        super().__init__(message, endpoint=endpoint, status=status)
        self.excerpt = excerpt

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} (body starts: {self.excerpt!r})" if self.excerpt else base


class PaginationLoop(FatalError):
    """The partner's `next` link repeats or goes backwards: following it would never end."""


class IncompleteListing(FatalError):
    """A listing ended (`meta.next` null) but its own `meta.count` says it holds more than was read: the
    pages read are kept, and the run says it could not prove it read everything."""
