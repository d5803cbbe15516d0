"""Whether a polled status is news: the comparison of a partner's (status, date) with the latest one held."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from transform.values import parse_timestamp


class HeldStatus(Protocol):
    """The latest status the warehouse holds for one entity (`warehouse.state.KnownStatus` fits)."""

    @property
    def partner_status(self) -> str: ...

    @property
    def partner_date(self) -> datetime: ...


def is_change(previous: HeldStatus | None, status: object, date: object) -> bool:
    """Whether a polled (status, date) differs from the latest the warehouse held: a status change.

    A date that does not parse counts as a change, so the transform sees it (and quarantines it with the
    reason) rather than the poll dropping it silently.
    """
    if previous is None:
        return True
    if previous.partner_status != status or not isinstance(date, str):
        return previous.partner_status != status
    try:
        return parse_timestamp(date) != previous.partner_date
    except ValueError:
        return True
