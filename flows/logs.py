"""The logger a flow's code writes to: Prefect's run logger inside a run, kitsync's own outside."""

from __future__ import annotations

import logging

logger = logging.getLogger("kitsync.flows")


def run_logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """Prefect's run logger inside a flow or task run (so the UI shows it), kitsync's own logger outside."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return logger
