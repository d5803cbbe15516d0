"""Which customer key each kit of the synced world should carry, and its customer's Gencove traits: the
sandbox's ground truth as kitsync could observe it by the last round (shared by the view tests)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from flows.demo import environment
from flows.settings import Settings
from sandbox.model import GencoveSample, World, status_at
from tests.flows.truth import our_orders, our_samples, registered_kits
from tests.synced import SyncedWorld


def percentile_band(percentile: float) -> str:
    """The bands customer_traits documents: below 33, below 67, the rest."""
    return "0-33" if percentile < 33 else "33-67" if percentile < 67 else "67-100"


@dataclass
class Truth:
    """What kitsync could know by the last round, keyed the documented way."""

    world: World
    at: datetime
    key: bytes

    def pseudonym(self, customer_id: str) -> str:
        return hmac.new(self.key, customer_id.strip().encode(), hashlib.sha256).hexdigest()[:32]

    def sample_key(self, sample: GencoveSample) -> str | None:
        """metadata.customer_id, else client_id, else no key. kitsync reads a sample's metadata when it first
        lists it without a client_id, or with its details once final: either way before the last round."""
        carried = sample.metadata.get("customer_id") or sample.client_id
        return self.pseudonym(carried) if carried else None

    def samples(self) -> list[GencoveSample]:
        return our_samples(self.world, self.at)

    def purchases(self) -> pd.DataFrame:
        """One row per keyed purchase: Biomesight orders by the last round, keyed Gencove samples."""
        rows = [
            {
                "customer_key": self.pseudonym(order.customer.customer_id),
                "provider": "biomesight",
                "ref": order.order_id,
                "purchased_at": order.purchase_date,
                "country_code": order.customer.country_code,
            }
            for order in our_orders(self.world, self.at)
        ]
        for sample in self.samples():
            key = self.sample_key(sample)
            if key is not None:
                rows.append(
                    {
                        "customer_key": key,
                        "provider": "gencove",
                        "ref": sample.sample_id,
                        "purchased_at": sample.created,
                        "country_code": None,
                    }
                )
        return pd.DataFrame(rows)

    def traits(self) -> dict[str, tuple[str, dict[str, dict[str, object]]]]:
        """customer key -> (sample id, trait key -> item) of their latest sample with trait scores."""
        latest: dict[str, GencoveSample] = {}
        for sample in self.samples():
            key = self.sample_key(sample)
            change = status_at(sample.timeline, self.at)
            if key is None or change is None or change.status != "succeeded" or not sample.trait_scores:
                continue
            if key not in latest or (sample.created, sample.sample_id) > (
                latest[key].created,
                latest[key].sample_id,
            ):
                latest[key] = sample
        return {
            key: (s.sample_id, {t["trait"]["key"]: t for t in s.trait_scores}) for key, s in latest.items()
        }


def truth_of(synced_world: SyncedWorld) -> Truth:
    """The truth of a synced world at its last round, with the pseudonym key its syncs used."""
    with environment(synced_world.env):
        key = Settings().pseudonym_key.get_secret_value().encode()
    at = datetime.fromisoformat(synced_world.reports[-1].virtual_time).astimezone(UTC)
    return Truth(synced_world.world, at, key)


def trait_risk_cohorts(truth: Truth) -> dict[tuple[str, str], list[str]]:
    """(provider, kit_id) -> its trait_risk cohorts ('trait: risk'), for every kit whose customer has them."""
    traits = truth.traits()
    world = truth.world
    kit_keys = {
        ("biomesight", kit.kit_id): truth.pseudonym(world.orders[kit.order_id].customer.customer_id)
        for kit in registered_kits(world, truth.at)
    }
    kit_keys |= {("gencove", s.sample_id): truth.sample_key(s) for s in truth.samples()}
    return {
        kit: [
            f"{trait}: {item['risk']}" for trait, item in traits[key][1].items() if item["risk"] is not None
        ]
        for kit, key in kit_keys.items()
        if key in traits
    }
