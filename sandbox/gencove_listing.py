"""`project-samples` filtering, sorting and limit/offset pagination, cached so paging a huge project is cheap.

Choices (documented for clients and tests): default `limit` 100, largest 200 (bigger values are capped, a
non-numeric one falls back to the default, as DRF's LimitOffsetPagination does); default order `created`
descending with the sample id breaking ties; `status=running` means every non-final status; `archive_status=
available` includes `restored`; `hidden_status` defaults to `all`; date filters are inclusive. Only samples
created at or before the virtual now exist. The matching, sorted list is computed once per (query, now,
world generation) and each page is a slice of it: paging through 100k samples costs one sort, not one a page.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from yarl import URL

from sandbox.gencove_views import FAILED_STATUSES, INITIAL_STATUS
from sandbox.model import GENCOVE_FINAL_STATUSES, GencoveSample
from sandbox.wire import parse_iso_datetime

DEFAULT_LIMIT = 100
MAX_LIMIT = 200
STATUS_FILTERS = ("all", "completed", "failed", "running", "succeeded")
ARCHIVE_FILTERS = ("all", "archived", "available", "restore_requested")
HIDDEN_FILTERS = ("all", "hidden", "visible")
SORT_FIELDS = ("client_id", "created", "id", "modified", "status")
SORT_ORDERS = ("asc", "desc")
DATE_FILTERS = ("created_after", "created_before", "modified_after", "modified_before")


@dataclass(frozen=True)
class SampleQuery:
    """The filters and ordering of one project-samples request (pagination aside)."""

    project_id: str
    search: str = ""
    status: str = "all"
    archive_status: str = "all"
    hidden_status: str = "all"
    sort_by: str = "created"
    sort_order: str = "desc"
    created_after: datetime | None = None
    created_before: datetime | None = None
    modified_after: datetime | None = None
    modified_before: datetime | None = None


def parse_query(project_id: str, params: Any) -> SampleQuery | dict[str, list[str]]:
    """The query from request parameters, or DRF-style per-field errors."""
    errors: dict[str, list[str]] = {}
    choices: dict[str, str] = {}
    for name, allowed, default in (
        ("status", STATUS_FILTERS, "all"),
        ("archive_status", ARCHIVE_FILTERS, "all"),
        ("hidden_status", HIDDEN_FILTERS, "all"),
        ("sort_by", SORT_FIELDS, "created"),
        ("sort_order", SORT_ORDERS, "desc"),
    ):
        value = params.get(name) or default
        if value not in allowed:
            errors[name] = [f"Select a valid choice. {value} is not one of the available choices."]
        choices[name] = value
    dates: dict[str, datetime | None] = {}
    for name in DATE_FILTERS:
        raw = params.get(name)
        dates[name] = parse_iso_datetime(raw) if raw else None
        if raw and dates[name] is None:
            errors[name] = ["Enter a valid date/time."]
    if errors:
        return errors
    return SampleQuery(project_id=project_id, search=(params.get("search") or "").strip(), **choices, **dates)


def page_bounds(params: Any, max_limit: int | None = None) -> tuple[int, int]:
    """(limit, offset) as DRF's LimitOffsetPagination reads them: lenient, capped at `max_limit` (MAX_LIMIT
    unless a variance profile serves less), never negative."""
    cap = MAX_LIMIT if max_limit is None else max_limit
    limit = _non_negative_int(params.get("limit"), DEFAULT_LIMIT)
    limit = min(limit, cap) if limit > 0 else min(DEFAULT_LIMIT, cap)
    return limit, _non_negative_int(params.get("offset"), 0)


def _non_negative_int(raw: str | None, default: int) -> int:
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        return default
    return max(value, 0)


def page_links(url: URL, count: int, limit: int, offset: int) -> tuple[str | None, str | None]:
    """Absolute `next`/`previous` URLs keeping the request's other parameters, as DRF builds them."""
    following = None
    if offset + limit < count:
        following = str(url.update_query(limit=limit, offset=offset + limit))
    previous = None
    if offset > 0:
        if offset - limit <= 0:
            previous = str(url.update_query(limit=limit).without_query_params("offset"))
        else:
            previous = str(url.update_query(limit=limit, offset=offset - limit))
    return following, previous


def paginate(
    url: URL, items: list[Any], params: Any, max_limit: int | None = None
) -> tuple[dict[str, Any], list[Any]]:
    """The `meta` block and the page's slice of `items`."""
    limit, offset = page_bounds(params, max_limit)
    following, previous = page_links(url, len(items), limit, offset)
    return {"count": len(items), "next": following, "previous": previous}, items[offset : offset + limit]


@dataclass(frozen=True)
class _Facts:
    """What never changes with the clock, in exact integer microseconds since the epoch: bisecting ints is
    much cheaper than comparing aware datetimes, and exact (floats would blur microsecond ties)."""

    sample: GencoveSample
    created: int
    status_times: list[int]
    archive_times: list[int]


@dataclass(frozen=True)
class _Row:
    sample: GencoveSample
    created: int
    modified: int
    status: str
    archive_status: str


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _facts(sample: GencoveSample) -> _Facts:
    return _Facts(
        sample,
        _micros(sample.created),
        [_micros(change.at) for change in sample.timeline],
        [_micros(change.at) for change in sample.archive_timeline],
    )


def _row(facts: _Facts, now: int) -> _Row:
    sample = facts.sample
    status_index = bisect.bisect_right(facts.status_times, now) - 1
    archive_index = bisect.bisect_right(facts.archive_times, now) - 1
    modified = facts.created
    if status_index >= 0:
        modified = max(modified, facts.status_times[status_index])
    if archive_index >= 0:
        modified = max(modified, facts.archive_times[archive_index])
    return _Row(
        sample,
        facts.created,
        modified,
        sample.timeline[status_index].status if status_index >= 0 else INITIAL_STATUS,
        sample.archive_timeline[archive_index].status if archive_index >= 0 else "available",
    )


class ProjectListing:
    """Matching samples per query, cached by virtual now and world generation."""

    def __init__(self, cache_size: int = 32) -> None:
        self._cache_size = cache_size
        self._by_project: dict[str, list[_Facts]] = {}
        self._by_project_key: tuple[int, int] | None = None
        self._rows: OrderedDict[tuple[str, datetime, tuple[int, int]], list[_Row]] = OrderedDict()
        self._queries: OrderedDict[tuple[SampleQuery, datetime, tuple[int, int]], list[GencoveSample]] = (
            OrderedDict()
        )
        self._texts: dict[str, str] = {}
        self._lock = threading.Lock()

    def matching(
        self, samples: dict[str, GencoveSample], query: SampleQuery, now: datetime, generation: int
    ) -> list[GencoveSample]:
        """The project's samples visible at `now` that match `query`, in the requested order."""
        # The sample count is part of the key so that a world changed behind the API's back is noticed too.
        generation_key = (generation, len(samples))
        key = (query, now, generation_key)
        with self._lock:
            cached = self._queries.get(key)
            if cached is not None:
                self._queries.move_to_end(key)
                return cached
            rows = self._project_rows(samples, query.project_id, now, generation_key)
            texts = self._search_texts(rows) if query.search else {}
            result = [row.sample for row in _sorted(_filtered(rows, query, texts), query)]
            self._queries[key] = result
            if len(self._queries) > self._cache_size:
                self._queries.popitem(last=False)
            return result

    def _search_texts(self, rows: list[_Row]) -> dict[str, str]:
        """What `search` matches per sample (id, client id, metadata), built on the first search only."""
        for row in rows:
            sample = row.sample
            if sample.sample_id not in self._texts:
                metadata = orjson.dumps(sample.metadata).decode()
                self._texts[sample.sample_id] = f"{sample.sample_id} {sample.client_id} {metadata}".lower()
        return self._texts

    def _project_rows(
        self,
        samples: dict[str, GencoveSample],
        project_id: str,
        now: datetime,
        generation_key: tuple[int, int],
    ) -> list[_Row]:
        if self._by_project_key != generation_key:
            self._by_project = {}
            for sample in samples.values():
                self._by_project.setdefault(sample.project_id, []).append(_facts(sample))
            self._by_project_key = generation_key
            self._rows.clear()
            self._texts.clear()
        key = (project_id, now, generation_key)
        rows = self._rows.get(key)
        if rows is None:
            moment = _micros(now)
            rows = [
                _row(facts, moment)
                for facts in self._by_project.get(project_id, [])
                if facts.created <= moment
            ]
            self._rows[key] = rows
            if len(self._rows) > 4:
                self._rows.popitem(last=False)
        return rows


def _status_matches(status: str, wanted: str) -> bool:
    if wanted == "all":
        return True
    if wanted == "succeeded":
        return status == "succeeded"
    if wanted == "failed":
        return status in FAILED_STATUSES
    if wanted == "completed":
        return status in GENCOVE_FINAL_STATUSES
    return status not in GENCOVE_FINAL_STATUSES  # running: anything still in flight


def _archive_matches(status: str, wanted: str) -> bool:
    if wanted == "all":
        return True
    if wanted == "available":
        return status in ("available", "restored")
    return status == wanted


def _filtered(rows: list[_Row], query: SampleQuery, texts: dict[str, str]) -> list[_Row]:
    needle = query.search.lower()
    lowest, highest = -(2**63), 2**63
    created_low = _micros(query.created_after) if query.created_after else lowest
    created_high = _micros(query.created_before) if query.created_before else highest
    modified_low = _micros(query.modified_after) if query.modified_after else lowest
    modified_high = _micros(query.modified_before) if query.modified_before else highest
    kept = []
    for row in rows:
        if needle and needle not in texts[row.sample.sample_id]:
            continue
        if not _status_matches(row.status, query.status):
            continue
        if not _archive_matches(row.archive_status, query.archive_status):
            continue
        if query.hidden_status != "all" and row.sample.hidden != (query.hidden_status == "hidden"):
            continue
        if created_low <= row.created <= created_high and modified_low <= row.modified <= modified_high:
            kept.append(row)
    return kept


def _sorted(rows: list[_Row], query: SampleQuery) -> list[_Row]:
    field = query.sort_by

    def key(row: _Row) -> tuple[Any, str]:
        if field == "id":
            return (row.sample.sample_id, "")
        if field == "client_id":
            return (row.sample.client_id, row.sample.sample_id)
        if field == "status":
            return (row.status, row.sample.sample_id)
        return (getattr(row, field), row.sample.sample_id)

    return sorted(rows, key=key, reverse=query.sort_order == "desc")
