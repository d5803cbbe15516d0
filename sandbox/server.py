"""Serve both partner simulators on one port: Biomesight at /api/v1, Gencove at /api/v2, admin at /_sandbox.

`SandboxServer` runs the aiohttp app on its own event loop in a background thread (for tests and the demo);
`serve` runs it in the foreground for `kitsync sandbox serve`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from aiohttp import web

from sandbox import admin, biomesight_api, gencove_api
from sandbox.faults import FaultPlan, FaultRule, fault_middleware, parse_fault_spec
from sandbox.model import Clock, World
from sandbox.state import STATE_KEY, SandboxState
from sandbox.tokens import TokenStore
from sandbox.variance import Variance, variance_middleware, vary_world
from sandbox.webhooks import WebhookDispatcher
from sandbox.wire import json_response, parse_iso_datetime

log = logging.getLogger("sandbox")
Handler = Any


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors in the partner's own shape: `{"error"}` for Biomesight and admin, `{"detail"}` for Gencove."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error_body(request, exc.status, exc.text or exc.reason, exc.headers)
    except Exception:
        log.exception("sandbox handler failed for %s %s", request.method, request.path)
        return _error_body(request, 500, "Internal server error", None)


def _error_body(request: web.Request, status: int, message: str, headers: Any) -> web.Response:
    kept = {"Allow": headers["Allow"]} if headers is not None and "Allow" in headers else None
    text = message.removeprefix(f"{status}: ").strip()
    if request.path.startswith(gencove_api.PREFIX):
        detail = {404: "Not found.", 405: f'Method "{request.method}" not allowed.'}.get(status, text)
        return json_response({"detail": detail}, status=status, headers=kept)
    text = {404: "Not found", 405: f"Method {request.method} not allowed"}.get(status, text)
    return json_response({"error": text}, status=status, headers=kept)


def build_app(state: SandboxState) -> web.Application:
    """The aiohttp application serving both partners and the admin endpoints for `state`."""
    middlewares = [error_middleware, fault_middleware(state.faults, state.traffic)]
    if state.variance is not None:  # innermost: faults still break what the variance spelled
        middlewares.append(variance_middleware(state.variance))
    app = web.Application(middlewares=middlewares)
    app[STATE_KEY] = state
    biomesight_api.add_routes(app)
    gencove_api.add_routes(app)
    admin.add_routes(app)

    async def start_webhooks(app: web.Application) -> None:
        if state.webhooks is not None:
            await state.webhooks.start()

    async def stop_webhooks(app: web.Application) -> None:
        if state.webhooks is not None:
            await state.webhooks.stop()

    app.on_startup.append(start_webhooks)
    app.on_cleanup.append(stop_webhooks)
    return app


def _fault_plan(faults: FaultPlan | Iterable[str | FaultRule] | None, seed: int) -> FaultPlan:
    if isinstance(faults, FaultPlan):
        return faults
    plan = FaultPlan(seed=seed)
    for fault in faults or ():
        plan.add(parse_fault_spec(fault) if isinstance(fault, str) else fault)
    return plan


def make_state(
    world: World,
    *,
    faults: FaultPlan | Iterable[str | FaultRule] | None = None,
    fault_seed: int | None = None,
    token_ttl: float | None = None,
    biomesight_webhook_url: str | None = None,
    gencove_webhook_url: str | None = None,
    webhook_retry_delay: float = 0.5,
    webhook_max_attempts: int = 5,
    variance: Variance | None = None,
) -> SandboxState:
    """The shared state for a server over `world` (webhooks are always available, targets optional)."""
    dispatcher = WebhookDispatcher(
        biomesight_webhook_url,
        gencove_webhook_url,
        retry_delay=webhook_retry_delay,
        max_attempts=webhook_max_attempts,
    )
    if variance is not None:
        dispatcher.respell = variance.respell
    return SandboxState(
        world=world,
        variance=variance,
        tokens=TokenStore(token_ttl),
        faults=_fault_plan(faults, world.seed if fault_seed is None else fault_seed),
        webhooks=dispatcher,
    )


class SandboxServer:
    """Both partner APIs on 127.0.0.1 in a background thread; use as a context manager."""

    def __init__(
        self,
        world: World,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | Iterable[str | FaultRule] | None = None,
        *,
        fault_seed: int | None = None,
        token_ttl: float | None = None,
        biomesight_webhook_url: str | None = None,
        gencove_webhook_url: str | None = None,
        webhook_retry_delay: float = 0.5,
        webhook_max_attempts: int = 5,
        variance: Variance | None = None,
    ) -> None:
        self.state = make_state(
            world,
            faults=faults,
            fault_seed=fault_seed,
            token_ttl=token_ttl,
            biomesight_webhook_url=biomesight_webhook_url,
            gencove_webhook_url=gencove_webhook_url,
            webhook_retry_delay=webhook_retry_delay,
            webhook_max_attempts=webhook_max_attempts,
            variance=variance,
        )
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # lifecycle
    def start(self) -> SandboxServer:
        """Bind the port and start serving; returns once requests are accepted."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sandbox-server", daemon=True)
        self._thread.start()
        self.port = self._call(self._start_site())
        return self

    async def _start_site(self) -> int:
        self._runner = web.AppRunner(build_app(self.state), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._requested_port)
        await site.start()
        return _bound_port(self._runner)

    def stop(self) -> None:
        """Stop serving and end the background thread."""
        if self._loop is None:
            return
        if self._runner is not None:
            self._call(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop.close()
        self._loop = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _call(self, coroutine: Any, timeout: float | None = 60) -> Any:
        if self._loop is None:
            raise RuntimeError("the sandbox server is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    # what tests use
    @property
    def base_url(self) -> str:
        """`http://host:port`: both partners' base URL (they add /api/v1 and /api/v2)."""
        if self.port is None:
            raise RuntimeError("the sandbox server is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def world(self) -> World:
        """The simulated world."""
        return self.state.world

    @property
    def clock(self) -> Clock:
        """The virtual clock."""
        return self.state.world.clock

    def advance(self, delta: timedelta) -> datetime:
        """Move the virtual clock forward and queue the webhook pushes now due; returns the new now."""
        moved = self._call(_on_loop(admin.move_clock, self.state, delta=delta))
        return datetime.fromisoformat(moved["now"])

    def set_time(self, moment: datetime) -> datetime:
        """Jump the virtual clock forward to `moment` (never back)."""
        moved = self._call(_on_loop(admin.move_clock, self.state, to=moment))
        return datetime.fromisoformat(moved["now"])

    def add_fault(self, fault: str | FaultRule) -> FaultRule:
        """Add a fault rule (a spec like `biomesight.results:429:0.1` or a `FaultRule`)."""
        rule = parse_fault_spec(fault) if isinstance(fault, str) else fault
        return self.state.faults.add(rule)

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self.state.faults.clear()

    def request_counts(self) -> dict[str, dict[str, int]]:
        """`{endpoint: {status: n}}` since start or the last reset."""
        return self.state.traffic.counts()

    def reset_request_counts(self) -> None:
        """Count from zero again."""
        self.state.traffic.reset()

    def set_webhook_urls(self, biomesight: str | None = None, gencove: str | None = None) -> None:
        """Point webhook pushes at receivers (None leaves a partner's pushes off)."""
        dispatcher = self.state.webhooks
        if dispatcher is not None:
            dispatcher.biomesight_url = biomesight
            dispatcher.gencove_url = gencove

    def wait_webhooks(self, timeout: float = 30.0) -> None:
        """Block until every queued webhook push was delivered or abandoned."""
        if self.state.webhooks is not None:
            self._call(asyncio.wait_for(self.state.webhooks.wait_idle(), timeout), timeout=timeout + 5)


async def _on_loop(function: Any, *args: Any, **kwargs: Any) -> Any:
    return function(*args, **kwargs)


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    raise RuntimeError("the sandbox server did not bind a TCP port")


# --- the foreground command -------------------------------------------------------------------------------


def serve(
    host: str = "127.0.0.1",
    port: int = 8700,
    seed: int = 7,
    kits: int = 500,
    faults: Iterable[str] = (),
    *,
    gencove_samples: int | None = None,
    start: datetime | None = None,
    fault_seed: int | None = None,
    token_ttl: float | None = None,
    biomesight_webhook_url: str | None = None,
    gencove_webhook_url: str | None = None,
    variance: bool = False,
) -> None:
    """Generate a world and serve it until interrupted, printing base URLs and credentials first."""
    from sandbox.world import DEFAULT_START, generate_world

    world = generate_world(
        seed=seed, kits=kits, gencove_samples=gencove_samples, start=start or DEFAULT_START
    )
    if variance:
        vary_world(world)
    state = make_state(
        world,
        variance=Variance.from_seed(seed) if variance else None,
        faults=list(faults),
        fault_seed=fault_seed,
        token_ttl=token_ttl,
        biomesight_webhook_url=biomesight_webhook_url,
        gencove_webhook_url=gencove_webhook_url,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(state, host, port))


async def _serve_forever(state: SandboxState, host: str, port: int) -> None:
    runner = web.AppRunner(build_app(state), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = _bound_port(runner)
    _print_banner(state, f"http://{host}:{bound}")
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def _print_banner(state: SandboxState, base_url: str) -> None:
    summary = admin.accounts_summary()
    world = state.world
    lines = [
        f"kitsync sandbox serving on {base_url} (virtual now {state.now().isoformat()}, seed {world.seed})",
        f"  Biomesight: {base_url}/api/v1   ({len(world.orders)} orders, {len(world.kits)} kits)",
        f"  Gencove:    {base_url}/api/v2   ({len(world.samples)} samples)",
        f"  Admin:      {base_url}/_sandbox/clock | faults | requests | webhooks | export.csv | accounts",
    ]
    for account in summary["biomesight"]:
        lines.append(f"  Biomesight client {account['client_id']!r} secret {account['client_secret']!r}")
    for account in summary["gencove"]:
        lines.append(f"  Gencove API key {account['api_key']!r} projects {', '.join(account['project_ids'])}")
    lines.append(f"  Biomesight webhook bearer token {summary['biomesight_webhook_token']!r}")
    lines.append(f"  Gencove webhook signing secret {summary['gencove_webhook_secret']!r}")
    if state.variance is not None:
        caps = ", ".join(f"{name} {cap}" for name, cap in sorted(state.variance.caps.items()))
        lines.append(f"  Variance profile (seed {state.variance.seed}): pages capped at {caps}")
    for rule in state.faults.rules():
        lines.append(
            f"  Fault: {rule.endpoint} {rule.kind} rate={rule.rate} count={rule.count} {rule.params}"
        )
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `sandbox serve` options (the CLI in flows/ mounts them)."""
    parser.add_argument("--host", default="127.0.0.1", help="Interface to bind (default 127.0.0.1).")
    parser.add_argument("--port", type=int, default=8700, help="Port to bind (0 picks a free one).")
    parser.add_argument("--seed", type=int, default=7, help="Seed of the generated world.")
    parser.add_argument("--kits", type=int, default=500, help="Biomesight kits to generate.")
    parser.add_argument(
        "--gencove-samples", type=int, default=None, help="Gencove samples (default: derived)."
    )
    parser.add_argument("--start", default=None, help="Virtual start time, ISO 8601 (default: the world's).")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="ENDPOINT:KIND[:RATE][:K=V,...]",
        help="Inject a fault, e.g. biomesight.results:429:0.1 (repeatable).",
    )
    parser.add_argument("--fault-seed", type=int, default=None, help="Seed of fault draws (default: --seed).")
    parser.add_argument("--token-ttl", type=float, default=None, help="Biomesight token lifetime in seconds.")
    parser.add_argument(
        "--biomesight-webhook-url", default=None, help="Where to push Biomesight status webhooks."
    )
    parser.add_argument("--gencove-webhook-url", default=None, help="Where to push Gencove webhooks.")
    parser.add_argument(
        "--variance",
        action="store_true",
        help="Use what the partner docs leave open (capped pages, reordered links, timestamp spellings, "
        "extra fields, both documented shapes...), deterministically from --seed.",
    )


def run_from_args(args: argparse.Namespace) -> None:
    """Run `serve` with options parsed by `add_arguments`."""
    start = parse_iso_datetime(args.start) if args.start else None
    if args.start and start is None:
        raise SystemExit(f"--start {args.start!r} is not an ISO 8601 timestamp")
    serve(
        args.host,
        args.port,
        args.seed,
        args.kits,
        args.fault,
        gencove_samples=args.gencove_samples,
        start=start,
        fault_seed=args.fault_seed,
        token_ttl=args.token_ttl,
        biomesight_webhook_url=args.biomesight_webhook_url,
        gencove_webhook_url=args.gencove_webhook_url,
        variance=args.variance,
    )
