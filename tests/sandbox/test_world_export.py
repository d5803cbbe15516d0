"""The platform's order/kit export: one account, registered kits only, and a CSV that round-trips."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta

import pytest

from sandbox.accounts import BIOMESIGHT_CLIENT_ID, OTHER_BIOMESIGHT_CLIENT_ID
from sandbox.export import EXPORT_COLUMNS, export_csv, platform_export
from sandbox.model import World
from sandbox.world import generate_world

PII_COLUMNS = (
    "customer_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "address_line1",
    "city",
    "postcode",
)


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(5, 300)


@pytest.mark.parametrize("account", [BIOMESIGHT_CLIENT_ID, OTHER_BIOMESIGHT_CLIENT_ID])
@pytest.mark.parametrize("days_before_start", [0, 40])
def test_rows_cover_the_accounts_orders_and_registered_kits(
    world: World, account: str, days_before_start: int
) -> None:
    at = world.clock.now() - timedelta(days=days_before_start)
    rows = platform_export(world, at, account)
    orders = {o.order_id: o for o in world.orders.values() if o.account == account and o.purchase_date <= at}
    assert {row["order_id"] for row in rows} == set(orders)
    for row in rows:
        assert tuple(row) == EXPORT_COLUMNS
        order = orders[row["order_id"]]
        assert datetime.fromisoformat(row["purchase_date"].replace("Z", "+00:00")) == order.purchase_date
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", row["purchase_date"])
        assert all(row[column] for column in PII_COLUMNS)
        assert row["customer_id"] == order.customer.customer_id
        assert row["country_code"] == order.customer.country_code
        if row["kit_id"]:
            kit = world.kits[row["kit_id"]]
            assert kit.order_id == order.order_id
            assert kit.registered_at is not None
            assert kit.registered_at <= at
            assert row["sample_date"] == str(kit.sample_date)
            assert row["bristol_scale"] == ("" if kit.bristol_scale is None else str(kit.bristol_scale))
            assert row["sample_type"] == kit.sample_type
        else:
            assert (row["sample_date"], row["sample_type"], row["bristol_scale"], row["bm_frequency"]) == (
                "",
            ) * 4
    registered_by_at = {
        kit_id
        for order in orders.values()
        for kit_id in order.kit_ids
        if (registered := world.kits[kit_id].registered_at) is not None and registered <= at
    }
    assert {row["kit_id"] for row in rows if row["kit_id"]} == registered_by_at
    kitless = {row["order_id"] for row in rows if not row["kit_id"]}
    assert kitless == {o for o in orders if not any(k in registered_by_at for k in orders[o].kit_ids)}
    assert len(rows) == len(registered_by_at) + len(kitless)


def test_a_later_export_knows_more_kits(world: World) -> None:
    start = world.clock.now()
    earlier = {row["kit_id"] for row in platform_export(world, start - timedelta(days=40)) if row["kit_id"]}
    later = {row["kit_id"] for row in platform_export(world, start + timedelta(days=60)) if row["kit_id"]}
    assert earlier < later


def test_csv_round_trips_with_a_header(world: World) -> None:
    rows = platform_export(world, world.clock.now())
    text = export_csv(rows)
    assert text.splitlines()[0] == ",".join(EXPORT_COLUMNS)
    assert list(csv.DictReader(io.StringIO(text))) == rows
    assert export_csv([]).splitlines() == [",".join(EXPORT_COLUMNS)]
