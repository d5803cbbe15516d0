"""Settings: environment parsing, sandbox defaults, and secrets that never print."""

from __future__ import annotations

import pytest

from flows.settings import (
    SANDBOX_BIOMESIGHT_CLIENT_ID,
    SANDBOX_BIOMESIGHT_CLIENT_SECRET,
    SANDBOX_GENCOVE_API_KEY,
    SANDBOX_GENCOVE_PROJECT_IDS,
    Settings,
)
from sandbox import accounts


def test_defaults_match_the_sandbox_accounts(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("KITSYNC_"):
            monkeypatch.delenv(name)
    settings = Settings()
    assert settings.biomesight_client_id == accounts.BIOMESIGHT_CLIENT_ID == SANDBOX_BIOMESIGHT_CLIENT_ID
    assert settings.biomesight_client_secret.get_secret_value() == accounts.BIOMESIGHT_CLIENT_SECRET
    assert SANDBOX_BIOMESIGHT_CLIENT_SECRET == accounts.BIOMESIGHT_CLIENT_SECRET
    assert settings.gencove_api_key.get_secret_value() == accounts.GENCOVE_API_KEY == SANDBOX_GENCOVE_API_KEY
    assert tuple(settings.gencove_project_ids) == accounts.GENCOVE_PROJECT_IDS == SANDBOX_GENCOVE_PROJECT_IDS


def test_environment_overrides_and_comma_separated_projects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITSYNC_DATA_DIR", "/srv/kitsync")
    monkeypatch.setenv("KITSYNC_GENCOVE_PROJECT_IDS", " p-1, p-2 ,,p-3")
    monkeypatch.setenv("KITSYNC_BATCH_SIZE", "50")
    settings = Settings()
    assert str(settings.data_dir) == "/srv/kitsync"
    assert settings.gencove_project_ids == ["p-1", "p-2", "p-3"]
    assert settings.batch_size == 50


def test_secrets_never_appear_when_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITSYNC_BIOMESIGHT_CLIENT_SECRET", "zz-client-secret-zz")
    monkeypatch.setenv("KITSYNC_GENCOVE_API_KEY", "zz-api-key-zz")
    monkeypatch.setenv("KITSYNC_PSEUDONYM_KEY", "zz-pseudonym-key-zz")
    settings = Settings()
    shown = f"{settings} {settings!r} {settings.model_dump()} {settings.model_dump_json()}"
    for secret in ("zz-client-secret-zz", "zz-api-key-zz", "zz-pseudonym-key-zz"):
        assert secret not in shown
    assert settings.gencove_api_key.get_secret_value() == "zz-api-key-zz"


def test_invalid_values_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITSYNC_BATCH_SIZE", "0")
    with pytest.raises(ValueError, match="batch_size"):
        Settings()
