"""The one settings object: every knob kitsync has, read from `KITSYNC_*` environment variables.

Defaults point at the sandbox (`kitsync sandbox serve`) and `./data`, so a first run needs no configuration.
Only `flows/` reads settings; everything below receives what it needs as arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# The sandbox's documented defaults (see sandbox/accounts.py; a test checks the two agree).
SANDBOX_URL = "http://127.0.0.1:8700"
SANDBOX_BIOMESIGHT_CLIENT_ID = "kitsync-sandbox"
SANDBOX_BIOMESIGHT_CLIENT_SECRET = "sandbox-client-secret"  # noqa: S105 - public sandbox credential
SANDBOX_GENCOVE_API_KEY = "sandbox-gencove-api-key"
SANDBOX_GENCOVE_PROJECT_IDS = (
    "6f1c2a3b-4d5e-4f60-8a71-b2c3d4e5f601",
    "6f1c2a3b-4d5e-4f60-8a71-b2c3d4e5f602",
)


class Settings(BaseSettings):
    """kitsync's configuration; secrets are `SecretStr` so that printing settings never shows them."""

    model_config = SettingsConfigDict(env_prefix="KITSYNC_", extra="ignore")

    data_dir: Path = Field(Path("./data"), description="Where the lake, raw landing and DuckDB file live.")
    warehouse: Literal["embedded", "ducklake"] = Field(
        "embedded",
        description="The analysts' warehouse: one DuckDB file republished by copy after each load "
        "(embedded), or a DuckLake catalog with parquet data whose loads cost what they change (ducklake).",
    )
    lake_uri: str | None = Field(
        None,
        description="Root of the lake, webhook landing and run state shared by every worker: a local path or "
        "s3://bucket/prefix (credentials and endpoint from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
        "AWS_ENDPOINT_URL, AWS_REGION). Default: the data directory (parquet under {data dir}/lake).",
    )
    biomesight_base_url: str = Field(SANDBOX_URL, description="Biomesight host root (paths add /api/v1).")
    biomesight_client_id: str = Field(
        SANDBOX_BIOMESIGHT_CLIENT_ID, description="Biomesight OAuth2 client id."
    )
    biomesight_client_secret: SecretStr = Field(
        SecretStr(SANDBOX_BIOMESIGHT_CLIENT_SECRET), description="Biomesight OAuth2 client secret."
    )
    gencove_base_url: str = Field(SANDBOX_URL, description="Gencove host root (paths add /api/v2).")
    gencove_api_key: SecretStr = Field(SecretStr(SANDBOX_GENCOVE_API_KEY), description="Gencove API key.")
    gencove_project_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(SANDBOX_GENCOVE_PROJECT_IDS),
        description="Gencove projects to sync (comma-separated in the environment).",
    )
    pseudonym_key: SecretStr = Field(
        SecretStr("sandbox-pseudonym-key"), description="HMAC key that turns customer ids into pseudonyms."
    )
    batch_size: int = Field(200, ge=1, description="Kits per Prefect task.")
    concurrency: int = Field(
        16, ge=1, description="HTTP requests a sync keeps in flight (its batches share them)."
    )
    partner_limits: bool = Field(
        False,
        description="Hold each partner's request budget across every worker and run through Prefect global "
        "concurrency limits (create them with `kitsync setup`; a missing limit fails the run). On for "
        "prefect.yaml's deployments.",
    )
    biomesight_request_budget: int = Field(
        16,
        ge=1,
        description="Biomesight requests in flight across all workers (with KITSYNC_PARTNER_LIMITS).",
    )
    gencove_request_budget: int = Field(
        16, ge=1, description="Gencove requests in flight across all workers (with KITSYNC_PARTNER_LIMITS)."
    )
    task_runner: str = Field(
        "default",
        description="Where batch tasks run: `default` (in the flow's process), `dask` (a local Dask cluster "
        "started for the run) or a Dask scheduler address such as tcp://10.0.0.5:8786.",
    )
    http_timeout: float = Field(30.0, gt=0, description="Seconds before an HTTP request times out.")
    connect_timeout: float = Field(
        5.0,
        gt=0,
        description="Seconds to open a connection to a partner (at most http_timeout): with the retries, "
        "how soon a run gives up on a partner it cannot reach.",
    )
    max_retries: int = Field(5, ge=0, description="Retries of a retriable HTTP failure before giving up.")
    retry_base_delay: float = Field(
        0.5, ge=0, description="First retry's backoff in seconds (then doubling)."
    )
    retry_max_delay: float = Field(30.0, ge=0, description="Longest backoff between two retries, in seconds.")
    use_aiohttp: bool = Field(
        True, description="Async clients on httpx-aiohttp's transport (~4x on loopback)."
    )
    gencove_cursor_overlap_minutes: int = Field(
        60, ge=0, description="How far before the newest `modified` seen each Gencove listing starts again."
    )
    biomesight_webhook_token: SecretStr = Field(
        SecretStr("sandbox-biomesight-webhook-token"),
        description="Bearer token Biomesight must present on its webhook pushes.",
    )
    gencove_webhook_secret: SecretStr = Field(
        SecretStr("sandbox-gencove-webhook-secret"),
        description="Secret Gencove signs its webhook pushes with.",
    )
    webhook_host: str = Field("127.0.0.1", description="Interface `kitsync webhooks serve` binds.")
    webhook_port: int = Field(8701, ge=0, le=65535, description="Port `kitsync webhooks serve` binds.")
    webhook_max_body_bytes: int = Field(256 * 1024, ge=1024, description="Largest webhook body accepted.")
    webhook_body_timeout_seconds: float = Field(
        30.0, gt=0, description="How long a webhook body may take to arrive before the answer is 408."
    )
    webhook_signature_tolerance_seconds: int = Field(
        300, ge=1, description="How old a Gencove webhook signature's timestamp may be."
    )
    gencove_cron: str | None = Field(
        None, description="Overrides prefect.yaml's Gencove sync schedule under `kitsync serve` (a cron)."
    )
    biomesight_cron: str | None = Field(
        None, description="Overrides prefect.yaml's Biomesight sync schedule under `kitsync serve` (a cron)."
    )
    load_every_rows: int = Field(
        200_000, ge=1, description="Rows a run writes between two loads (keeps a long run's memory flat)."
    )
    load_timeout_seconds: float = Field(
        900.0, gt=0, description="How long a load waits for another run's load to finish before giving up."
    )
    fetch_pdf: bool = Field(False, description="Also fetch Biomesight PDF reports into the lake.")
    report_after_sync: bool = Field(
        True,
        description="Re-render the cohort report (and its Prefect artifact) after a sync that changed data.",
    )

    biomesight_client_secret_block: str | None = Field(
        None, description="Prefect Secret block holding the Biomesight client secret (overrides it)."
    )
    gencove_api_key_block: str | None = Field(
        None, description="Prefect Secret block holding the Gencove API key (overrides it)."
    )
    pseudonym_key_block: str | None = Field(
        None, description="Prefect Secret block holding the pseudonym key (overrides it)."
    )
    biomesight_webhook_token_block: str | None = Field(
        None, description="Prefect Secret block holding the Biomesight webhook token (overrides it)."
    )
    gencove_webhook_secret_block: str | None = Field(
        None, description="Prefect Secret block holding the Gencove webhook secret (overrides it)."
    )

    @field_validator(
        "biomesight_client_secret",
        "gencove_api_key",
        "pseudonym_key",
        "biomesight_webhook_token",
        "gencove_webhook_secret",
    )
    @classmethod
    def _secret_is_set(cls, value: SecretStr) -> SecretStr:
        """An empty credential is a missing one: say so now, not as a 401 in the middle of a run."""
        if not value.get_secret_value().strip():
            raise ValueError("is empty; set it (or unset the variable to use the sandbox's default)")
        return value

    @field_validator("pseudonym_key")
    @classmethod
    def _pseudonym_key_is_long(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().encode()) < 16:
            raise ValueError("must be at least 16 bytes (a short key makes pseudonyms guessable)")
        return value

    @field_validator("biomesight_client_id")
    @classmethod
    def _client_id_is_set(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty; set it to your Biomesight client id")
        return value

    @field_validator("biomesight_base_url", "gencove_base_url")
    @classmethod
    def _is_http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL such as https://app.biomesight.com")
        return value.rstrip("/")

    @field_validator("task_runner")
    @classmethod
    def _is_task_runner(cls, value: str) -> str:
        if value in ("default", "dask") or value.startswith(("tcp://", "tls://")):
            return value
        raise ValueError(f"{value!r} is not `default`, `dask` or a Dask scheduler address (tcp://host:port)")

    @field_validator("gencove_project_ids", mode="before")
    @classmethod
    def _split_project_ids(cls, value: object) -> object:
        """Accept the comma-separated form an environment variable gives."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
