"""Each partner's request budget, held across every worker and run through Prefect global concurrency limits.

A partner allows so many requests in flight for our account, whatever number of workers send them. With
`KITSYNC_PARTNER_LIMITS` on (prefect.yaml's deployments turn it on), each partner client holds slots of the
Prefect global concurrency limit `kitsync-<partner>-requests` while it is open: as many slots as it keeps
requests in flight, so the requests of every client on every worker stay within the limit. Slots are taken
once per client, not per request (acquiring is a call to the Prefect API): a sync opens one client per
partner for its batches in the flow's process (`flows.runtime.run_clients`), which holds `requests_in_flight`
slots for the sync part of the run, the batches running at once sharing its requests in flight; a batch on a
Dask worker opens its own client with its share of the concurrency and holds that share's slots.

`kitsync setup` creates the limits (idempotent: it sets each limit to the budget in the settings). They are
acquired with `strict=True`: a missing limit fails the run with one line naming `kitsync setup`, never runs
unlimited. A crashed worker's slots come back when their lease expires (Prefect renews it while the client is
open).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from extract.errors import PartnerUnusable
from flows.settings import Settings

PARTNERS = ("biomesight", "gencove")


class PartnerLimitMissing(PartnerUnusable):
    """The partner's global concurrency limit does not exist on the Prefect server (or cannot be taken)."""


@dataclass(frozen=True)
class PartnerLimit:
    """One partner's budget: the limit's name and the requests in flight it allows across all workers."""

    partner: str
    name: str
    budget: int


def limit_name(partner: str) -> str:
    return f"kitsync-{partner}-requests"


def partner_limits(settings: Settings) -> list[PartnerLimit]:
    """The limits `kitsync setup` creates, with the budgets the settings give."""
    return [
        PartnerLimit(partner, limit_name(partner), getattr(settings, f"{partner}_request_budget"))
        for partner in PARTNERS
    ]


def requests_in_flight(settings: Settings, partner: str) -> int:
    """How many requests one client of `partner` keeps in flight: the concurrency it is given, and never more
    than the partner's whole budget when the limits are on (more slots than a limit has are never granted)."""
    if not settings.partner_limits:
        return settings.concurrency
    return min(settings.concurrency, getattr(settings, f"{partner}_request_budget"))


@asynccontextmanager
async def partner_budget(settings: Settings, partner: str) -> AsyncIterator[None]:
    """Hold `requests_in_flight` slots of the partner's limit for the duration (no-op with the limits off)."""
    if not settings.partner_limits:
        yield
        return
    from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError, concurrency

    name = limit_name(partner)
    async with AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(
                concurrency(name, occupy=requests_in_flight(settings, partner), strict=True)
            )
        except ConcurrencySlotAcquisitionError as error:
            missing = PartnerLimitMissing(
                f"no Prefect concurrency limit {name!r} to hold its request budget "
                f"(KITSYNC_PARTNER_LIMITS is on): create it with `kitsync setup` ({_first_line(error)})"
            )
            missing.partner = partner.capitalize()  # as the clients name their partner
            raise missing from None
        yield


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


async def create_partner_limits(settings: Settings) -> list[PartnerLimit]:
    """Create (or set to the settings' budget) each partner's global concurrency limit; idempotent."""
    from prefect.client.orchestration import get_client

    limits = partner_limits(settings)
    async with get_client() as client:
        for limit in limits:
            await client.upsert_global_concurrency_limit_by_name(limit.name, limit.budget)
    return limits
