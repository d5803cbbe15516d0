"""What the partner APIs do to the sandbox world: a Biomesight order placed, a kit registered, a Gencove
sample kit ordered.

Each change draws from a `random.Random` seeded by the world's seed and the entity's own id, so the same
calls make the same world whatever else happened in between; new kits and samples come from the building
blocks of `sandbox/world.py`, so they live the same lives as generated ones. The HTTP faces
(`sandbox/biomesight_api.py`, `sandbox/gencove_api.py`) validate a body before handing it here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sandbox.generated import GeneratedKit
from sandbox.lifecycles import kit_lifecycle, order_fulfilment
from sandbox.model import BM_FREQUENCIES, Customer, GencoveSample, Kit, Order, OrderItem, World
from sandbox.results import ResultRecipe, build_result
from sandbox.taxonomy import Cohort
from sandbox.world import (
    FIRST_SALE_ID,
    FIRST_SAMPLE_ID,
    add_sample,
    apply_lifecycle,
    genome_cohort,
    new_kit_id,
    new_sample_id,
    pick_pipeline,
    seeded_rng,
)

__all__ = ["order_sample_kit", "place_order", "register_kit"]


def _parse_moment(value: object, fallback: datetime) -> datetime:
    """An ISO 8601 timestamp as aware UTC (naive means UTC, as the partner doc's example is)."""
    if not isinstance(value, str):
        return fallback
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return fallback
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _text(value: object) -> str:
    return "" if value is None else str(value)


def place_order(world: World, account: str, payload: dict[str, Any], at: datetime) -> Order:
    """Record a validated Biomesight order: customer, unregistered kits, and its fulfilment from `at` on."""
    user = payload["user"]
    address = payload["destination_address"]
    rng = seeded_rng(world.seed, "order", account, payload["order_id"])
    with world.lock:
        customer = Customer(
            customer_id=_text(user["id"]),
            first_name=_text(user["first_name"]),
            last_name=_text(user["last_name"]),
            email=_text(user["email"]),
            phone=_text(user.get("phone")),
            address_line1=_text(address["address_line1"]),
            address_line2=_text(address.get("address_line2")),
            city=_text(address["city"]),
            state=_text(address.get("state")),
            postcode=_text(address["postcode_zip"]),
            country_code=_text(address["country_code"]),
        )
        world.customers[customer.customer_id] = customer
        items = [
            OrderItem(
                _text(item["product_sku"]), _text(item.get("product_name")), int(item.get("quantity") or 1)
            )
            for item in payload["items"]
        ]
        speed = _text(payload.get("shipping_speed")) or "standard"
        order = Order(
            order_id=payload["order_id"],
            account=account,
            sale_id=max((o.sale_id for o in world.orders.values()), default=FIRST_SALE_ID - 1) + 1,
            purchase_date=_parse_moment(payload.get("purchase_date"), at),
            customer=customer,
            items=items,
            shipping_speed=speed,
            destination={key: _text(value) for key, value in address.items()},
            timeline=order_fulfilment(rng, at, speed).timeline,
        )
        world.orders[order.order_id] = order
        for _ in range(sum(item.quantity for item in items)):
            kit = GeneratedKit(kit_id=new_kit_id(rng, world), order_id=order.order_id, account=account)
            world.kits[kit.kit_id] = kit
            order.kit_ids.append(kit.kit_id)
        return order


def _next_sample_id(world: World) -> int:
    highest = FIRST_SAMPLE_ID - 1
    for kit in world.kits.values():
        recipe = kit.result_recipe if isinstance(kit, GeneratedKit) else None
        if recipe is not None:
            highest = max(highest, recipe.sample_id)
        elif not isinstance(kit, GeneratedKit) and kit.result is not None:
            highest = max(highest, kit.result.sample_id)
    return highest + 1


def register_kit(world: World, kit: Kit, payload: dict[str, Any], at: datetime) -> Kit:
    """Register a kit from a validated body; its lab journey (and result, if any) starts at `at`."""
    rng = seeded_rng(world.seed, "register", kit.kit_id)
    with world.lock:
        order = world.orders[kit.order_id]
        kit.registered_at = at
        sample_date = payload["sample_date"]
        kit.sample_date = sample_date if isinstance(sample_date, date) else date.fromisoformat(sample_date)
        kit.sample_type = _text(payload.get("sample_type")) or "Gut"
        bristol = payload.get("bristol_scale")
        kit.bristol_scale = None if bristol is None else int(bristol)
        frequency = payload.get("bm_frequency")
        kit.bm_frequency = frequency if frequency in BM_FREQUENCIES else None
        life = kit_lifecycle(rng, at)
        apply_lifecycle(kit, life)
        if life.results_ready_at is not None:
            recipe = ResultRecipe(
                rng.getrandbits(63),
                kit.kit_id,
                _next_sample_id(world),
                pick_pipeline(rng),
                life.results_ready_at,
                Cohort(
                    order.customer.country_code,
                    kit.bristol_scale,
                    kit.bm_frequency,
                    genome_cohort(world, order.customer.customer_id),
                ),
            )
            if isinstance(kit, GeneratedKit):
                kit.set_result_recipe(recipe)
            else:
                kit.result = build_result(recipe)
        if life.replacement_at is not None:
            # The replacement is issued but, like the original, waits for its own registration call.
            replacement = GeneratedKit(
                kit_id=new_kit_id(rng, world), order_id=order.order_id, account=order.account
            )
            replacement.replaces = kit.kit_id
            world.kits[replacement.kit_id] = replacement
            order.kit_ids.append(replacement.kit_id)
        return kit


def order_sample_kit(world: World, account: str, payload: dict[str, Any], at: datetime) -> GencoveSample:
    """Record a validated `POST /sample-kit/`: a new sample whose lifecycle starts at `at`."""
    with world.lock:
        sample_id = new_sample_id(world, len(world.samples))
        rng = seeded_rng(world.seed, "sample-kit", sample_id)
        metadata = payload.get("metadata")
        metadata = {} if metadata is None else metadata
        given_id = metadata.get("customer_id") if isinstance(metadata, dict) else None
        customer_id = given_id if isinstance(given_id, str) else ""
        first, _, last = _text(payload["recipient_address_name"]).strip().rpartition(" ")
        customer = Customer(
            customer_id=customer_id or f"GC-{sample_id[:8]}",
            first_name=first or last,
            last_name=last if first else "",
            email=_text(payload["recipient_email"]),
            phone=_text(payload["recipient_phone"]),
            address_line1=_text(payload["recipient_address_line1"]),
            address_line2=_text(payload.get("recipient_address_line2")),
            city=_text(payload["recipient_address_city"]),
            state=_text(payload["recipient_address_state_region"]),
            postcode=_text(payload["recipient_address_postal_code"]),
            country_code=_text(payload["recipient_address_country_code"]),
        )
        world.customers.setdefault(customer.customer_id, customer)
        return add_sample(
            world,
            rng,
            sample_id=sample_id,
            project_id=_text(payload["project_id"]),
            account=account,
            created=at,
            client_id="",  # a kit-ordering sample's client_id is empty (the guide's example)
            customer=customer,
            metadata=metadata,
            test_mode=bool(payload.get("test_mode", False)),
        )
