"""Benchmark: the partner client's own CPU per request, against extract/http.py as it was at BASELINE_REV.

A first sync against the sandbox is client-CPU bound, and two thirds of the client's main thread is the
request path (httpx, its aiohttp transport, our retry transport, auth and the `Call` runner). This times that
path alone, without a socket: both clients run the same calls (Biomesight kit status and results with their
query, Gencove paged trait scores: the shapes of a first sync) over `httpx.MockTransport` answering a fixed
JSON body, so what is measured is the client's work per request (URL building, cookie handling, the in-flight
gate, reading the JSON), not the network's or the server's. The baseline is extract/http.py loaded from git
(`git show REV:extract/http.py`) into a module of its own; rounds alternate between the two so that a busy
machine's drift falls on both.

    .venv/bin/python bench/client_overhead.py --requests 20000
"""

from __future__ import annotations

import argparse
import asyncio
import time
from types import ModuleType
from typing import Any

import _harness as h
import httpx

from extract import http as current
from extract.auth import GencoveAuth
from extract.biomesight import kit_status_call, results_call
from extract.gencove import page_call, trait_scores_paginator

BASELINE_REV = "b50d0db"  # extract/http.py before the one-parse URLs, cookie skip and fast in-flight gate
# one body every call accepts: a kit status, a results JSON (`scores`) and a page of trait scores
BODY = (
    b'{"kit_id": "BS1-000001", "status": "RESULTS_READY", "scores": [], '
    b'"meta": {"count": 1, "next": null}, "results": [{"a": 1}]}'
)


def baseline_module(rev: str) -> ModuleType:
    """extract/http.py as it was at `rev`, imported under another name."""
    return h.module_at(rev, "extract/http.py", "http_baseline")


def _answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=BODY, headers={"Content-Type": "application/json"})


def _calls(i: int) -> list[Any]:
    kit = f"BS1-{i:06d}"
    sample = f"5c3e1a2b-1111-2222-3333-{i:012d}"
    return [kit_status_call(kit), results_call(kit, "json"), page_call(trait_scores_paginator(sample))]


async def _round(module: ModuleType, requests: int, concurrency: int) -> float:
    """CPU seconds for `requests` calls through `module`'s async client, `concurrency` in flight."""
    http = module.build_async_client(
        "http://partner.test", GencoveAuth("key"), transport=httpx.MockTransport(_answer)
    )
    client = module.AsyncPartnerClient(http, concurrency)
    calls = [call for i in range(requests // 3 + 1) for call in _calls(i)][:requests]
    gate = asyncio.Semaphore(concurrency)

    async def one(call: Any) -> None:
        async with gate:
            await client._run(call)

    started = time.process_time()
    await asyncio.gather(*(one(call) for call in calls))
    spent = time.process_time() - started
    await client.aclose()
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000, help="requests per round and client")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (the best of each is kept)")
    parser.add_argument("--concurrency", type=int, default=64)
    h.json_argument(parser)
    args = parser.parse_args()
    baseline = baseline_module(BASELINE_REV)
    old: list[float] = []
    new: list[float] = []
    for _ in range(args.rounds):
        old.append(asyncio.run(_round(baseline, args.requests, args.concurrency)))
        new.append(asyncio.run(_round(current, args.requests, args.concurrency)))
    per_old, per_new = min(old) / args.requests * 1e6, min(new) / args.requests * 1e6
    h.header(
        "client_overhead: the partner client's CPU per request (no socket: httpx.MockTransport)",
        requests=f"{args.requests:,} per round, {args.concurrency} in flight, best of {args.rounds} rounds",
        baseline=f"extract/http.py at {BASELINE_REV}",
    )
    h.table(
        ["client", "CPU µs per request", "x baseline"],
        [
            (f"extract/http.py at {BASELINE_REV}", per_old, "1.00"),
            ("extract/http.py now", per_new, f"{per_old / per_new:.2f}"),
        ],
    )
    ratio = per_old / per_new
    print(
        f"client requests per CPU second = {ratio:.2f} x the baseline's; goal >= 1.0: {h.verdict(ratio, 1.0)}"
    )
    h.write_figures(
        args.json,
        [
            h.figure(
                "client requests per CPU second vs the previous client",
                1e6 / per_new,
                1e6 / per_old,
                goal=1.0,
                size=args.requests,
            )
        ],
    )


if __name__ == "__main__":
    main()
