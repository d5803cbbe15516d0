"""The reliability suite's shared pieces: impatient retry settings (its figures are printed by the top-level
tests/conftest.py, which the pytest-xdist controller loads too)."""

from __future__ import annotations

# Retries as production does them, only faster: a few attempts, millisecond backoff, one-second timeouts.
FAST_RETRIES = {
    "KITSYNC_MAX_RETRIES": "2",
    "KITSYNC_RETRY_BASE_DELAY": "0.01",
    "KITSYNC_RETRY_MAX_DELAY": "0.05",
    "KITSYNC_HTTP_TIMEOUT": "1.0",
}
