"""Property tests for the transforms tests/transform/test_properties.py leaves out (what kitsync's own clients
send Biomesight, raw responses, personal-data scrubbing), and a census: every transform fed hostile unicode,
dates and numbers in the fields it reads. Each must return tables on their declared schemas or quarantine
rows with a reason, never raise; the inputs drawn are counted for the README's figures.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.figures import FIGURES
from tests.transform.test_properties import json_values
from transform import (
    scrub_json,
    transform_biomesight_kit_registrations,
    transform_biomesight_order_requests,
    transform_biomesight_results,
    transform_biomesight_statuses,
    transform_gencove_project_samples,
    transform_gencove_samples,
    transform_platform_export,
)
from transform.raw import RawResponse, transform_raw_responses
from transform.result import TransformResult
from transform.schemas import ALL_SPECS

KEY = b"reliability-property-key-0123456789"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
EXAMPLES = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# The nastiest texts for ids, statuses and names: control characters, RTL marks, surrogates' neighbours,
# emoji, NUL, SQL and path punctuation, very long strings.
hostile_text = st.text(max_size=40) | st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "K\x00ID",
        "\u202ekit",
        "💩" * 10,
        "'; DROP TABLE kits; --",
        "../../etc/passwd",
        "a" * 5000,
        "\ufeffBS1-ABC",
        "null",
        "NaN",
    ]
)
hostile_dates = st.sampled_from(
    [
        "0000-01-01",
        "9999-12-31T23:59:59Z",
        "2026-02-30",
        "2026-13-01T00:00:00Z",
        "1970-01-01T00:00:00+14:00",
        "2026-01-01T00:00:00-12:00",
        "2026-01-01 00:00:00.123456789",
        "1e10",
        "yesterday",
    ]
) | st.datetimes(timezones=st.none() | st.just(UTC)).map(str)
hostile_numbers = st.sampled_from(
    [0, -1, 2**63, -(2**63) - 1, 1e308, -1e308, float("inf"), float("nan"), 1e-320]
)
anything = hostile_text | hostile_dates | hostile_numbers | json_values


def _assert_contract(result: TransformResult) -> None:
    """Tables on their declared schemas; each quarantine row with a reason and a detail."""
    for name, table in result.tables.items():
        assert table.schema == ALL_SPECS[name].schema, name
    assert all(result.quarantine.column("reason").to_pylist())
    assert all(result.quarantine.column("detail").to_pylist())


def _objects(*keys: str) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries({}, optional=dict.fromkeys(keys, anything))


def _count(n: int = 1) -> None:
    FIGURES.add("bad_inputs", n, what="transform payloads (hypothesis)")


@EXAMPLES
@given(
    st.lists(
        _objects("order_id", "customer_id", "country_code", "purchase_date", "items", "shipping"), max_size=4
    )
)
def test_order_requests_never_raise(bodies: list[dict[str, Any]]) -> None:
    _assert_contract(transform_biomesight_order_requests(bodies, key=KEY, observed_at=NOW))
    _count()


@EXAMPLES
@given(
    st.lists(_objects("kit_id", "order_id", "sample_date", "sample_type", "bristol_scale", "bm_frequency"))
)
def test_kit_registrations_never_raise(bodies: list[dict[str, Any]]) -> None:
    _assert_contract(transform_biomesight_kit_registrations(bodies, observed_at=NOW))
    _count()


@EXAMPLES
@given(st.lists(st.tuples(hostile_text, hostile_text, json_values), max_size=4))
def test_raw_responses_keep_any_body_and_drop_personal_keys(items: list[tuple[str, str, Any]]) -> None:
    responses = [
        RawResponse("biomesight", endpoint or "e", entity or "x", body) for endpoint, entity, body in items
    ]
    _assert_contract(transform_raw_responses(responses, observed_at=NOW))
    _count()


@EXAMPLES
@given(
    json_values | st.dictionaries(st.sampled_from(["email", "phone", "name", "customer_id", "x"]), anything)
)
def test_scrubbing_never_raises_and_drops_personal_fields(value: Any) -> None:
    scrubbed = scrub_json(value, KEY)
    if isinstance(value, dict):
        assert isinstance(scrubbed, dict)
        assert not {"email", "phone", "name"} & set(scrubbed)  # personal fields go, whatever they hold
        if isinstance(value.get("customer_id"), str) and value["customer_id"].strip():
            assert scrubbed.get("customer_id") != value["customer_id"]  # ids stay only as pseudonyms
    _count()


@EXAMPLES
@given(
    st.lists(_objects("kit_id", "order_id", "status", "description", "date"), max_size=4),
    st.dictionaries(hostile_text, _objects("scores", "recommendations", "general"), max_size=3),
    st.lists(
        _objects("id", "client_id", "created", "modified", "last_status", "files", "metadata"), max_size=3
    ),
    st.lists(
        st.dictionaries(st.sampled_from(["order_id", "kit_id", "purchase_date", "customer_id"]), anything)
    ),
)
def test_every_partner_transform_survives_hostile_text_dates_and_numbers(
    statuses: list[Any], results: dict[str, Any], samples: list[Any], export: list[dict[str, Any]]
) -> None:
    _assert_contract(transform_biomesight_statuses(statuses, source="poll", observed_at=NOW))
    _assert_contract(transform_biomesight_results(results, observed_at=NOW))
    _assert_contract(transform_gencove_project_samples(samples, project_id="p", key=KEY, observed_at=NOW))
    _assert_contract(transform_gencove_samples(samples, key=KEY, observed_at=NOW))
    _assert_contract(transform_platform_export(export, key=KEY, observed_at=NOW))  # type: ignore[arg-type]
    _count(4)
