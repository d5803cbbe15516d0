"""Wiring from settings to working parts: paths, the pseudonym key and partner clients, built at run time.

Flows call these inside a run (never at import time), so a deployment picks up its environment when it runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from extract.biomesight import AsyncBiomesightClient
from extract.gencove import AsyncGencoveClient
from extract.http import timeouts
from extract.retry import Backoff, give_up_seconds
from flows.limits import partner_budget, requests_in_flight
from flows.settings import Settings
from warehouse.publish import warehouse_file


@dataclass(frozen=True)
class DataPaths:
    """Where kitsync keeps its files under the data directory."""

    data_dir: Path
    warehouse_kind: str = "embedded"
    lake_uri: str | None = None  # KITSYNC_LAKE_URI: shared by every worker; None keeps it in data_dir

    @property
    def lake(self) -> Path | str:
        """The root of everything a run needs to carry on (lake, landing, backfill ledgers): machine-free."""
        return self.lake_uri or self.data_dir

    @property
    def warehouse(self) -> Path:
        """The analysts' warehouse: a DuckDB file or a DuckLake catalog (KITSYNC_WAREHOUSE)."""
        return warehouse_file(self.data_dir / "warehouse", self.warehouse_kind)

    @property
    def landing(self) -> Path | str:
        return self.lake


SECRET_FIELDS = (
    "biomesight_client_secret",
    "gencove_api_key",
    "pseudonym_key",
    "biomesight_webhook_token",
    "gencove_webhook_secret",
)


async def run_settings() -> Settings:
    """The settings of a run: the environment's, with secrets named by `KITSYNC_*_BLOCK` loaded from Prefect
    Secret blocks. Called when a run starts, so a rotated secret is picked up by the next run."""
    settings = Settings()
    loaded: dict[str, SecretStr] = {}
    for name in SECRET_FIELDS:
        block = getattr(settings, f"{name}_block")
        if block:
            from prefect.blocks.system import Secret

            secret = await Secret.aload(block)
            loaded[name] = SecretStr(str(secret.get()))
    return settings.model_copy(update=loaded) if loaded else settings


def data_paths(settings: Settings) -> DataPaths:
    return DataPaths(settings.data_dir.absolute(), settings.warehouse, settings.lake_uri)


def pseudonym_key(settings: Settings) -> bytes:
    return settings.pseudonym_key.get_secret_value().encode()


def backoff(settings: Settings) -> Backoff:
    """The retry backoff the settings ask for (tests and impatient deployments shorten it)."""
    return Backoff(base=settings.retry_base_delay, cap=settings.retry_max_delay)


def unreachable_after(settings: Settings) -> float:
    """How long, at most, a run keeps trying a partner it cannot reach before it fails naming the URL (a run
    stops at the first request that gives up)."""
    return give_up_seconds(
        settings.max_retries, backoff(settings), min(settings.connect_timeout, settings.http_timeout)
    )


def _http_options(settings: Settings, partner: str) -> dict[str, Any]:
    """What both partners' async clients take from the settings: timeouts, retries, concurrency, transport."""
    return {
        "timeout": timeouts(settings.http_timeout, settings.connect_timeout),
        "max_retries": settings.max_retries,
        "backoff": backoff(settings),
        "max_concurrency": requests_in_flight(settings, partner),
        "use_aiohttp": settings.use_aiohttp,
    }


@dataclass(frozen=True)
class _RunClient:
    """A partner client a run opened for its batch tasks, and the event loop it belongs to."""

    loop: asyncio.AbstractEventLoop
    client: Any


# partner -> the run's open client (set by `run_clients` around a sync's batches; empty outside a run)
_RUN_CLIENTS: ContextVar[dict[str, _RunClient] | None] = ContextVar("kitsync_run_clients", default=None)


def _run_client(partner: str) -> Any | None:
    """The run's open client of `partner`, when one is open in this context and this event loop: a batch
    task elsewhere (a Dask worker, another loop) never sees one and opens its own."""
    shared = (_RUN_CLIENTS.get() or {}).get(partner)
    if shared is None:
        return None
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return shared.client if shared.loop is loop else None


@asynccontextmanager
async def run_clients(settings: Settings, *partners: str) -> AsyncIterator[None]:
    """Open each partner's client once for a run; its batch tasks that run in this process use it.

    A client per batch task asked Biomesight for a new token per batch and built a new connection pool each
    time (~1.6 ms a poll against the bare loop's ~1.0 ms at 100k tracked kits). With one client per run:
    one token, one pool, and the batches that run at once share its `KITSYNC_CONCURRENCY` requests in flight
    (one batch may use them all while the other drains or writes). The client holds the partner's request
    budget (`partner_budget`) while open, so for the whole sync part of the run, as one batch client did for
    its batch. Where batch tasks run in other processes (Dask) nothing is opened here: each batch there opens
    its own client with its share of the concurrency and holds its own slots; a run client would only sit on
    slots those batches need.
    """
    from flows.fanout import batches_run_here

    if not partners or not batches_run_here():
        yield
        return
    loop = asyncio.get_running_loop()
    async with AsyncExitStack() as stack:
        opened = dict(_RUN_CLIENTS.get() or {})
        for partner in partners:
            opened[partner] = _RunClient(loop, await stack.enter_async_context(_OPENERS[partner](settings)))
        token = _RUN_CLIENTS.set(opened)
        try:
            yield
        finally:
            _RUN_CLIENTS.reset(token)


def async_biomesight_client(settings: Settings) -> AbstractAsyncContextManager[AsyncBiomesightClient]:
    """The run's Biomesight client when the run opened one here (`run_clients`), else a new one holding its
    share of the partner's request budget while open."""
    return _partner_client("biomesight", settings)


def async_gencove_client(settings: Settings) -> AbstractAsyncContextManager[AsyncGencoveClient]:
    """The run's Gencove client when the run opened one here (`run_clients`), else a new one holding its
    share of the partner's request budget while open."""
    return _partner_client("gencove", settings)


@asynccontextmanager
async def _partner_client(partner: str, settings: Settings) -> AsyncIterator[Any]:
    shared = _run_client(partner)
    if shared is not None:
        yield shared
        return
    async with _OPENERS[partner](settings) as client:
        yield client


@asynccontextmanager
async def _open_biomesight_client(settings: Settings) -> AsyncIterator[AsyncBiomesightClient]:
    async with (
        partner_budget(settings, "biomesight"),
        AsyncBiomesightClient(
            settings.biomesight_base_url,
            settings.biomesight_client_id,
            settings.biomesight_client_secret.get_secret_value(),
            **_http_options(settings, "biomesight"),
        ) as client,
    ):
        yield client


@asynccontextmanager
async def _open_gencove_client(settings: Settings) -> AsyncIterator[AsyncGencoveClient]:
    async with (
        partner_budget(settings, "gencove"),
        AsyncGencoveClient(
            settings.gencove_base_url,
            settings.gencove_api_key.get_secret_value(),
            **_http_options(settings, "gencove"),
        ) as client,
    ):
        yield client


_OPENERS: dict[str, Callable[[Settings], AbstractAsyncContextManager[Any]]] = {
    "biomesight": _open_biomesight_client,
    "gencove": _open_gencove_client,
}
