"""GencoveClient and its paginator against an in-memory partner: listings, loops refused, sample endpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from extract.errors import CredentialsRefused, Invalid, MalformedResponse, NotFound, PaginationLoop
from extract.gencove import AsyncGencoveClient, GencoveClient, iso_utc
from extract.pagination import OffsetPaginator
from tests.extract.fakes import API_KEY, GENCOVE_URL, NO_WAIT, FakeGencove, json_body, respond

PROJECT = "6f1c2a3b-4d5e-4f60-8a71-b2c3d4e5f601"
SAMPLE = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
LISTING = f"/api/v2/project-samples/{PROJECT}"


def sample_item(number: int) -> dict[str, object]:
    return {"id": f"sample-{number:05d}", "client_id": f"cust_{number}", "last_status": {"status": "running"}}


def serve_listing(fake: FakeGencove, total: int) -> None:
    """A project listing that pages like Gencove: limit/offset, absolute `next` links, null at the end."""

    def listing(request: httpx.Request) -> httpx.Response:
        limit = int(request.url.params["limit"])
        offset = int(request.url.params["offset"])
        end = min(offset + limit, total)
        following = str(request.url.copy_set_param("offset", end)) if end < total else None
        previous = str(request.url.copy_set_param("offset", max(0, offset - limit))) if offset else None
        page = {
            "meta": {"count": total, "next": following, "previous": previous},
            "results": [sample_item(n) for n in range(offset, end)],
        }
        return respond(200, page)

    fake.routes[LISTING] = listing


def make_client(fake: FakeGencove) -> GencoveClient:
    return GencoveClient(
        GENCOVE_URL,
        API_KEY,
        transport=httpx.MockTransport(fake.handle),
        backoff=NO_WAIT,
        sleep=lambda _s: None,
    )


@pytest.mark.parametrize(("total", "page_size"), [(450, 200), (400, 200), (0, 200), (7, 3), (1, 1)])
def test_listing_follows_next_until_null(fake_gencove: FakeGencove, total: int, page_size: int) -> None:
    serve_listing(fake_gencove, total)
    with make_client(fake_gencove) as client:
        pages = list(client.iter_project_sample_pages(PROJECT, page_size=page_size))
    expected_pages = max(1, -(-total // page_size))
    assert len(pages) == expected_pages == len(fake_gencove.requests)
    assert [item["id"] for page in pages for item in page] == [sample_item(n)["id"] for n in range(total)]
    assert all(len(page) <= page_size for page in pages)


def test_listing_sends_the_incremental_filters(fake_gencove: FakeGencove) -> None:
    serve_listing(fake_gencove, 5)
    since = datetime(2025, 10, 31, 14, 34, 56, tzinfo=timezone(timedelta(hours=2)))
    with make_client(fake_gencove) as client:
        items = list(client.iter_project_samples(PROJECT, modified_after=since, status="succeeded"))
    assert len(items) == 5
    params = fake_gencove.requests[0].url.params
    assert params["modified_after"] == "2025-10-31T12:34:56Z"
    assert params["status"] == "succeeded"
    assert (params["sort_by"], params["sort_order"]) == ("modified", "asc")
    assert (params["limit"], params["offset"]) == ("200", "0")


def test_a_naive_modified_after_is_refused(fake_gencove: FakeGencove) -> None:
    with make_client(fake_gencove) as client, pytest.raises(ValueError, match="timezone-aware"):
        next(client.iter_project_samples(PROJECT, modified_after=datetime(2025, 1, 1)))  # noqa: DTZ001
    assert fake_gencove.requests == []


def test_page_size_above_the_maximum_is_refused() -> None:
    with pytest.raises(ValueError, match="page_size"):
        OffsetPaginator(LISTING, page_size=201)


def test_pages_are_fetched_lazily(fake_gencove: FakeGencove) -> None:
    serve_listing(fake_gencove, 1000)
    with make_client(fake_gencove) as client:
        pages = client.iter_project_sample_pages(PROJECT)
        first = next(pages)
        assert len(first) == 200
        assert len(fake_gencove.requests) == 1
        pages.close()


def loop_listing(fake: FakeGencove, next_links: list[str | None]) -> None:
    """Pages of one item each whose `next` links are given by the test."""
    links = iter(next_links)

    def listing(_request: httpx.Request) -> httpx.Response:
        return respond(200, {"meta": {"count": 99, "next": next(links)}, "results": [sample_item(0)]})

    fake.routes[LISTING] = listing


@pytest.mark.parametrize(
    ("links", "error_type", "message"),
    [
        (
            [f"{GENCOVE_URL}{LISTING}?limit=1&offset=1", f"{GENCOVE_URL}{LISTING}?limit=1&offset=1"],
            PaginationLoop,
            "repeats",
        ),
        ([f"{GENCOVE_URL}{LISTING}?limit=1&offset=0"], PaginationLoop, "does not advance"),
        (
            [f"{GENCOVE_URL}{LISTING}?limit=1&offset=5", f"{GENCOVE_URL}{LISTING}?limit=1&offset=3"],
            PaginationLoop,
            "advance",
        ),
        ([f"https://evil.test{LISTING}?limit=1&offset=1"], MalformedResponse, "another host"),
        ([42], MalformedResponse, "meta.next"),  # type: ignore[list-item]
    ],
    ids=["repeated-next", "next-is-self", "offset-goes-back", "foreign-host", "not-a-url"],
)
def test_a_next_link_that_would_loop_or_leak_is_refused(
    fake_gencove: FakeGencove, links: list[str | None], error_type: type[Exception], message: str
) -> None:
    loop_listing(fake_gencove, links)
    with make_client(fake_gencove) as client, pytest.raises(error_type, match=message):
        list(client.iter_project_samples(PROJECT, page_size=1))
    assert len(fake_gencove.requests) == len(links)


def test_an_empty_page_that_still_links_onward_is_a_loop(fake_gencove: FakeGencove) -> None:
    fake_gencove.route(
        LISTING, 200, {"meta": {"next": f"{GENCOVE_URL}{LISTING}?limit=200&offset=200"}, "results": []}
    )
    with make_client(fake_gencove) as client, pytest.raises(PaginationLoop, match="empty page"):
        list(client.iter_project_samples(PROJECT))


@pytest.mark.parametrize(
    "page", [{"results": []}, {"meta": {"next": None}}, {"meta": {}, "results": []}, "oops"]
)
def test_a_page_without_meta_next_or_results_is_malformed(fake_gencove: FakeGencove, page: object) -> None:
    fake_gencove.route(LISTING, 200, page)
    with make_client(fake_gencove) as client, pytest.raises(MalformedResponse):
        list(client.iter_project_samples(PROJECT))


def test_sample_endpoints(fake_gencove: FakeGencove) -> None:
    sample = {**sample_item(1), "id": SAMPLE, "project": PROJECT, "files": []}
    qc = [{"quality_control_type": {"key": "bases_total"}, "quality_control": {"status": "succeeded"}}]
    ancestry = {"ancestry": {"value": {"EUR": 0.8, "AFR": 0.2}}, "metadata": {"value": {}}}
    statuses = [
        {"status": "kit_ordered", "created": "2025-10-01T00:00:00Z"},
        {"status": "running", "created": "..."},
    ]
    traits = [{"trait": {"key": f"trait-{n}"}, "trait_score": {"value": n}} for n in range(3)]
    fake_gencove.route(f"/api/v2/samples/{SAMPLE}", 200, sample)
    fake_gencove.route(f"/api/v2/sample-metadata/{SAMPLE}", 200, {"metadata": {"customer_id": "cust_1"}})
    fake_gencove.route(f"/api/v2/sample-quality-controls/{SAMPLE}", 200, qc)  # the bare-list form
    fake_gencove.route(f"/api/v2/sample-ancestry/{SAMPLE}", 200, ancestry)
    fake_gencove.route(
        f"/api/v2/sample-statuses/{SAMPLE}", 200, {"meta": {"next": None}, "results": statuses}
    )
    fake_gencove.route(
        f"/api/v2/sample-trait-scores/{SAMPLE}", 200, {"meta": {"next": None}, "results": traits}
    )
    fake_gencove.route("/api/v2/sample-kit/", 201, {"sample_id": SAMPLE})
    order = {
        "project_id": PROJECT,
        "recipient_email": "jane@example.com",
        "metadata": {"customer_id": "cust_1"},
    }

    with make_client(fake_gencove) as client:
        assert client.create_sample_kit(order) == {"sample_id": SAMPLE}
        assert client.get_sample(SAMPLE) == sample
        assert client.get_sample_metadata(SAMPLE) == {"metadata": {"customer_id": "cust_1"}}
        assert client.get_quality_controls(SAMPLE) == qc
        assert client.get_ancestry(SAMPLE) == ancestry
        assert list(client.iter_sample_statuses(SAMPLE)) == statuses
        assert list(client.iter_trait_scores(SAMPLE)) == traits
    kit_request = next(request for request in fake_gencove.requests if request.method == "POST")
    assert kit_request.url.path == "/api/v2/sample-kit/"
    assert json_body(kit_request) == order


def test_paged_quality_controls_are_joined(fake_gencove: FakeGencove) -> None:
    path = f"/api/v2/sample-quality-controls/{SAMPLE}"

    def paged(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params.get("offset", "0"))
        following = f"{GENCOVE_URL}{path}?limit=200&offset=200" if offset == 0 else None
        return respond(200, {"meta": {"next": following}, "results": [{"offset": offset}]})

    fake_gencove.routes[path] = paged
    with make_client(fake_gencove) as client:
        assert client.get_quality_controls(SAMPLE) == [{"offset": 0}, {"offset": 200}]


def test_drf_errors_become_typed_errors(fake_gencove: FakeGencove) -> None:
    fake_gencove.route(
        "/api/v2/sample-kit/",
        400,
        {"recipient_email": ["Enter a valid email address."], "recipient_address_country_code": ["Invalid."]},
    )
    fake_gencove.route(LISTING, 400, ["Project does not exist or you do not have privileges to access it."])
    with make_client(fake_gencove) as client:
        with pytest.raises(Invalid) as caught:
            client.create_sample_kit({"project_id": PROJECT})
        assert caught.value.field_errors == {
            "recipient_email": ["Enter a valid email address."],
            "recipient_address_country_code": ["Invalid."],
        }
        assert "recipient_email: Enter a valid email address." in str(caught.value)
        with pytest.raises(Invalid, match="Project does not exist"):
            list(client.iter_project_samples(PROJECT))
        with pytest.raises(NotFound, match=r"Not found\."):
            client.get_sample("missing")


def test_a_wrong_api_key_is_refused_credentials_once_and_for_all(fake_gencove: FakeGencove) -> None:
    """Gencove authenticates by the key alone: its 401 refuses the whole client, so nothing more is sent."""
    transport = httpx.MockTransport(fake_gencove.handle)
    with GencoveClient(GENCOVE_URL, "wrong-key", transport=transport) as client:
        with pytest.raises(CredentialsRefused, match="Invalid API key") as caught:
            client.get_sample(SAMPLE)
        assert (caught.value.partner, caught.value.url) == ("Gencove", GENCOVE_URL.rstrip("/"))
        with pytest.raises(CredentialsRefused):
            list(client.iter_project_samples(PROJECT))
    assert len(fake_gencove.requests) == 1


def make_async_client(fake: FakeGencove) -> AsyncGencoveClient:
    return AsyncGencoveClient(
        GENCOVE_URL, API_KEY, transport=httpx.MockTransport(fake.handle_async), backoff=NO_WAIT
    )


@pytest.mark.anyio
async def test_async_listing_follows_next_until_null(fake_gencove: FakeGencove) -> None:
    total = 333
    serve_listing(fake_gencove, total)
    async with make_async_client(fake_gencove) as client:
        pages = [page async for page in client.iter_project_sample_pages(PROJECT, page_size=100)]
        items = [item async for item in client.iter_project_samples(PROJECT)]
    assert [len(page) for page in pages] == [100, 100, 100, 33]
    assert [item["id"] for item in items] == [sample_item(n)["id"] for n in range(total)]


@pytest.mark.anyio
async def test_async_listing_refuses_a_loop(fake_gencove: FakeGencove) -> None:
    loop_listing(fake_gencove, [f"{GENCOVE_URL}{LISTING}?limit=1&offset=1"] * 2)
    async with make_async_client(fake_gencove) as client:
        with pytest.raises(PaginationLoop):
            _ = [item async for item in client.iter_project_samples(PROJECT, page_size=1)]


@pytest.mark.anyio
async def test_async_sample_endpoints(fake_gencove: FakeGencove) -> None:
    fake_gencove.route(f"/api/v2/samples/{SAMPLE}", 200, {"id": SAMPLE})
    fake_gencove.route(f"/api/v2/sample-metadata/{SAMPLE}", 200, {"metadata": None})
    fake_gencove.route(
        f"/api/v2/sample-quality-controls/{SAMPLE}", 200, {"meta": {"next": None}, "results": [1]}
    )
    fake_gencove.route(f"/api/v2/sample-ancestry/{SAMPLE}", 200, {"ancestry": {"value": {}}})
    fake_gencove.route(f"/api/v2/sample-statuses/{SAMPLE}", 200, [{"status": "running"}])
    fake_gencove.route(
        f"/api/v2/sample-trait-scores/{SAMPLE}", 200, {"meta": {"next": None}, "results": [{"t": 1}]}
    )
    fake_gencove.route("/api/v2/sample-kit/", 201, {"sample_id": SAMPLE})
    async with make_async_client(fake_gencove) as client:
        assert await client.create_sample_kit({}) == {"sample_id": SAMPLE}
        assert await client.get_sample(SAMPLE) == {"id": SAMPLE}
        assert await client.get_sample_metadata(SAMPLE) == {"metadata": None}
        assert await client.get_quality_controls(SAMPLE) == [1]
        assert await client.get_ancestry(SAMPLE) == {"ancestry": {"value": {}}}
        assert [status async for status in client.iter_sample_statuses(SAMPLE)] == [{"status": "running"}]
        assert [score async for score in client.iter_trait_scores(SAMPLE)] == [{"t": 1}]


def test_modified_after_in_utc_is_sent_with_z() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert iso_utc(moment) == "2026-01-02T03:04:05.678000Z"
