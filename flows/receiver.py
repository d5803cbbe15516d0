"""Wiring of the webhook receiver (`kitsync webhooks serve`, the demo): settings to receiver to landing, and
serving it from a background thread for the demo and the tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.applications import Starlette

from extract.webhooks import create_webhook_app, server_config
from flows.runtime import data_paths
from flows.settings import Settings
from warehouse.landing import open_landing


def webhook_app(settings: Settings) -> Starlette:
    """The receiver for both partners, landing each accepted event durably under the data directory."""
    store = open_landing(data_paths(settings).landing)
    return create_webhook_app(
        biomesight_token=settings.biomesight_webhook_token.get_secret_value(),
        gencove_secret=settings.gencove_webhook_secret.get_secret_value(),
        land=store.land,
        max_body_bytes=settings.webhook_max_body_bytes,
        gencove_tolerance_seconds=settings.webhook_signature_tolerance_seconds,
        body_timeout_seconds=settings.webhook_body_timeout_seconds,
    )


@contextmanager
def webhook_server_in_thread(app: Starlette, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `app` from a background thread; yields its base URL (`http://host:port`).

    The demo runs the receiver beside its syncs this way (and the tests do); a deployment serves it in the
    foreground (`kitsync webhooks serve`), so this lives with the wiring, not in `extract`.
    """
    server = uvicorn.Server(server_config(app, host, port, quiet=True))
    thread = threading.Thread(target=server.run, name="webhook-receiver", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the webhook receiver did not start")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()
    try:
        yield f"http://{host}:{bound[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
