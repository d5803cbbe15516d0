"""How the sandbox speaks on the wire: fast JSON responses and each partner's timestamp spellings."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import orjson
from aiohttp import web

JSON_TYPE = "application/json"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response encoded by orjson: the partner APIs are JSON everywhere, errors included."""
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON_TYPE, headers=headers)


def biomesight_time(moment: datetime) -> str:
    """Biomesight's status dates: second precision with a Z, as in `2025-07-10T14:22:00Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def gencove_time(moment: datetime) -> str:
    """Gencove's (DRF's) timestamps: microseconds and a Z, as in `2025-10-31T12:34:56.123456Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def gencove_archive_time(moment: datetime) -> str:
    """`archive_last_status.created` is Python's str() of the datetime: space separated, +00:00 offset."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SPACED_OFFSET = re.compile(r"(?<=\d) (\d{2}:?\d{2})$")


def parse_iso_datetime(text: object) -> datetime | None:
    """An ISO 8601 timestamp as aware UTC (naive means UTC, as Biomesight documents), else None."""
    if not isinstance(text, str) or not text.strip():
        return None
    raw = _SPACED_OFFSET.sub(r"+\1", text.strip())  # a query string's unescaped "+" arrives as a space
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_iso_date(text: object) -> date | None:
    """A calendar date spelled exactly YYYY-MM-DD (register_kit's sample_date), else None."""
    if not isinstance(text, str) or not _DATE_ONLY.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None
