"""The retry transport: what is resent, how long it waits, and the typed error when it gives up."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from extract.errors import RateLimited, RetriableError, ServerError, TransportFailure, Unreachable
from extract.gencove import GencoveClient
from extract.retry import Backoff, give_up_seconds, parse_retry_after
from tests.extract.fakes import API_KEY, GENCOVE_URL, NO_WAIT, respond

SAMPLE = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
SAMPLE_PATH = f"/api/v2/samples/{SAMPLE}"
NOW = datetime(2026, 1, 9, 11, 49, 49, tzinfo=UTC)

Outcome = httpx.Response | Exception


class Script:
    """A transport handler that plays back outcomes in order and counts the requests it saw."""

    def __init__(self, outcomes: list[Outcome]) -> None:
        self._outcomes: Iterator[Outcome] = iter(outcomes)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        outcome = next(self._outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def make_client(script: Script, sleeps: list[float], **kwargs: object) -> GencoveClient:
    options: dict[str, object] = {"backoff": NO_WAIT, "max_retries": 5, "now": lambda: NOW}
    options.update(kwargs)
    return GencoveClient(
        GENCOVE_URL,
        API_KEY,
        transport=httpx.MockTransport(script),
        sleep=sleeps.append,
        **options,  # type: ignore[arg-type]
    )


def ok() -> httpx.Response:
    return respond(200, {"id": SAMPLE, "last_status": {"status": "running"}})


def test_429_waits_exactly_what_retry_after_asks(sleeps: list[float]) -> None:
    script = Script(
        [
            respond(429, {"detail": "slow down"}, {"Retry-After": "7"}),
            respond(429, {}, {"Retry-After": "2"}),
            ok(),
        ]
    )
    with make_client(script, sleeps) as client:
        assert client.get_sample(SAMPLE)["id"] == SAMPLE
    assert sleeps == [7.0, 2.0]
    assert len(script.requests) == 3


def test_retry_after_as_an_http_date(sleeps: list[float]) -> None:
    later = NOW + timedelta(seconds=42)
    script = Script(
        [respond(503, {"maintenance": True}, {"Retry-After": format_datetime(later, usegmt=True)}), ok()]
    )
    with make_client(script, sleeps) as client:
        client.get_sample(SAMPLE)
    assert sleeps == [42.0]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried_with_jittered_backoff(sleeps: list[float], status: int) -> None:
    backoff = Backoff(base=0.25, cap=1.0, multiplier=2.0)
    script = Script([respond(status, {"detail": "oops"}) for _ in range(4)] + [ok()])
    with make_client(script, sleeps, backoff=backoff, rng=random.Random(7)) as client:
        client.get_sample(SAMPLE)
    assert len(sleeps) == 4
    for retry, delay in enumerate(sleeps):
        assert 0.0 <= delay <= min(backoff.cap, backoff.base * backoff.multiplier**retry)


def test_full_jitter_draws_from_the_whole_capped_window() -> None:
    backoff = Backoff(base=1.0, cap=8.0, multiplier=2.0)
    rng = random.Random(1)
    delays = [backoff.delay(10, rng) for _ in range(2000)]
    assert max(delays) <= backoff.cap
    assert min(delays) < backoff.cap * 0.05  # full jitter reaches down to ~0
    assert max(delays) > backoff.cap * 0.95


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ConnectError("connection refused"),
        httpx.ReadError("connection reset by peer"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_timeouts_and_dropped_connections_are_retried(sleeps: list[float], failure: Exception) -> None:
    script = Script([failure, failure, ok()])
    with make_client(script, sleeps) as client:
        assert client.get_sample(SAMPLE)["id"] == SAMPLE
    assert len(script.requests) == 3
    assert len(sleeps) == 2


def test_gives_up_on_5xx_with_server_error_carrying_attempts(sleeps: list[float]) -> None:
    max_retries = 3
    maintenance = {
        "maintenance": True,
        "maintenance_eta": "2h",
        "maintenance_message": "Upgrading the database",
    }
    script = Script([respond(503, maintenance) for _ in range(max_retries + 1)])
    with make_client(script, sleeps, max_retries=max_retries) as client, pytest.raises(ServerError) as caught:
        client.get_sample(SAMPLE)
    error = caught.value
    assert isinstance(error, RetriableError)
    assert error.attempts == max_retries + 1 == len(script.requests)
    assert error.status == 503
    assert "Upgrading the database" in str(error)
    assert len(sleeps) == max_retries


def test_gives_up_on_429_with_rate_limited_and_the_last_hint(sleeps: list[float]) -> None:
    script = Script(
        [respond(429, {"detail": "Request was throttled."}, {"Retry-After": "3"}) for _ in range(3)]
    )
    with make_client(script, sleeps, max_retries=2) as client, pytest.raises(RateLimited) as caught:
        client.get_sample(SAMPLE)
    assert caught.value.attempts == 3
    assert caught.value.retry_after == 3.0
    assert sleeps == [3.0, 3.0]


def test_a_retry_after_beyond_the_bound_stops_at_once(sleeps: list[float]) -> None:
    script = Script([respond(429, {}, {"Retry-After": "3600"})])
    backoff = Backoff(base=0.0, cap=0.0, max_retry_after=60.0)
    with make_client(script, sleeps, backoff=backoff) as client, pytest.raises(RateLimited) as caught:
        client.get_sample(SAMPLE)
    assert caught.value.retry_after == 3600.0
    assert caught.value.attempts == 1
    assert sleeps == []


def test_gives_up_on_transport_errors_with_transport_failure(sleeps: list[float]) -> None:
    script = Script([httpx.ConnectError("connection refused") for _ in range(3)])
    with make_client(script, sleeps, max_retries=2) as client, pytest.raises(TransportFailure) as caught:
        client.get_sample(SAMPLE)
    assert caught.value.attempts == 3
    assert caught.value.status is None
    assert "connection refused" in str(caught.value)
    assert "3 attempts" in str(caught.value)


def test_max_retries_zero_means_one_attempt(sleeps: list[float]) -> None:
    script = Script([respond(502, {})])
    with make_client(script, sleeps, max_retries=0) as client, pytest.raises(ServerError) as caught:
        client.get_sample(SAMPLE)
    assert caught.value.attempts == 1
    assert sleeps == []


@pytest.mark.parametrize(
    "ambiguous",
    [respond(500, {"detail": "boom"}), respond(502, {}), httpx.ReadTimeout("read timed out")],
    ids=["500", "502", "read-timeout"],
)
def test_a_kit_order_is_not_resent_when_gencove_may_have_acted(
    sleeps: list[float], ambiguous: Outcome
) -> None:
    # A second POST /sample-kit/ would ship a second kit: no idempotency key protects it.
    script = Script([ambiguous, respond(201, {"sample_id": SAMPLE})])
    with make_client(script, sleeps) as client, pytest.raises(RetriableError) as caught:
        client.create_sample_kit({"project_id": "p"})
    assert len(script.requests) == 1
    assert caught.value.attempts == 1
    assert sleeps == []


@pytest.mark.parametrize(
    "unprocessed",
    [
        respond(429, {}, {"Retry-After": "1"}),
        respond(503, {"maintenance": True}),
        httpx.ConnectError("refused"),
    ],
    ids=["429", "503", "connect-error"],
)
def test_a_kit_order_is_resent_when_gencove_surely_did_not_act(
    sleeps: list[float], unprocessed: Outcome
) -> None:
    script = Script([unprocessed, respond(201, {"sample_id": SAMPLE})])
    with make_client(script, sleeps) as client:
        assert client.create_sample_kit({"project_id": "p"}) == {"sample_id": SAMPLE}
    assert len(script.requests) == 2


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        (format_datetime(NOW + timedelta(minutes=2), usegmt=True), 120.0),
        (format_datetime(NOW - timedelta(minutes=2), usegmt=True), 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected


def test_a_long_maintenance_window_ends_retries_and_reports_the_hint(sleeps: list[float]) -> None:
    window = 7200
    maintenance = {"maintenance": True, "maintenance_message": "Scheduled maintenance"}
    script = Script([respond(503, maintenance, {"Retry-After": str(window)})])
    with make_client(script, sleeps) as client, pytest.raises(ServerError) as caught:
        client.get_sample(SAMPLE)
    assert caught.value.retry_after == float(window)
    assert caught.value.attempts == 1
    assert sleeps == []


@pytest.mark.parametrize(
    ("failure", "unreachable"),
    [
        (httpx.ConnectError("connection refused"), True),
        (httpx.ConnectTimeout("connect timed out"), True),
        (httpx.ReadTimeout("read timed out"), False),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_a_partner_never_connected_to_after_the_retries_is_unreachable(
    sleeps: list[float], failure: Exception, unreachable: bool
) -> None:
    """Only a connection that could never be opened makes the partner unusable; a dropped or slow one stays
    a request's failure (retried by the next run)."""
    script = Script([failure] * 3)
    with make_client(script, sleeps, max_retries=2) as client:
        with pytest.raises(TransportFailure) as caught:
            client.get_sample(SAMPLE)
        assert isinstance(caught.value, Unreachable) is unreachable
        if unreachable:
            assert (caught.value.partner, caught.value.url) == ("Gencove", GENCOVE_URL)
            with pytest.raises(Unreachable):  # the client now refuses, unsent, everything else
                client.get_sample(SAMPLE)
    assert len(script.requests) == 3


def test_the_give_up_budget_adds_connect_timeouts_and_the_longest_backoffs() -> None:
    backoff = Backoff(base=0.5, cap=3.0)
    # 3 attempts wait 2 s to connect each; the 2 retries wait at most 0.5 then 1.0 s (under the 3 s cap).
    assert give_up_seconds(2, backoff, 2.0) == pytest.approx(3 * 2.0 + 0.5 + 1.0)
    # A cap bounds the later retries: 0.5, 1, 2, 3, 3.
    assert give_up_seconds(5, backoff, 1.0) == pytest.approx(6 * 1.0 + 0.5 + 1 + 2 + 3 + 3)
