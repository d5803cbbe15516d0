"""Gencove's limit/offset listings (`{"meta": {"next": <absolute URL>}, "results": [...]}`) as explicit state.

The end of a listing is what the partner says: `meta.next` being null, never a page shorter than the `limit`
asked (Django REST Framework caps `limit` at a server maximum Gencove does not publish). When the last page
carries `meta.count`, what was read must add up to it; if it does not, the listing is `shortfall`, and the
clients raise `IncompleteListing` after handing out every page they read.

The paginator knows what to ask for next and checks each page before trusting its `next` link: a link seen
before, one that does not move the offset forward, or one pointing at another host ends the listing with a
`PaginationLoop`/`MalformedResponse` instead of looping forever or sending our API key elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from extract.errors import IncompleteListing, MalformedResponse, PaginationLoop
from extract.redaction import redact_url
from extract.responses import json_payload, malformed
from transform.values import parse_timestamp

MAX_PAGE_SIZE = 200  # the largest page Gencove's own client asks for


def _offset_of(url: httpx.URL) -> int | None:
    raw = url.params.get("offset")
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


@dataclass
class OffsetPaginator:
    """State of one listing: where to go next, which links were followed, how far we got.

    Start it with the first page's path and query; each `update()` with a fetched page returns that page's
    items and moves to the page's `next` link (or ends the listing when it is null).
    """

    path: str
    params: dict[str, str | int] = field(default_factory=dict)
    page_size: int = MAX_PAGE_SIZE
    next_url: str | None = field(init=False, default=None)
    offset: int = 0  # where the first page starts (the keyset listing resumes inside a run of ties)
    pages: int = field(init=False, default=0)
    count: int | None = field(init=False, default=None)
    read: int = field(init=False, default=0)  # items the pages held, from `offset` on
    shortfall: str | None = field(init=False, default=None)  # why the listing cannot be proven complete
    _started: bool = field(init=False, default=False)
    _finished: bool = field(init=False, default=False)
    _seen: set[str] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, not {self.page_size}")

    @property
    def has_next_page(self) -> bool:
        return not self._finished

    def next_request(self) -> tuple[str, dict[str, str | int] | None]:
        """(url, params) of the page to fetch now: the first page's path and query, then the `next` links."""
        if self._finished:
            raise RuntimeError("the listing is finished")
        if not self._started:
            return self.path, {**self.params, "limit": self.page_size, "offset": self.offset}
        assert self.next_url is not None  # noqa: S101 - invariant: started and not finished means a next link
        return self.next_url, None

    def update(self, response: httpx.Response) -> list[Any]:
        """Check a fetched page, advance to its `next` link, and return its items.

        A bare JSON list is accepted as a complete, unpaginated listing (some Gencove endpoints are documented
        both ways).
        """
        page = json_payload(response)
        self.pages += 1
        self._started = True
        if isinstance(page, list):
            self._finished = True
            self.read += len(page)
            return page
        if not isinstance(page, dict) or not isinstance(page.get("results"), list):
            raise malformed(response, "expected a page with a 'results' list")
        meta = page.get("meta")
        if not isinstance(meta, dict) or "next" not in meta:
            raise malformed(response, "page lacks meta.next")
        if isinstance(meta.get("count"), int):
            self.count = meta["count"]
        results: list[Any] = page["results"]
        self.read += len(results)
        following = meta["next"]
        if following is None:
            self._finished = True
            if self.count is not None and self.offset + self.read < self.count:
                self.shortfall = (
                    f"meta.next is null but meta.count is {self.count} and only "
                    f"{self.offset + self.read} items were listed"
                )
            return results
        if not isinstance(following, str) or not following:
            raise malformed(response, "meta.next is neither a URL nor null")
        self._advance(response, httpx.URL(following), results)
        return results

    def raise_if_short(self, endpoint: str) -> None:
        """After the last page: `IncompleteListing` if the partner's count says items are missing."""
        if self.shortfall is not None:
            raise IncompleteListing(self.shortfall, endpoint=endpoint)

    def _advance(self, response: httpx.Response, following: httpx.URL, results: list[Any]) -> None:
        current = response.request.url
        endpoint = f"{response.request.method} {redact_url(current)}"
        if not following.is_absolute_url:
            following = current.join(following)
        if (following.scheme, following.host, following.port) != (current.scheme, current.host, current.port):
            raise malformed(response, f"meta.next points at another host ({redact_url(following)})")
        key = str(following)
        if key in self._seen or following == current:
            raise PaginationLoop(
                f"meta.next repeats a page already fetched: {redact_url(following)}", endpoint=endpoint
            )
        here, there = _offset_of(current), _offset_of(following)
        if here is not None and there is not None and there <= here:
            raise PaginationLoop(
                f"meta.next does not advance the offset ({here} -> {there}): {redact_url(following)}",
                endpoint=endpoint,
            )
        if not results:
            raise PaginationLoop(f"an empty page still links to {redact_url(following)}", endpoint=endpoint)
        self._seen.add(key)
        self.next_url = key


@dataclass
class ModifiedCursor:
    """Keyset listing of a project's samples by `modified`: each page starts where the last one ended.

    Offset paging over a list that changes while it is read skips items: a sample modified mid-listing jumps
    to the end and every later sample shifts one place towards pages already read. Restarting each page at
    the newest `modified` seen (offset 0) cannot skip anything: a sample that changes meanwhile only moves
    further ahead, where a later page finds it. The filter is asked for one microsecond before the boundary,
    so whether the partner's `modified_after` is inclusive or not, samples sharing the boundary instant come
    back and the ids already yielded at that instant are dropped.

    The listing ends only when the partner says so (`meta.next` null on the page just read): a page shorter
    than `page_size` is just the partner's own cap on `limit`. A page that lies wholly at the boundary instant
    cannot move the keyset forward (more samples share one `modified` than the partner's page holds), so the
    cursor then steps through that instant by offset, within the same filter, until a page reaches past it.
    (Offset stepping is exposed to the shift described above, but only among samples sharing one exact
    microsecond while one of them changes: far rarer than the page boundaries it replaces.)
    """

    modified_after: datetime | None = None
    page_size: int = MAX_PAGE_SIZE
    done: bool = False
    offset: int = 0  # offset within the current filter: non-zero only while stepping through one instant
    shortfall: str | None = None  # set when the last page's meta.count says items were not listed
    newest: datetime | None = None  # the newest `modified` handed out: how far the listing got
    _boundary_ids: set[str] = field(default_factory=set)
    _boundary: datetime | None = None

    def __post_init__(self) -> None:
        self._boundary = self.modified_after

    def since(self) -> datetime | None:
        """The `modified_after` filter of the next request."""
        return None if self._boundary is None else self._boundary - timedelta(microseconds=1)

    def update(
        self, items: list[Any], *, more: bool, count: int | None = None, shortfall: str | None = None
    ) -> list[dict[str, Any]]:
        """Take one fetched page (sorted by modified, ascending) and whether the partner says more follow
        (`meta.next` not null), with its `meta.count`; return the items not yielded before."""
        fresh = [
            item for item in items if isinstance(item, dict) and item.get("id") not in self._boundary_ids
        ]
        moments = [moment for moment in map(_modified_of, fresh) if moment is not None]
        if moments and (self.newest is None or max(moments) > self.newest):
            self.newest = max(moments)
        if not more:
            self.done = True
            self.shortfall = shortfall
            return fresh
        if not items:
            raise PaginationLoop("an empty project-samples page says more samples follow")
        last = _modified_of(items[-1])
        if last is None:
            raise MalformedResponse("project-samples item without a valid `modified` timestamp")
        at_last = {
            str(item.get("id")) for item in items if isinstance(item, dict) and _modified_of(item) == last
        }
        if self._boundary is not None and last <= self._boundary:
            # The whole page sits at the boundary instant: step through it by offset within this filter.
            self.offset += len(items)
            if count is not None and self.offset >= count:
                raise PaginationLoop(
                    f"project-samples says more follow after {self.offset} of its {count} samples"
                )
            self._boundary_ids |= at_last
            return fresh
        self._boundary_ids = at_last
        self._boundary = last
        self.offset = 0
        return fresh


def _modified_of(item: Any) -> datetime | None:
    try:
        return parse_timestamp(item["modified"])
    except (KeyError, TypeError, ValueError):
        return None
