"""Gencove API v2 clients (sync and async): kit orders, project sample listings, and a sample's results.

Listings are generators over `OffsetPaginator`, one page in memory at a time, so polling a project with a
hundred thousand samples costs no more memory than polling one with a hundred.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

import anyio
import httpx

from extract.auth import GencoveAuth
from extract.errors import CredentialsRefused, Forbidden, IncompleteListing, PartnerError, Unauthorized
from extract.http import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    AsyncPartnerClient,
    Call,
    SyncPartnerClient,
    build_async_client,
    build_client,
)
from extract.pagination import MAX_PAGE_SIZE, ModifiedCursor, OffsetPaginator
from extract.responses import json_object
from extract.retry import Backoff

API = "/api/v2"
SortBy = Literal["client_id", "created", "id", "modified", "status"]
SortOrder = Literal["asc", "desc"]
SampleStatusFilter = Literal["all", "completed", "failed", "running", "succeeded"]


def _segment(identifier: str) -> str:
    return quote(str(identifier), safe="")


def _object(*required: str) -> Callable[[httpx.Response], dict[str, Any]]:
    return lambda response: json_object(response, required)


def iso_utc(moment: datetime) -> str:
    """An aware datetime as the ISO 8601 UTC text Gencove's filters take; naive datetimes are refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("modified_after must be timezone-aware (use datetime.now(UTC))")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def sample_kit_call(body: dict[str, Any]) -> Call[dict[str, Any]]:
    return Call("POST", f"{API}/sample-kit/", _object("sample_id"), json=body)


def project_samples_paginator(
    project_id: str,
    *,
    modified_after: datetime | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    sort_by: SortBy = "modified",
    sort_order: SortOrder = "asc",
    status: SampleStatusFilter | None = None,
    page_size: int = MAX_PAGE_SIZE,
    offset: int = 0,
) -> OffsetPaginator:
    # The filters are sent even at their widest: the server's defaults are unpublished, and a default that
    # hides hidden or archived samples would leave them out of every listing without a word.
    params: dict[str, str | int] = {
        "sort_by": sort_by,
        "sort_order": sort_order,
        "status": "all",
        "archive_status": "all",
        "hidden_status": "all",
    }
    for name, moment in (
        ("modified_after", modified_after),
        ("created_after", created_after),
        ("created_before", created_before),
    ):
        if moment is not None:
            params[name] = iso_utc(moment)
    if status is not None:
        params["status"] = status
    return OffsetPaginator(f"{API}/project-samples/{_segment(project_id)}", params, page_size, offset)


def modified_page_call(project_id: str, cursor: ModifiedCursor) -> Call[list[dict[str, Any]]]:
    """The next keyset page of a project's samples (sorted by modified ascending, offset 0 unless stepping
    through one instant); the page's `meta.next` tells the cursor whether more follow."""
    paginator = project_samples_paginator(
        project_id, modified_after=cursor.since(), page_size=cursor.page_size, offset=cursor.offset
    )
    url, params = paginator.next_request()

    def read(response: httpx.Response) -> list[dict[str, Any]]:
        items = paginator.update(response)
        return cursor.update(
            items, more=paginator.has_next_page, count=paginator.count, shortfall=paginator.shortfall
        )

    return Call("GET", url, read, params=params)


def raise_if_short(cursor: ModifiedCursor, project_id: str) -> None:
    """After a keyset listing: `IncompleteListing` when the partner's last count disagreed with its pages."""
    if cursor.shortfall is not None:
        raise IncompleteListing(cursor.shortfall, endpoint=f"GET {API}/project-samples/{project_id}")


def sample_call(sample_id: str) -> Call[dict[str, Any]]:
    return Call("GET", f"{API}/samples/{_segment(sample_id)}", _object("id"))


def sample_metadata_call(sample_id: str) -> Call[dict[str, Any]]:
    return Call("GET", f"{API}/sample-metadata/{_segment(sample_id)}", _object("metadata"))


def sample_statuses_paginator(sample_id: str, page_size: int = MAX_PAGE_SIZE) -> OffsetPaginator:
    return OffsetPaginator(f"{API}/sample-statuses/{_segment(sample_id)}", page_size=page_size)


def quality_controls_paginator(sample_id: str, page_size: int = MAX_PAGE_SIZE) -> OffsetPaginator:
    # Documented as a bare list, served by Gencove's client code as a page: the paginator takes both.
    return OffsetPaginator(f"{API}/sample-quality-controls/{_segment(sample_id)}", page_size=page_size)


def trait_scores_paginator(sample_id: str, page_size: int = MAX_PAGE_SIZE) -> OffsetPaginator:
    return OffsetPaginator(f"{API}/sample-trait-scores/{_segment(sample_id)}", page_size=page_size)


def ancestry_call(sample_id: str) -> Call[dict[str, Any]]:
    return Call("GET", f"{API}/sample-ancestry/{_segment(sample_id)}", _object())


# How Django REST Framework (Gencove's API) words a refused API key; DRF answers it with 401, or with 403 when
# the authentication class sends no WWW-Authenticate challenge, so the words tell it from a plain "not yours".
_REFUSED_KEY_WORDS = ("api key", "api-key", "authentication credentials", "not authenticated")


def classify_gencove_error(error: PartnerError) -> PartnerError:
    """A 401 (and a 403 worded as a refused key) means Gencove refused our API key, whatever was asked:
    Gencove authenticates by the key alone, so no other request of the run can fare better."""
    refused = isinstance(error, Unauthorized) or (
        isinstance(error, Forbidden) and any(word in error.message.lower() for word in _REFUSED_KEY_WORDS)
    )
    if not refused:
        return error
    return CredentialsRefused(
        f"Gencove refused the API key ({error.message})", endpoint=error.endpoint, status=error.status
    )


def page_call(paginator: OffsetPaginator) -> Call[list[Any]]:
    """The request for the paginator's next page; reading the response advances the paginator."""
    url, params = paginator.next_request()
    return Call("GET", url, paginator.update, params=params)


class GencoveClient(SyncPartnerClient):
    """Synchronous Gencove client. `base_url` is the host root (e.g. https://api.gencove.com)."""

    PARTNER = "Gencove"
    classify = staticmethod(classify_gencove_error)

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        http = build_client(
            base_url,
            GencoveAuth(api_key),
            transport=transport,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            sleep=sleep,
            rng=rng,
            now=now,
        )
        super().__init__(http)

    def _pages(self, paginator: OffsetPaginator) -> Iterator[list[Any]]:
        while paginator.has_next_page:
            yield self._run(page_call(paginator))
        paginator.raise_if_short(f"GET {paginator.path}")

    def _all(self, paginator: OffsetPaginator) -> list[Any]:
        return [item for page in self._pages(paginator) for item in page]

    def create_sample_kit(self, body: dict[str, Any]) -> dict[str, Any]:
        """Order a kit: `{"sample_id": ...}`. Never resent after an ambiguous failure (no idempotency key)."""
        return self._run(sample_kit_call(body))

    def iter_project_sample_pages(
        self,
        project_id: str,
        *,
        modified_after: datetime | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        sort_by: SortBy = "modified",
        sort_order: SortOrder = "asc",
        status: SampleStatusFilter | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[list[dict[str, Any]]]:
        """A project's samples, one page (list of list items) at a time."""
        paginator = project_samples_paginator(
            project_id,
            modified_after=modified_after,
            created_after=created_after,
            created_before=created_before,
            sort_by=sort_by,
            sort_order=sort_order,
            status=status,
            page_size=page_size,
        )
        yield from self._pages(paginator)

    def iter_project_samples(
        self,
        project_id: str,
        *,
        modified_after: datetime | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        sort_by: SortBy = "modified",
        sort_order: SortOrder = "asc",
        status: SampleStatusFilter | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[dict[str, Any]]:
        """A project's samples, one list item at a time."""
        for page in self.iter_project_sample_pages(
            project_id,
            modified_after=modified_after,
            created_after=created_after,
            created_before=created_before,
            sort_by=sort_by,
            sort_order=sort_order,
            status=status,
            page_size=page_size,
        ):
            yield from page

    def iter_changed_sample_pages(
        self,
        project_id: str,
        *,
        modified_after: datetime | None = None,
        page_size: int = MAX_PAGE_SIZE,
        cursor: ModifiedCursor | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Samples modified after a moment, oldest change first, by keyset paging (see `ModifiedCursor`);
        pass `cursor` to read afterwards how far the listing got (`cursor.newest`)."""
        cursor = cursor or ModifiedCursor(modified_after, page_size)
        while not cursor.done:
            yield self._run(modified_page_call(project_id, cursor))
        raise_if_short(cursor, project_id)

    def get_sample(self, sample_id: str) -> dict[str, Any]:
        return self._run(sample_call(sample_id))

    def get_sample_metadata(self, sample_id: str) -> dict[str, Any]:
        return self._run(sample_metadata_call(sample_id))

    def iter_sample_statuses(self, sample_id: str) -> Iterator[dict[str, Any]]:
        for page in self._pages(sample_statuses_paginator(sample_id)):
            yield from page

    def get_quality_controls(self, sample_id: str) -> list[dict[str, Any]]:
        return self._all(quality_controls_paginator(sample_id))

    def iter_trait_scores(self, sample_id: str) -> Iterator[dict[str, Any]]:
        for page in self._pages(trait_scores_paginator(sample_id)):
            yield from page

    def get_ancestry(self, sample_id: str) -> dict[str, Any]:
        return self._run(ancestry_call(sample_id))


class AsyncGencoveClient(AsyncPartnerClient):
    """The async twin of `GencoveClient`; `use_aiohttp=True` picks httpx-aiohttp's transport."""

    PARTNER = "Gencove"
    classify = staticmethod(classify_gencove_error)

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        use_aiohttp: bool = False,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        rng: random.Random | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        http = build_async_client(
            base_url,
            GencoveAuth(api_key),
            transport=transport,
            use_aiohttp=use_aiohttp,
            max_concurrency=max_concurrency,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            sleep=sleep,
            rng=rng,
            now=now,
        )
        super().__init__(http, max_concurrency)

    async def _pages(self, paginator: OffsetPaginator) -> AsyncIterator[list[Any]]:
        while paginator.has_next_page:
            yield await self._run(page_call(paginator))
        paginator.raise_if_short(f"GET {paginator.path}")

    async def _all(self, paginator: OffsetPaginator) -> list[Any]:
        return [item async for page in self._pages(paginator) for item in page]

    async def create_sample_kit(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._run(sample_kit_call(body))

    async def iter_project_sample_pages(
        self,
        project_id: str,
        *,
        modified_after: datetime | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        sort_by: SortBy = "modified",
        sort_order: SortOrder = "asc",
        status: SampleStatusFilter | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        paginator = project_samples_paginator(
            project_id,
            modified_after=modified_after,
            created_after=created_after,
            created_before=created_before,
            sort_by=sort_by,
            sort_order=sort_order,
            status=status,
            page_size=page_size,
        )
        async for page in self._pages(paginator):
            yield page

    async def iter_project_samples(
        self,
        project_id: str,
        *,
        modified_after: datetime | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        sort_by: SortBy = "modified",
        sort_order: SortOrder = "asc",
        status: SampleStatusFilter | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> AsyncIterator[dict[str, Any]]:
        pages = self.iter_project_sample_pages(
            project_id,
            modified_after=modified_after,
            created_after=created_after,
            created_before=created_before,
            sort_by=sort_by,
            sort_order=sort_order,
            status=status,
            page_size=page_size,
        )
        async for page in pages:
            for item in page:
                yield item

    async def iter_changed_sample_pages(
        self,
        project_id: str,
        *,
        modified_after: datetime | None = None,
        page_size: int = MAX_PAGE_SIZE,
        cursor: ModifiedCursor | None = None,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Samples modified after a moment, oldest change first, by keyset paging (see `ModifiedCursor`);
        pass `cursor` to read afterwards how far the listing got (`cursor.newest`)."""
        cursor = cursor or ModifiedCursor(modified_after, page_size)
        while not cursor.done:
            yield await self._run(modified_page_call(project_id, cursor))
        raise_if_short(cursor, project_id)

    async def get_sample(self, sample_id: str) -> dict[str, Any]:
        return await self._run(sample_call(sample_id))

    async def get_sample_metadata(self, sample_id: str) -> dict[str, Any]:
        return await self._run(sample_metadata_call(sample_id))

    async def iter_sample_statuses(self, sample_id: str) -> AsyncIterator[dict[str, Any]]:
        async for page in self._pages(sample_statuses_paginator(sample_id)):
            for item in page:
                yield item

    async def get_quality_controls(self, sample_id: str) -> list[dict[str, Any]]:
        return await self._all(quality_controls_paginator(sample_id))

    async def iter_trait_scores(self, sample_id: str) -> AsyncIterator[dict[str, Any]]:
        async for page in self._pages(trait_scores_paginator(sample_id)):
            for item in page:
                yield item

    async def get_ancestry(self, sample_id: str) -> dict[str, Any]:
        return await self._run(ancestry_call(sample_id))
