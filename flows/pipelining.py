"""Batches: how a sync cuts its work into tasks and keeps a few of them in flight at once."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Generic, TypeVar

from flows.settings import Settings

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """Consecutive slices of at most `size` items: the unit of work of one task."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


# Batch tasks a sync runs at once, sharing its KITSYNC_CONCURRENCY between them (see `Pipeline`).
BATCHES_IN_FLIGHT = 2


def share_of_concurrency(settings: Settings) -> Settings:
    """The settings for one of BATCHES_IN_FLIGHT concurrent batches: together they keep `concurrency`
    requests in flight as one batch did (rounded up to a multiple of BATCHES_IN_FLIGHT)."""
    return settings.model_copy(update={"concurrency": -(-settings.concurrency // BATCHES_IN_FLIGHT)})


Job = Callable[[], Awaitable[T]]


class Pipeline(Generic[T]):
    """Batches that become known while others run: up to `in_flight` at once, each outcome as it finishes.

    A sync learns of work as it goes (a poll batch names kits now ready for results, a listing page names
    samples now final), and waiting for the whole poll or listing before asking for any of it left the
    partner idle meanwhile. Jobs are added with
    `add` (from the consumer of `outcomes`, or from a running job) and start as soon as a slot is free, in the
    order added (`first=True` jumps the queue: work that finishes what was started before starting more).
    If a job fails, the ones running are cancelled and the failure is raised (use `outcomes` with
    `contextlib.aclosing`, so that also happens when the consumer stops early).
    """

    def __init__(self, *, in_flight: int = BATCHES_IN_FLIGHT) -> None:
        self.in_flight = in_flight
        self._waiting: deque[Job[T]] = deque()
        self._running: dict[asyncio.Future[T], int] = {}
        self._added = asyncio.Event()
        self._started = 0

    def add(self, job: Job[T], *, first: bool = False) -> None:
        """Queue a job (a coroutine function of no arguments); it starts when a slot is free."""
        if first:
            self._waiting.appendleft(job)
        else:
            self._waiting.append(job)
        self._added.set()

    @property
    def idle(self) -> bool:
        """Nothing running and nothing waiting: every outcome has been handed out."""
        return not self._waiting and not self._running

    async def outcomes(self) -> AsyncIterator[T]:
        """Each job's outcome as it finishes (jobs finishing together: in the order they started), until no
        job runs or waits."""
        try:
            while not self.idle:
                while self._waiting and len(self._running) < self.in_flight:
                    self._running[asyncio.ensure_future(self._waiting.popleft()())] = self._started
                    self._started += 1
                self._added.clear()
                added = asyncio.ensure_future(self._added.wait())
                try:
                    done, _ = await asyncio.wait([*self._running, added], return_when=asyncio.FIRST_COMPLETED)
                finally:
                    added.cancel()
                finished = sorted((f for f in done if f in self._running), key=self._running.__getitem__)
                for future in finished:
                    del self._running[future]
                for future in finished:
                    yield future.result()
        finally:
            running = list(self._running)
            self._running.clear()
            self._waiting.clear()
            for future in running:
                future.cancel()
            await asyncio.gather(*running, return_exceptions=True)
