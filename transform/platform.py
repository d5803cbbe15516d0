"""The platform's own records of what it sold: the order/kit export, and the orders and kit registrations
kitsync itself sent to Biomesight. They become orders, order_items, kits and platform-side status events.

These records carry names, e-mails, phones and addresses. Only the country, the dates, the sample facts and a
pseudonymous customer key leave this module; quarantine rows for them never carry an excerpt.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, time
from typing import Any, Final

from transform.pseudonym import optional_customer_key
from transform.result import TableRows, TransformResult
from transform.status import PLATFORM_PURCHASE_STATUS, PLATFORM_SAMPLE_COLLECTED_STATUS, to_stage
from transform.values import (
    ContractError,
    as_int,
    parse_date,
    parse_timestamp,
    shown,
    text_or_none,
)

EXPORT_COLUMNS: Final = (
    "order_id",
    "kit_id",
    "purchase_date",
    "sample_date",
    "sample_type",
    "bristol_scale",
    "bm_frequency",
    "customer_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "address_line1",
    "city",
    "postcode",
    "country_code",
)
BRISTOL_RANGE: Final = (1, 7)
DEFAULT_SAMPLE_TYPE: Final = "Gut"  # Biomesight's documented default for a registration without sample_type


def _country(value: object) -> str | None:
    code = text_or_none(value)
    return code.upper() if code else None


def _purchase(record: Mapping[str, Any], field: str) -> datetime:
    try:
        purchased_at = parse_timestamp(record.get(field))
    except ValueError as error:
        raise ContractError("bad_date", f"{field} {error}; expected e.g. 2025-06-15T10:30:00") from None
    if purchased_at is None:
        raise ContractError("bad_date", f"{field} is empty; every order needs its purchase date")
    return purchased_at


def _kit_facts(record: Mapping[str, Any]) -> dict[str, Any]:
    """Sample facts shared by the export and a registration (sample date, type, Bristol scale, frequency)."""
    try:
        sample_date = parse_date(record.get("sample_date"))
    except ValueError as error:
        raise ContractError("bad_date", f"sample_date {error}") from None
    try:
        bristol = as_int(record.get("bristol_scale"), bounds=BRISTOL_RANGE)
    except ValueError:
        raise ContractError(
            "bad_bristol_scale",
            f"bristol_scale {shown(record.get('bristol_scale'))} is not a whole number from 1 to 7",
        ) from None
    return {
        "sample_date": sample_date,
        "sample_type": text_or_none(record.get("sample_type")),
        "bristol_scale": bristol,
        "bm_frequency": text_or_none(record.get("bm_frequency")),
        "replaces_kit_id": text_or_none(record.get("replaces_kit_id")),
    }


def _order_event(rows: TableRows, provider: str, order_id: str, purchased_at: datetime, source: str) -> None:
    stage, reason = to_stage(provider, PLATFORM_PURCHASE_STATUS)
    rows.add(
        "status_events",
        {
            "provider": provider,
            "entity": "order",
            "entity_id": order_id,
            "partner_status": PLATFORM_PURCHASE_STATUS,
            "stage": stage,
            "failure_reason": reason,
            "description": "Order placed on the platform",
            "partner_date": purchased_at,
            "source": source,
        },
    )


def _sample_event(rows: TableRows, provider: str, kit_id: str, kit: Mapping[str, Any], source: str) -> None:
    if kit["sample_date"] is None:
        return
    stage, reason = to_stage(provider, PLATFORM_SAMPLE_COLLECTED_STATUS)
    rows.add(
        "status_events",
        {
            "provider": provider,
            "entity": "kit",
            "entity_id": kit_id,
            "partner_status": PLATFORM_SAMPLE_COLLECTED_STATUS,
            "stage": stage,
            "failure_reason": reason,
            "description": "Sample collected by the customer",
            "partner_date": datetime.combine(kit["sample_date"], time(), tzinfo=UTC),
            "source": source,
        },
    )


def transform_platform_export(
    export_rows: Iterable[Mapping[str, Any]],
    *,
    key: bytes,
    observed_at: datetime,
    provider: str = "biomesight",
    source: str = "import",
) -> TransformResult:
    """Platform export rows (strings; "" = missing) -> orders, kits, status events.

    A row without an order id, with an unreadable date or a Bristol scale outside 1-7 is quarantined whole:
    half an order would look like a real one in the cohort views.
    """
    rows = TableRows(observed_at, "orders", "kits", "status_events")
    for number, record in enumerate(export_rows, start=1):
        if not isinstance(record, Mapping):
            rows.quarantine(
                provider=provider,
                entity="order",
                entity_id=None,
                stage="platform_export",
                reason="not_an_object",
                detail=f"export row {number} is not a row of columns",
                payload=repr(record),
                excerpt=False,
            )
            continue
        order_id = text_or_none(record.get("order_id"))
        kit_id = text_or_none(record.get("kit_id"))
        try:
            if order_id is None:
                raise ContractError(
                    "missing_order_id", "the row has no order_id; fix the export and import it again"
                )
            purchased_at = _purchase(record, "purchase_date")
            kit = _kit_facts(record)
        except ContractError as rejected:
            rows.quarantine(
                provider=provider,
                entity="kit" if kit_id else "order",
                entity_id=kit_id or order_id,
                stage="platform_export",
                reason=rejected.reason,
                detail=f"export row {number}: {rejected.detail}",
                payload=dict(record),
                excerpt=False,
            )
            continue
        customer = optional_customer_key(record.get("customer_id"), key)
        country = _country(record.get("country_code"))
        rows.add(
            "orders",
            {
                "provider": provider,
                "order_id": order_id,
                "customer_key": customer,
                "country_code": country,
                "purchased_at": purchased_at,
                "purchase_date": purchased_at.date(),
                "source": source,
            },
        )
        _order_event(rows, provider, order_id, purchased_at, source)
        if kit_id is None:
            continue
        rows.add(
            "kits",
            {
                "provider": provider,
                "kit_id": kit_id,
                "order_id": order_id,
                "customer_key": customer,
                "country_code": country,
                "purchase_date": purchased_at.date(),
                **kit,
                "source": source,
            },
        )
        _sample_event(rows, provider, kit_id, kit, source)
    return rows.result()


def transform_biomesight_order_requests(
    bodies: Iterable[Mapping[str, Any]], *, key: bytes, observed_at: datetime, source: str = "import"
) -> TransformResult:
    """Create Order request bodies kitsync sent (documented shape) -> orders, order_items, status events."""
    provider = "biomesight"
    rows = TableRows(observed_at, "orders", "order_items", "status_events")
    for body in bodies:
        order_id = text_or_none(body.get("order_id")) if isinstance(body, Mapping) else None
        try:
            if not isinstance(body, Mapping):
                raise ContractError("not_an_object", "the order request is not a JSON object")
            if order_id is None:
                raise ContractError("missing_order_id", "the order request has no order_id")
            purchased_at = _purchase(body, "purchase_date")
            user = body.get("user")
            address = body.get("destination_address")
            items = body.get("items")
            if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items):
                raise ContractError(
                    "bad_items", "items must be a list of objects with product_sku and quantity"
                )
            lines = []
            for position, item in enumerate(items, start=1):
                try:
                    quantity = as_int(item.get("quantity"), bounds=(0, 2**31 - 1))
                except ValueError:
                    raise ContractError(
                        "bad_items", f"item {position} has quantity {shown(item.get('quantity'))}"
                    ) from None
                lines.append(
                    {
                        "provider": provider,
                        "order_id": order_id,
                        "position": position,
                        "product_sku": text_or_none(item.get("product_sku")),
                        "product_name": text_or_none(item.get("product_name")),
                        "quantity": 1 if quantity is None else quantity,
                        "source": source,
                    }
                )
        except ContractError as rejected:
            rows.quarantine(
                provider=provider,
                entity="order",
                entity_id=order_id,
                stage="order_request",
                reason=rejected.reason,
                detail=rejected.detail,
                payload=body,
                excerpt=False,
            )
            continue
        rows.add(
            "orders",
            {
                "provider": provider,
                "order_id": order_id,
                "customer_key": optional_customer_key(user.get("id"), key)
                if isinstance(user, Mapping)
                else None,
                "country_code": _country(address.get("country_code"))
                if isinstance(address, Mapping)
                else None,
                "purchased_at": purchased_at,
                "purchase_date": purchased_at.date(),
                "shipping_speed": text_or_none(body.get("shipping_speed")) or "standard",
                "source": source,
            },
        )
        rows.extend("order_items", lines)
        _order_event(rows, provider, order_id, purchased_at, source)
    return rows.result()


def transform_biomesight_kit_registrations(
    bodies: Iterable[Mapping[str, Any]], *, observed_at: datetime, source: str = "import"
) -> TransformResult:
    """Register Kit request bodies kitsync sent -> kits (sample facts) and the sample-collected event."""
    provider = "biomesight"
    rows = TableRows(observed_at, "kits", "status_events")
    for body in bodies:
        kit_id = text_or_none(body.get("kit_id")) if isinstance(body, Mapping) else None
        try:
            if not isinstance(body, Mapping):
                raise ContractError("not_an_object", "the kit registration is not a JSON object")
            if kit_id is None:
                raise ContractError("missing_kit_id", "the kit registration has no kit_id")
            kit = _kit_facts(body)
        except ContractError as rejected:
            rows.quarantine(
                provider=provider,
                entity="kit",
                entity_id=kit_id,
                stage="kit_registration",
                reason=rejected.reason,
                detail=rejected.detail,
                payload=body,
                excerpt=False,
            )
            continue
        kit["sample_type"] = kit["sample_type"] or DEFAULT_SAMPLE_TYPE
        rows.add(
            "kits",
            {
                "provider": provider,
                "kit_id": kit_id,
                "order_id": text_or_none(body.get("order_id")),
                **kit,
                "source": source,
            },
        )
        _sample_event(rows, provider, kit_id, kit, source)
    return rows.result()
