"""Keep Python's cyclic garbage collector off the objects a flow process starts with.

A flow process holds ~160k long-lived objects before it fetches anything (Prefect's engine and client,
pydantic models, pyarrow, duckdb, pandas). Every full collection walks all of them again, ~0.15 s here, and
a sync that builds tables triggers several: measured on a 1,000-kit first sync, 5 full collections cost
2.0 s when the process also held other long-lived objects, 0.27 s once they were frozen. `gc.freeze()` moves
what is alive into a permanent generation the collector skips; later garbage is collected as before.
"""

from __future__ import annotations

import atexit
import functools
import gc


@functools.cache
def freeze_startup_objects() -> None:
    """Freeze what is alive now, once per process (later calls do nothing).

    No `gc.collect()` first: it would cost a full collection to save a bounded amount of startup garbage.
    Unfrozen at exit, so extension modules (duckdb's nanobind) see their objects released as usual instead of
    reporting leaks.
    """
    gc.freeze()
    atexit.register(gc.unfreeze)
