"""Fixtures for the warehouse tests: the small per-merge-mode table declarations of tables.py."""

from __future__ import annotations

import pytest

from tests.warehouse.tables import SPECS
from transform.schemas import TableSpec


@pytest.fixture
def specs() -> dict[str, TableSpec]:
    return dict(SPECS)
