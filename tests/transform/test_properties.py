"""Property tests: arbitrary JSON-ish payloads and CSV bytes never make a transform raise.

Every output is either rows in the declared schema or a quarantine row that says why.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transform.biomesight import transform_biomesight_results, transform_biomesight_statuses
from transform.gencove import (
    transform_gencove_ancestry,
    transform_gencove_project_samples,
    transform_gencove_quality_controls,
    transform_gencove_sample_statuses,
    transform_gencove_samples,
    transform_gencove_trait_scores,
)
from transform.platform import transform_platform_export
from transform.result import TransformResult
from transform.schemas import TABLES
from transform.taxonomy import DIALECTS, transform_biomesight_taxonomy, transform_biomesight_taxonomy_base64

KEY = b"property-test-key-0123456789"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
timestamps = st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()) | st.sampled_from(
    ["2025-10-31 12:34:56.394485+00:00", "2025-07-10T14:22:00Z", "2025-07-01", "not a date", ""]
)
json_values = st.recursive(
    scalars | timestamps,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _objects(*keys: str) -> st.SearchStrategy[Any]:
    """Objects that use the keys a transform looks for (with arbitrary values), or anything at all."""
    return st.fixed_dictionaries({}, optional=dict.fromkeys(keys, json_values)) | json_values


def _assert_contract(result: TransformResult) -> None:
    for name, table in result.tables.items():
        assert table.schema == TABLES[name].schema, name
    assert all(result.quarantine.column("detail").to_pylist())


@PROPERTY_SETTINGS
@given(st.lists(_objects("kit_id", "order_id", "status", "description", "date"), max_size=5))
def test_biomesight_statuses_never_raise(payloads: list[Any]) -> None:
    result = transform_biomesight_statuses(payloads, source="poll", observed_at=NOW)
    _assert_contract(result)
    accounted = result.table("status_events").num_rows + result.quarantine.num_rows
    assert min(len(payloads), 1) <= accounted <= len(payloads)  # identical payloads collapse to one row


@PROPERTY_SETTINGS
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=6), _objects("scores", "recommendations", "general"), max_size=4
    )
)
def test_biomesight_results_never_raise(payloads: dict[str, Any]) -> None:
    result = transform_biomesight_results(payloads, observed_at=NOW)
    _assert_contract(result)
    handled = set(result.table("results").column("kit_id").to_pylist()) | set(
        result.quarantine.column("entity_id").to_pylist()
    )
    assert handled == set(payloads)


@PROPERTY_SETTINGS
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(
                [
                    "order_id",
                    "kit_id",
                    "purchase_date",
                    "sample_date",
                    "bristol_scale",
                    "customer_id",
                    "country_code",
                ]
            ),
            st.text(max_size=12) | timestamps,
        ),
        max_size=5,
    )
)
def test_platform_export_never_raises(rows: list[dict[str, str]]) -> None:
    _assert_contract(transform_platform_export(rows, key=KEY, observed_at=NOW))


gencove_items = _objects(
    "id",
    "client_id",
    "created",
    "modified",
    "hidden",
    "failed_qc",
    "last_status",
    "archive_last_status",
    "project",
    "files",
    "metadata",
)


@PROPERTY_SETTINGS
@given(st.lists(gencove_items, max_size=4), st.dictionaries(st.text(max_size=5), json_values, max_size=3))
def test_gencove_samples_never_raise(items: list[Any], metadata: dict[str, Any]) -> None:
    _assert_contract(transform_gencove_project_samples(items, project_id="p", key=KEY, observed_at=NOW))
    _assert_contract(transform_gencove_samples(items, key=KEY, observed_at=NOW, metadata_by_sample=metadata))


@PROPERTY_SETTINGS
@given(st.dictionaries(st.text(min_size=1, max_size=5), json_values, max_size=3))
def test_gencove_per_sample_payloads_never_raise(payloads: dict[str, Any]) -> None:
    _assert_contract(transform_gencove_sample_statuses(payloads, observed_at=NOW))
    _assert_contract(transform_gencove_quality_controls(payloads, observed_at=NOW))
    _assert_contract(transform_gencove_trait_scores(payloads, observed_at=NOW))
    _assert_contract(transform_gencove_ancestry(payloads, key=KEY, observed_at=NOW))


csv_cells = (
    st.text(alphabet=st.characters(codec="utf-8"), max_size=10)
    | st.floats(allow_nan=True).map(str)
    | (st.integers(min_value=-5, max_value=10**6).map(str))
)
csv_texts = st.builds(
    lambda header, rows: "\n".join([",".join(header), *(",".join(row) for row in rows)]),
    st.sampled_from(list(DIALECTS.values())).map(list) | st.lists(st.text(max_size=6), max_size=4),
    st.lists(st.lists(csv_cells, max_size=7), max_size=6),
)


@PROPERTY_SETTINGS
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=5), st.binary(max_size=200) | csv_texts.map(str.encode), max_size=3
    )
)
def test_taxonomy_never_raises_and_accounts_for_every_kit(csvs: dict[str, bytes]) -> None:
    result = transform_biomesight_taxonomy(csvs, observed_at=NOW)
    _assert_contract(result)
    parsed = set(result.table("taxonomy").column("kit_id").to_pylist())
    quarantined = set(result.quarantine.column("entity_id").to_pylist())
    assert parsed | quarantined == set(csvs)
    assert not parsed & quarantined
    abundances = result.table("taxonomy").column("relative_abundance").to_pylist()
    assert all(value >= 0 for value in abundances)


@PROPERTY_SETTINGS
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=5), st.text(max_size=40) | st.binary(max_size=40), max_size=3
    )
)
def test_taxonomy_base64_never_raises(texts: dict[str, Any]) -> None:
    _assert_contract(transform_biomesight_taxonomy_base64(texts, observed_at=NOW))
