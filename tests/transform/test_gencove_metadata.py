"""`sample-metadata/{id}` answers: only `metadata` is the sample's, and empty metadata is recorded."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from transform.gencove import transform_gencove_samples

KEY = b"k" * 32
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def kits(metadata_by_sample: dict[str, object]) -> dict[str, dict[str, object]]:
    result = transform_gencove_samples([], key=KEY, observed_at=NOW, metadata_by_sample=metadata_by_sample)
    return {row["kit_id"]: row for row in result.table("kits").to_pylist()}


def test_fields_beside_metadata_are_not_the_samples() -> None:
    """A partner adding a field next to `metadata` (an API version, links) once had the whole answer kept as
    the sample's metadata."""
    rows = kits({"s-1": {"metadata": {"channel": "web"}, "channel": "app", "schema_version": 3, "links": {}}})
    assert json.loads(str(rows["s-1"]["metadata_json"])) == {"channel": "web"}


def test_empty_metadata_is_recorded_as_read() -> None:
    """Empty metadata once became NULL, the planner's mark of details never read: the sample was fetched
    again on every run."""
    rows = kits({"s-1": {"metadata": {}}, "s-2": {"metadata": None}})
    assert rows["s-1"]["metadata_json"] == "{}"
    assert rows["s-2"]["metadata_json"] == "{}"
