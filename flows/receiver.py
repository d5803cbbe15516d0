"""Wiring of the webhook receiver (`kitsync webhooks serve`, the demo): settings to receiver to landing."""

from __future__ import annotations

from starlette.applications import Starlette

from extract.webhooks import create_webhook_app
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
