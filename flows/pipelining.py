"""Batches: how a sync cuts its work into tasks and keeps a few of them in flight at once."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from flows.settings import Settings

T = TypeVar("T")
B = TypeVar("B")


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """Consecutive slices of at most `size` items: the unit of work of one task."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


# Batch tasks a sync runs at once, sharing its KITSYNC_CONCURRENCY between them (see `pipelined`).
BATCHES_IN_FLIGHT = 2


def share_of_concurrency(settings: Settings) -> Settings:
    """The settings for one of BATCHES_IN_FLIGHT concurrent batches: together they keep `concurrency`
    requests in flight as one batch did (rounded up to a multiple of BATCHES_IN_FLIGHT)."""
    return settings.model_copy(update={"concurrency": -(-settings.concurrency // BATCHES_IN_FLIGHT)})


async def pipelined(
    batches: Iterable[B], work: Callable[[B], Awaitable[T]], *, in_flight: int = BATCHES_IN_FLIGHT
) -> AsyncIterator[T]:
    """Each batch's outcome, in batch order, with up to `in_flight` batches running at once.

    One batch at a time left the partner idle for everything a batch costs besides its requests: Prefect's
    task bookkeeping, a new client and token, the drain while its last requests finish, its lake write. The
    next batch's requests now run meanwhile. If a batch fails, those started after it are cancelled (use
    with `contextlib.aclosing`, so that also happens when the consumer stops early).
    """
    pending: deque[asyncio.Future[T]] = deque()
    try:
        for batch in batches:
            pending.append(asyncio.ensure_future(work(batch)))
            if len(pending) >= in_flight:
                yield await pending.popleft()
        while pending:
            yield await pending.popleft()
    finally:
        for future in pending:
            future.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
