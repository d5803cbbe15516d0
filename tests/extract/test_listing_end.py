"""The end of a listing is what the partner says: `meta.next` null, not a short page.

A fake Gencove that serves project samples by `modified` (with `modified_after`, limit/offset and a server
cap on `limit`, as Django REST Framework's `max_limit` does) drives the keyset listing; expectations are the
fake's own sample set, not numbers copied from a run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from extract.errors import IncompleteListing, PaginationLoop
from extract.gencove import GencoveClient
from tests.extract.fakes import API_KEY, GENCOVE_URL, NO_WAIT, FakeGencove, respond

PROJECT = "6f1c2a3b-4d5e-4f60-8a71-b2c3d4e5f601"
LISTING = f"/api/v2/project-samples/{PROJECT}"
SAMPLE = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
T0 = datetime(2026, 10, 1, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ModifiedListing:
    """Samples (id -> modified) served sorted by (modified, id), filtered by an inclusive `modified_after`,
    with `limit` capped at `cap` and an optional lie in `meta.count`."""

    def __init__(self, samples: dict[str, datetime], cap: int, count_extra: int = 0) -> None:
        self.samples = samples
        self.cap = cap
        self.count_extra = count_extra
        self.requests: list[httpx.URL] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url)
        params = request.url.params
        after = params.get("modified_after")
        floor = datetime.fromisoformat(after.replace("Z", "+00:00")) if after else None
        rows = sorted((m, s) for s, m in self.samples.items() if floor is None or m >= floor)
        limit = min(int(params.get("limit", 100)), self.cap)
        offset = int(params.get("offset", 0))
        page = rows[offset : offset + limit]
        following = None
        if offset + limit < len(rows):
            following = str(
                request.url.copy_set_param("offset", offset + limit).copy_set_param("limit", limit)
            )
        return respond(
            200,
            {
                "meta": {"count": len(rows) + self.count_extra, "next": following, "previous": None},
                "results": [
                    {"id": s, "modified": stamp(m), "last_status": {"status": "running"}} for m, s in page
                ],
            },
        )


def client(fake: FakeGencove) -> GencoveClient:
    return GencoveClient(
        GENCOVE_URL,
        API_KEY,
        transport=httpx.MockTransport(fake.handle),
        backoff=NO_WAIT,
        sleep=lambda _s: None,
    )


def listed(fake: FakeGencove, **kwargs: object) -> list[str]:
    with client(fake) as gencove:
        return [item["id"] for page in gencove.iter_changed_sample_pages(PROJECT, **kwargs) for item in page]


def test_pages_capped_below_the_limit_asked_do_not_end_the_listing() -> None:
    """Gencove caps `limit` (at 7 here) below the 200 kitsync asks: every sample must still be listed."""
    samples = {f"s-{n:03d}": T0 + timedelta(minutes=n) for n in range(50)}
    fake = FakeGencove()
    listing = ModifiedListing(samples, cap=7)
    fake.routes[LISTING] = listing
    assert sorted(listed(fake)) == sorted(samples)
    assert all(url.params["limit"] == "200" for url in listing.requests)
    # keyset: each request resumes after the newest modified seen, at offset 0
    assert {url.params["offset"] for url in listing.requests} == {"0"}


def test_more_samples_at_one_instant_than_a_page_holds_are_stepped_through() -> None:
    """20 samples share one `modified` (a bulk order) and the cap is 6: keyset paging alone cannot move past
    that instant, so the cursor steps through it by offset; nothing is skipped or repeated."""
    samples = {f"a-{n:02d}": T0 + timedelta(seconds=n) for n in range(5)}
    samples |= {f"bulk-{n:02d}": T0 + timedelta(minutes=1) for n in range(20)}
    samples |= {f"z-{n:02d}": T0 + timedelta(minutes=2, seconds=n) for n in range(4)}
    fake = FakeGencove()
    fake.routes[LISTING] = ModifiedListing(samples, cap=6)
    ids = listed(fake)
    assert sorted(ids) == sorted(samples)
    assert len(ids) == len(set(ids))


def test_a_count_above_what_the_last_page_reached_is_an_incomplete_listing() -> None:
    """`next` is null but `meta.count` says 3 more exist: every page read is still handed out, then
    IncompleteListing says the listing cannot be proven complete."""
    samples = {f"s-{n:03d}": T0 + timedelta(minutes=n) for n in range(12)}
    fake = FakeGencove()
    fake.routes[LISTING] = ModifiedListing(samples, cap=5, count_extra=3)
    seen: list[str] = []

    def read_all() -> None:
        with client(fake) as gencove:
            for page in gencove.iter_changed_sample_pages(PROJECT):
                seen.extend(item["id"] for item in page)

    with pytest.raises(IncompleteListing, match=r"meta\.count"):
        read_all()
    assert sorted(seen) == sorted(samples)


def test_a_page_that_says_more_follow_but_is_empty_is_a_loop() -> None:
    fake = FakeGencove()
    fake.route(
        LISTING,
        body={
            "meta": {"count": 3, "next": f"{GENCOVE_URL}{LISTING}?offset=5", "previous": None},
            "results": [],
        },
    )
    with pytest.raises(PaginationLoop):
        listed(fake)


def test_sub_listings_check_their_count_too() -> None:
    """A sample's trait scores: `next` null on a page whose count says more exist is IncompleteListing, not
    a silently partial set of scores."""
    fake = FakeGencove()
    path = f"/api/v2/sample-trait-scores/{SAMPLE}"
    fake.route(
        path,
        body={"meta": {"count": 5, "next": None, "previous": None}, "results": [{"trait": {"key": "bmi"}}]},
    )
    with client(fake) as gencove, pytest.raises(IncompleteListing):
        list(gencove.iter_trait_scores(SAMPLE))


def test_a_short_page_with_a_next_link_is_followed() -> None:
    """Offset listings (backfills, sub-resources) follow `next` whatever the page's length."""
    fake = FakeGencove()
    path = f"/api/v2/sample-statuses/{SAMPLE}"
    items = [{"status": f"s{n}", "created": stamp(T0 + timedelta(days=n))} for n in range(5)]

    def statuses(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params.get("offset", 0))
        end = min(offset + 2, len(items))  # capped at 2 whatever was asked
        following = str(request.url.copy_set_param("offset", end)) if end < len(items) else None
        return respond(
            200,
            {
                "meta": {"count": len(items), "next": following, "previous": None},
                "results": items[offset:end],
            },
        )

    fake.routes[path] = statuses
    with client(fake) as gencove:
        assert list(gencove.iter_sample_statuses(SAMPLE)) == items
