"""No secret, token or presigned signature may reach an exception or a log line."""

from __future__ import annotations

import logging

import httpx
import pytest

from extract.biomesight import BiomesightClient
from extract.errors import AuthenticationFailed, MalformedResponse, PartnerError, TransportFailure
from extract.gencove import GencoveClient
from extract.http import Call
from extract.redaction import REDACTED, excerpt, redact_headers, redact_text, redact_url
from tests.extract.fakes import (
    API_KEY,
    BASE_URL,
    CLIENT_ID,
    CLIENT_SECRET,
    GENCOVE_URL,
    NO_WAIT,
    FakeBiomesight,
    FakeGencove,
)

SIGNATURE = "d41d8cd98f00b204e9800998ecf8427eSIGNATURE"
PRESIGNED = (
    "https://bucket.s3.amazonaws.com/samples/abc/impute.vcf.gz?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    f"&X-Amz-Credential=AKIAEXAMPLE%2F20260101%2Fus-east-1&X-Amz-Signature={SIGNATURE}&X-Amz-Expires=3600"
    "&response-content-disposition=attachment"
)


def test_presigned_url_keeps_host_and_path_but_not_the_signature() -> None:
    clean = redact_url(PRESIGNED)
    assert SIGNATURE not in clean
    assert "AKIAEXAMPLE" not in clean
    assert clean.startswith("https://bucket.s3.amazonaws.com/samples/abc/impute.vcf.gz?")
    assert "response-content-disposition=attachment" in clean
    assert f"X-Amz-Signature={REDACTED}" in clean


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("https://api.test/x?access_token=tok123&page=2", "tok123"),
        ("https://api.test/x?sig=abc123&se=2026", "abc123"),
        ("https://user:hunter2@api.test/x", "hunter2"),
        ("https://api.test/x?api_key=k-999", "k-999"),
    ],
)
def test_sensitive_query_values_and_userinfo_are_dropped(url: str, secret: str) -> None:
    assert secret not in redact_url(url)
    assert redact_url(url).startswith("https://")


def test_plain_urls_are_unchanged() -> None:
    url = "https://api.gencove.com/api/v2/project-samples/p1?limit=200&offset=400&sort_by=modified"
    assert redact_url(url) == url


def test_authenticating_headers_are_redacted() -> None:
    headers = {
        "Authorization": "Bearer tok-1",
        "api-key": "k",
        "Cookie": "session=s",
        "Gencove-Signature": "t=1,v1=ab",
        "Accept": "application/json",
    }
    clean = redact_headers(httpx.Headers(headers))
    assert clean == {
        "authorization": REDACTED,
        "api-key": REDACTED,
        "cookie": REDACTED,
        "gencove-signature": REDACTED,
        "accept": "application/json",
    }


def test_text_with_tokens_and_urls_is_scrubbed() -> None:
    text = (
        f'{{"access_token": "eyJabc.def", "client_secret": "shh", "url": "{PRESIGNED}"}} '
        "Bearer eyJxyz Api-Key k1"
    )
    clean = redact_text(text)
    for secret in ("eyJabc.def", "shh", SIGNATURE, "eyJxyz", "k1"):
        assert secret not in clean


def test_excerpt_is_short_and_single_line() -> None:
    body = ("line one\n" * 100).encode()
    short = excerpt(body, limit=40)
    assert len(short) <= 40
    assert "\n" not in short


def test_a_malformed_body_full_of_secrets_is_excerpted_safely(fake_gencove: FakeGencove) -> None:
    sample = "s1"
    body = f'{{"id": "{sample}", "files": [{{"download_url": "{PRESIGNED}"'  # truncated JSON
    fake_gencove.route(f"/api/v2/samples/{sample}", 200, body)
    client = GencoveClient(GENCOVE_URL, API_KEY, transport=httpx.MockTransport(fake_gencove.handle))
    with client, pytest.raises(MalformedResponse) as caught:
        client.get_sample(sample)
    text = f"{caught.value} {caught.value!r} {caught.value.excerpt}"
    assert SIGNATURE not in text
    assert API_KEY not in text
    assert len(caught.value.excerpt) <= 160


def test_a_transport_failure_does_not_echo_a_presigned_url() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url}")

    client = GencoveClient(
        GENCOVE_URL, API_KEY, transport=httpx.MockTransport(handler), max_retries=1, backoff=NO_WAIT
    )
    with client, pytest.raises(TransportFailure) as caught:
        client._run(Call("GET", PRESIGNED, lambda response: response))  # a caller-supplied presigned URL
    text = f"{caught.value} {caught.value!r} {caught.value.endpoint}"
    assert SIGNATURE not in text
    assert "bucket.s3.amazonaws.com" in text


def test_nothing_secret_reaches_logs_or_errors(
    caplog: pytest.LogCaptureFixture, fake_biomesight: FakeBiomesight, fake_gencove: FakeGencove
) -> None:
    """Drive tokens, 401 refreshes, retries and errors with DEBUG logging on, then look for every secret."""
    kit = "BS1-LOG01"
    fake_biomesight.route(f"/api/v1/status/kit/{kit}", 200, {"kit_id": kit, "status": "Lab Processing"})
    fake_biomesight.route(f"/api/v1/results/{kit}", 500, {"error": f"internal: see {PRESIGNED}"})
    fake_gencove.route("/api/v2/samples/s1", 429, {"detail": "throttled"}, headers={"Retry-After": "0"})
    errors: list[PartnerError] = []
    with caplog.at_level(logging.DEBUG, logger="kitsync.extract"):
        with BiomesightClient(
            BASE_URL,
            CLIENT_ID,
            CLIENT_SECRET,
            transport=httpx.MockTransport(fake_biomesight.handle),
            backoff=NO_WAIT,
            max_retries=2,
            sleep=lambda _s: None,
        ) as biomesight:
            biomesight.get_kit_status(kit)
            fake_biomesight.revoked.add(fake_biomesight.issued[0])
            biomesight.get_kit_status(kit)
            try:
                biomesight.get_results(kit)
            except PartnerError as error:
                errors.append(error)
        with GencoveClient(
            GENCOVE_URL,
            API_KEY,
            transport=httpx.MockTransport(fake_gencove.handle),
            backoff=NO_WAIT,
            max_retries=1,
            sleep=lambda _s: None,
        ) as gencove:
            try:
                gencove.get_sample("s1")
            except PartnerError as error:
                errors.append(error)
        fake_biomesight.token_status = 401
        with BiomesightClient(
            BASE_URL, "other-client", CLIENT_SECRET, transport=httpx.MockTransport(fake_biomesight.handle)
        ) as rejected:
            with pytest.raises(AuthenticationFailed) as caught:
                rejected.get_kit_status(kit)
            errors.append(caught.value)

    assert len(errors) == 3
    assert caplog.records, "the clients should log their requests at DEBUG"
    haystack = caplog.text + " ".join(f"{error} {error!r}" for error in errors)
    secrets = [CLIENT_SECRET, API_KEY, SIGNATURE, *fake_biomesight.issued]
    assert fake_biomesight.issued, "tokens were issued, so the check below is meaningful"
    for secret in secrets:
        assert secret not in haystack
