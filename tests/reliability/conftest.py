"""The reliability suite's shared pieces: impatient retry settings, and the figures printed at the end."""

from __future__ import annotations

import pytest

from tests.reliability.figures import FIGURES

# Retries as production does them, only faster: a few attempts, millisecond backoff, one-second timeouts.
FAST_RETRIES = {
    "KITSYNC_MAX_RETRIES": "2",
    "KITSYNC_RETRY_BASE_DELAY": "0.01",
    "KITSYNC_RETRY_MAX_DELAY": "0.05",
    "KITSYNC_HTTP_TIMEOUT": "1.0",
}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the figures whenever reliability tests ran (also under `make test`, without -s)."""
    if not FIGURES.touched:
        return
    terminalreporter.section("kitsync reliability figures")
    for line in FIGURES.lines():
        terminalreporter.write_line(line)
