"""The sandbox's documented partner accounts: fixed values, independent of the world's seed.

Ours is the account kitsync's settings default to; the "other" accounts own kits and projects that exist but
do not belong to us, so 403 "not your kit" and foreign projects are real cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BIOMESIGHT_CLIENT_ID = "kitsync-sandbox"
BIOMESIGHT_CLIENT_SECRET = "sandbox-client-secret"  # noqa: S105 - public sandbox credential
OTHER_BIOMESIGHT_CLIENT_ID = "other-partner"
OTHER_BIOMESIGHT_CLIENT_SECRET = "other-partner-secret"  # noqa: S105 - public sandbox credential

GENCOVE_API_KEY = "sandbox-gencove-api-key"
OTHER_GENCOVE_API_KEY = "other-gencove-api-key"
GENCOVE_PROJECT_IDS = (
    "6f1c2a3b-4d5e-4f60-8a71-b2c3d4e5f601",
    "6f1c2a3b-4d5e-4f60-8a71-b2c3d4e5f602",
)
OTHER_GENCOVE_PROJECT_IDS = ("6f1c2a3b-4d5e-4f60-8a71-b2c3d4e5f6ff",)

# Token the platform gives Biomesight for its webhook pushes, and Gencove's webhook signing secret.
BIOMESIGHT_WEBHOOK_TOKEN = "sandbox-biomesight-webhook-token"  # noqa: S105 - public sandbox credential
GENCOVE_WEBHOOK_SECRET = "sandbox-gencove-webhook-secret"  # noqa: S105 - public sandbox credential


@dataclass(frozen=True)
class BiomesightAccount:
    """A Biomesight partner: OAuth2 client credentials."""

    client_id: str
    client_secret: str
    name: str


@dataclass(frozen=True)
class GencoveAccount:
    """A Gencove organisation: one API key and the projects it may see."""

    api_key: str
    name: str
    project_ids: tuple[str, ...] = field(default_factory=tuple)


BIOMESIGHT_ACCOUNTS = (
    BiomesightAccount(BIOMESIGHT_CLIENT_ID, BIOMESIGHT_CLIENT_SECRET, "kitsync platform"),
    BiomesightAccount(OTHER_BIOMESIGHT_CLIENT_ID, OTHER_BIOMESIGHT_CLIENT_SECRET, "another partner"),
)
GENCOVE_ACCOUNTS = (
    GencoveAccount(GENCOVE_API_KEY, "kitsync platform", GENCOVE_PROJECT_IDS),
    GencoveAccount(OTHER_GENCOVE_API_KEY, "another organisation", OTHER_GENCOVE_PROJECT_IDS),
)
