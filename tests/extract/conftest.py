"""Fixtures for the extract unit tests."""

from __future__ import annotations

import pytest

from tests.extract.fakes import FakeBiomesight, FakeGencove


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake_biomesight() -> FakeBiomesight:
    return FakeBiomesight()


@pytest.fixture
def fake_gencove() -> FakeGencove:
    return FakeGencove()


@pytest.fixture
def sleeps() -> list[float]:
    """Where the clients' injected `sleep` records each requested delay."""
    return []
