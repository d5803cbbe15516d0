"""BiomesightClient against an in-memory partner: endpoints, status codes -> typed errors, payload checks."""

from __future__ import annotations

import base64

import httpx
import pytest

from extract.biomesight import BiomesightClient
from extract.errors import (
    Conflict,
    FatalError,
    Forbidden,
    Invalid,
    MalformedResponse,
    NotFound,
    NotReady,
    PartnerError,
    Unauthorized,
)
from tests.extract.fakes import (
    BASE_URL,
    CLIENT_ID,
    CLIENT_SECRET,
    NO_WAIT,
    FakeBiomesight,
    json_body,
    respond,
)

KIT = "BS1-ABC12"
RESULTS = {
    "scores": {"gut_health": 89.25, "Diversity": 88.0},
    "recommendations": {"food": {"enjoy": ["green tea"]}},
    "general": {"kit_id": KIT, "sample_id": 380},
}


def make_client(fake: FakeBiomesight, **kwargs: object) -> BiomesightClient:
    return BiomesightClient(
        BASE_URL,
        CLIENT_ID,
        CLIENT_SECRET,
        transport=httpx.MockTransport(fake.handle),
        backoff=NO_WAIT,
        sleep=lambda _seconds: None,
        **kwargs,  # type: ignore[arg-type]
    )


def test_every_endpoint_returns_the_partner_payload(fake_biomesight: FakeBiomesight) -> None:
    csv = b"taxonomy,abundance\nk__Bacteria; g__Faecalibacterium,0.12\n"
    pdf = b"%PDF-1.4 fake report"
    created = {"status": "created", "sale_id": 4821, "external_order_id": "ORD-1"}
    kit_status = {"kit_id": KIT, "status": "Sample Received", "date": "2025-07-10T14:22:00Z"}
    order_status = {"order_id": "ORD-1", "status": "Delivered", "date": "2025-06-20T09:15:00Z"}
    fake_biomesight.route("/api/v1/order", 201, created)
    fake_biomesight.route("/api/v1/register_kit", 200, {"status": "Success"})
    fake_biomesight.route(f"/api/v1/status/kit/{KIT}", 200, kit_status)
    fake_biomesight.route("/api/v1/status/order/ORD-1", 200, order_status)

    def results(request: httpx.Request) -> httpx.Response:
        fmt = request.url.params.get("format", "json")
        if fmt == "csv":
            return respond(200, {"kit_id": KIT, "csv": base64.b64encode(csv).decode()})
        if fmt == "pdf":
            return respond(200, {"kit_id": KIT, "pdf": base64.b64encode(pdf).decode()})
        return respond(200, RESULTS)

    fake_biomesight.routes[f"/api/v1/results/{KIT}"] = results
    order = {"order_id": "ORD-1", "user": {"id": "CUST-1"}, "items": [{"product_sku": "SKU"}]}
    registration = {"order_id": "ORD-1", "kit_id": KIT, "sample_date": "2025-07-01"}

    with make_client(fake_biomesight) as client:
        assert client.create_order(order) == created
        assert client.register_kit(registration) == {"status": "Success"}
        assert client.get_results(KIT) == RESULTS
        assert client.get_taxonomy_csv(KIT) == csv
        assert client.get_pdf(KIT) == pdf
        assert client.get_kit_status(KIT) == kit_status
        assert client.get_order_status("ORD-1") == order_status

    posts = [request for request in fake_biomesight.api_requests if request.method == "POST"]
    assert [json_body(request) for request in posts] == [order, registration]
    assert {request.url.params.get("format") for request in fake_biomesight.api_requests} >= {
        "json",
        "csv",
        "pdf",
    }


def test_ids_are_quoted_into_one_path_segment(fake_biomesight: FakeBiomesight) -> None:
    odd_kit = "BS1/AB C?x"
    fake_biomesight.route(
        "/api/v1/status/kit/BS1%2FAB%20C%3Fx", 200, {"kit_id": odd_kit, "status": "Lab Processing"}
    )
    with make_client(fake_biomesight) as client:
        assert client.get_kit_status(odd_kit)["kit_id"] == odd_kit


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (202, NotReady),
        (203, NotReady),
        (400, Invalid),
        (422, Invalid),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
    ],
)
def test_status_codes_become_typed_fatal_errors(
    fake_biomesight: FakeBiomesight, status: int, error_type: type[PartnerError]
) -> None:
    message = f"partner says {status}"
    fake_biomesight.route(f"/api/v1/results/{KIT}", status, {"error": message})
    with make_client(fake_biomesight) as client, pytest.raises(error_type) as caught:
        client.get_results(KIT)
    error = caught.value
    assert isinstance(error, FatalError)
    assert error.status == status
    assert message in str(error)
    assert f"/api/v1/results/{KIT}" in error.endpoint
    # Fatal errors are not retried: one token request, one API request.
    assert len(fake_biomesight.api_requests) == 1


def test_unexpected_redirect_is_fatal_not_followed(fake_biomesight: FakeBiomesight) -> None:
    fake_biomesight.route(f"/api/v1/results/{KIT}", 302, "", headers={"Location": "https://elsewhere.test/"})
    with make_client(fake_biomesight) as client, pytest.raises(FatalError, match="302"):
        client.get_results(KIT)


def test_invalid_order_carries_the_partner_message(fake_biomesight: FakeBiomesight) -> None:
    fake_biomesight.route("/api/v1/order", 400, {"error": "Missing required field: destination_address"})
    with make_client(fake_biomesight) as client, pytest.raises(Invalid) as caught:
        client.create_order({"order_id": "ORD-2"})
    assert caught.value.message.endswith("Missing required field: destination_address")


def test_a_rejected_token_twice_is_unauthorized(fake_biomesight: FakeBiomesight) -> None:
    fake_biomesight.route(f"/api/v1/status/kit/{KIT}", 401, {"error": "token revoked"})
    with make_client(fake_biomesight) as client, pytest.raises(Unauthorized):
        client.get_kit_status(KIT)
    assert len(fake_biomesight.token_requests) == 2


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"scores": {"gut_health": 89.2', "not valid JSON"),
        (b"<html>502 Bad Gateway</html>", "not valid JSON"),
        (b'["scores"]', "expected a JSON object"),
        (b'{"recommendations": {}}', "scores"),
    ],
)
def test_a_success_with_the_wrong_body_is_malformed(
    fake_biomesight: FakeBiomesight, body: bytes, problem: str
) -> None:
    fake_biomesight.route(f"/api/v1/results/{KIT}", 200, body)
    with make_client(fake_biomesight) as client, pytest.raises(MalformedResponse) as caught:
        client.get_results(KIT)
    assert problem in str(caught.value)
    assert caught.value.excerpt == body.decode()[: len(caught.value.excerpt)]
    assert f"results/{KIT}" in caught.value.endpoint


def test_invalid_base64_is_malformed(fake_biomesight: FakeBiomesight) -> None:
    fake_biomesight.route(f"/api/v1/results/{KIT}", 200, {"kit_id": KIT, "csv": "dGF4b25v!!bXk="})
    with make_client(fake_biomesight) as client, pytest.raises(MalformedResponse, match="not valid base64"):
        client.get_taxonomy_csv(KIT)


def test_base64_with_line_breaks_is_accepted(fake_biomesight: FakeBiomesight) -> None:
    csv = b"taxonomy,abundance\n" * 20
    wrapped = base64.encodebytes(csv).decode()  # MIME style: a newline every 76 characters
    assert "\n" in wrapped.strip()
    fake_biomesight.route(f"/api/v1/results/{KIT}", 200, {"kit_id": KIT, "csv": wrapped})
    with make_client(fake_biomesight) as client:
        assert client.get_taxonomy_csv(KIT) == csv


def test_pdf_not_ready_says_which_not_ready(fake_biomesight: FakeBiomesight) -> None:
    fake_biomesight.route(f"/api/v1/results/{KIT}", 203, {"error": "PDF report not ready"})
    with make_client(fake_biomesight) as client, pytest.raises(NotReady) as caught:
        client.get_pdf(KIT)
    assert caught.value.status == 203
    assert "PDF report not ready" in str(caught.value)


def test_unknown_results_format_is_refused_before_any_request(fake_biomesight: FakeBiomesight) -> None:
    with make_client(fake_biomesight) as client, pytest.raises(ValueError, match="format"):
        client.get_results(KIT, format="xml")  # type: ignore[arg-type]
    assert fake_biomesight.api_requests == []
