"""The platform's own order/kit export: how kitsync learns which Biomesight kits exist to be polled."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from sandbox.accounts import BIOMESIGHT_CLIENT_ID
from sandbox.model import Kit, Order, World

EXPORT_COLUMNS = (
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


def _row(order: Order, kit: Kit | None) -> dict[str, str]:
    customer = order.customer
    return {
        "order_id": order.order_id,
        "kit_id": kit.kit_id if kit else "",
        "purchase_date": order.purchase_date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sample_date": kit.sample_date.isoformat() if kit and kit.sample_date else "",
        "sample_type": kit.sample_type if kit else "",
        "bristol_scale": "" if kit is None or kit.bristol_scale is None else str(kit.bristol_scale),
        "bm_frequency": (kit.bm_frequency or "") if kit else "",
        "customer_id": customer.customer_id,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "email": customer.email,
        "phone": customer.phone,
        "address_line1": customer.address_line1,
        "city": customer.city,
        "postcode": customer.postcode,
        "country_code": customer.country_code,
    }


def platform_export(world: World, at: datetime, account: str = BIOMESIGHT_CLIENT_ID) -> list[dict[str, str]]:
    """One row per kit registered by `at`; an order with no kit registered yet gets one row with no kit id.

    Only orders of `account` purchased at or before `at`, ordered by purchase date then order and kit id.
    """
    rows: list[dict[str, str]] = []
    with world.lock:
        orders = sorted(
            (o for o in world.orders.values() if o.account == account and o.purchase_date <= at),
            key=lambda o: (o.purchase_date, o.order_id),
        )
        for order in orders:
            registered = sorted(
                (
                    kit
                    for kit in (world.kits.get(kit_id) for kit_id in order.kit_ids)
                    if kit is not None and kit.registered_at is not None and kit.registered_at <= at
                ),
                key=lambda kit: kit.kit_id,
            )
            if registered:
                rows.extend(_row(order, kit) for kit in registered)
            else:
                rows.append(_row(order, None))
    return rows


def export_csv(rows: list[dict[str, str]]) -> str:
    """The export as CSV text with a header row (the header alone when there are no rows)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
