"""Batches run two at a time, jobs added while others run start within the limit, a failure stops the rest."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import pytest

from flows.pipelining import BATCHES_IN_FLIGHT, share_of_concurrency
from flows.settings import Settings


def test_concurrent_batches_share_the_configured_concurrency() -> None:
    for configured, each in ((64, 32), (16, 8), (5, 3), (1, 1)):
        settings = Settings(concurrency=configured)
        assert share_of_concurrency(settings).concurrency == each
        assert each * BATCHES_IN_FLIGHT <= configured + 1
        assert settings.concurrency == configured  # a copy: the run's own settings are untouched


def test_a_pipeline_starts_jobs_added_while_others_run_within_its_limit() -> None:
    from flows.pipelining import Pipeline

    started: list[str] = []
    running: set[str] = set()
    most = 0

    async def collect() -> list[str]:
        pipeline: Pipeline[str] = Pipeline(in_flight=2)
        release = asyncio.Event()

        async def job(name: str, wait: bool = False) -> str:
            nonlocal most
            started.append(name)
            running.add(name)
            most = max(most, len(running))
            if wait:
                await release.wait()
            else:
                await asyncio.sleep(0)
            running.discard(name)
            return name

        async def producer() -> str:
            # a long job (a listing) naming work as it goes: that work starts while it still runs
            started.append("producer")
            for name in ("a", "b", "c"):
                pipeline.add(lambda name=name: job(name))
                await asyncio.sleep(0.01)
            release.set()
            return "producer"

        pipeline.add(producer)
        pipeline.add(lambda: job("held", wait=True))
        outcomes = []
        async with aclosing(pipeline.outcomes()) as finished:
            async for outcome in finished:
                outcomes.append(outcome)
                if outcome == "a":
                    pipeline.add(lambda: job("urgent"), first=True)
        return outcomes

    outcomes = asyncio.run(collect())
    assert sorted(outcomes) == sorted(["producer", "held", "a", "b", "c", "urgent"])
    assert most <= 2  # never more than in_flight jobs at once (the producer counts as one)
    # "a" was added while the producer ran and started once "held" gave its slot back; "urgent", added
    # after "a" finished, jumped ahead of the jobs still waiting
    assert started.index("urgent") < started.index("c")


def test_a_failed_pipeline_job_cancels_the_running_ones_and_is_raised() -> None:
    from flows.pipelining import Pipeline

    cancelled: list[str] = []

    async def collect() -> None:
        pipeline: Pipeline[str] = Pipeline(in_flight=2)

        async def slow() -> str:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.append("slow")
                raise
            return "slow"

        async def fails() -> str:
            raise RuntimeError("refused")

        pipeline.add(slow)
        pipeline.add(fails)
        pipeline.add(slow)  # never started
        async with aclosing(pipeline.outcomes()) as finished:
            async for _ in finished:
                pass

    with pytest.raises(RuntimeError, match="refused"):
        asyncio.run(collect())
    assert cancelled == ["slow"]
