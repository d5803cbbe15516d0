"""Fixtures for the sandbox's HTTP tests: a small hand-built world with known timelines, served over HTTP.

The hand-built world pins every case a test needs (a kit whose PDF lags its JSON, an order still Pending, a
foreign kit, a sample that succeeds tomorrow) at known offsets from the virtual now; tests derive expectations
from these objects, never from copied numbers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from sandbox.accounts import (
    BIOMESIGHT_CLIENT_ID,
    BIOMESIGHT_CLIENT_SECRET,
    GENCOVE_API_KEY,
    GENCOVE_PROJECT_IDS,
    OTHER_BIOMESIGHT_CLIENT_ID,
    OTHER_GENCOVE_API_KEY,
    OTHER_GENCOVE_PROJECT_IDS,
)
from sandbox.model import (
    BiomesightResult,
    Clock,
    Customer,
    GencoveFile,
    GencoveSample,
    Kit,
    Order,
    OrderItem,
    StatusChange,
    TaxonAbundance,
    World,
)
from sandbox.server import SandboxServer

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SAMPLES_PER_PROJECT = 230


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _customer(index: int) -> Customer:
    return Customer(
        customer_id=f"CUST-{index:05d}",
        first_name="Jane",
        last_name=f"Doe{index}",
        email=f"jane{index}@example.com",
        phone="+441234567890",
        address_line1=f"{index} Test Street",
        address_line2="",
        city="London",
        state="",
        postcode="SW1A 1AA",
        country_code="GB",
    )


def _result(sample_id: int, ready: datetime) -> BiomesightResult:
    lineage = "k__Bacteria; p__Firmicutes; c__Clostridia; o__Clostridiales; f__Ruminococcaceae"
    taxonomy = [
        TaxonAbundance("phylum", "Firmicutes", "k__Bacteria; p__Firmicutes", 0.6, 600),
        TaxonAbundance("phylum", "Bacteroidetes", "k__Bacteria; p__Bacteroidetes", 0.4, 400),
        TaxonAbundance("genus", "Faecalibacterium", f"{lineage}; g__Faecalibacterium", 1.0, 300),
    ]
    return BiomesightResult(
        sample_id=sample_id,
        pipeline_id=3,
        export_date=ready,
        scores={
            "gut_health": 80.5,
            "Diversity": 70.0,
            "Probiotic": 60.0,
            "Commensal": 90.0,
            "Pathobiont": 10.0,
        },
        recommendations={"food": {"enjoy": ["green tea"], "avoid": ["guar bean"]}},
        taxonomy=taxonomy,
    )


def _kit_timeline(registered: datetime, steps: list[tuple[str, float]]) -> list[StatusChange]:
    return [
        StatusChange(status, registered + timedelta(days=days), f"{status} note") for status, days in steps
    ]


def build_world() -> World:
    """Orders, kits and samples at known offsets from NOW (negative days: already visible)."""
    world = World(seed=1, clock=Clock(NOW))
    day = timedelta(days=1)

    def add_order(
        order_id: str, account: str, purchased: datetime, timeline: list[tuple[str, float]]
    ) -> Order:
        customer = _customer(len(world.orders))
        world.customers[customer.customer_id] = customer
        order = Order(
            order_id=order_id,
            account=account,
            sale_id=1000 + len(world.orders),
            purchase_date=purchased,
            customer=customer,
            items=[OrderItem("SKU-GUT", "Gut test")],
            timeline=[StatusChange(status, purchased + timedelta(days=d)) for status, d in timeline],
        )
        world.orders[order_id] = order
        return order

    def add_kit(order: Order, kit_id: str, **fields: object) -> Kit:
        kit = Kit(kit_id=kit_id, order_id=order.order_id, account=order.account, **fields)  # type: ignore[arg-type]
        order.kit_ids.append(kit_id)
        world.kits[kit_id] = kit
        return kit

    delivered = [("Booked with Amazon", 1), ("Dispatched", 2), ("Delivered", 5)]
    done = add_order("ORD-DONE", BIOMESIGHT_CLIENT_ID, NOW - 60 * day, delivered)
    registered = NOW - 40 * day
    steps = [("Shipping to Lab", 0), ("Sample Received", 5), ("Lab Processing", 8), ("Results Processed", 20)]
    add_kit(
        done,
        "BS1-DONE1",
        registered_at=registered,
        sample_date=registered.date(),
        bristol_scale=4,
        bm_frequency="Once daily",
        timeline=_kit_timeline(registered, steps),
        result=_result(501, registered + 20 * day),
        results_ready_at=registered + 20 * day,
        pdf_ready_at=registered + 21 * day,
    )
    lagging = NOW - 21 * day
    add_kit(
        done,
        "BS1-PDFLAG",
        registered_at=lagging,
        sample_date=lagging.date(),
        timeline=_kit_timeline(lagging, steps),
        result=_result(502, lagging + 20 * day),
        results_ready_at=lagging + 20 * day,  # yesterday
        pdf_ready_at=NOW + 2 * day,  # the 203 window
    )
    pending = add_order("ORD-PENDING", BIOMESIGHT_CLIENT_ID, NOW - 3 * day, [])
    add_kit(pending, "BS1-FRESH1")
    add_kit(pending, "BS1-FRESH2")
    moving = add_order("ORD-MOVING", BIOMESIGHT_CLIENT_ID, NOW - 20 * day, [*delivered, ("Shipped", 22)])
    started = NOW - 2 * day
    add_kit(
        moving,
        "BS1-MOVING",
        registered_at=started,
        sample_date=started.date(),
        timeline=_kit_timeline(
            started, [("Shipping to Lab", 0), ("Sample Received", 1.5), ("Lab Processing", 4)]
        ),
        result=_result(503, started + 10 * day),
        results_ready_at=started + 10 * day,
        pdf_ready_at=started + 10 * day,
    )
    foreign = add_order("ORD-FOREIGN", OTHER_BIOMESIGHT_CLIENT_ID, NOW - 30 * day, delivered)
    add_kit(
        foreign, "BS1-FOREIGN", registered_at=NOW - 20 * day, timeline=_kit_timeline(NOW - 20 * day, steps)
    )
    future = add_order("ORD-FUTURE", BIOMESIGHT_CLIENT_ID, NOW + 5 * day, [])
    add_kit(future, "BS1-FUTURE")

    for project_index, project_id in enumerate((*GENCOVE_PROJECT_IDS[:1], *OTHER_GENCOVE_PROJECT_IDS)):
        account = GENCOVE_API_KEY if project_index == 0 else OTHER_GENCOVE_API_KEY
        count = SAMPLES_PER_PROJECT if project_index == 0 else 5
        for index in range(count):
            _add_sample(world, project_id, account, index, project_index)
    return world


def _add_sample(world: World, project_id: str, account: str, index: int, project_index: int) -> None:
    # Created every 8 hours back from now; some samples reach their final status after NOW.
    created = NOW - timedelta(hours=8 * index + 1, microseconds=index * 137)
    final_at = created + timedelta(days=25, seconds=index)
    final = "failed qc" if index % 7 == 3 else "succeeded"
    timeline = [
        StatusChange("kit_requested", created),
        StatusChange("kit_ordered", created + timedelta(days=1)),
        StatusChange("running", created + timedelta(days=15)),
        StatusChange(final, final_at),
    ]
    sample_id = f"{project_index:02d}000000-0000-4000-8000-{index:012d}"
    files = [
        GencoveFile(
            file_id=f"{project_index:02d}f0000{kind}-0000-4000-8000-{index:012d}",
            file_type=file_type,
            size=1000 + index,
            checksum_sha256=hashlib.sha256(f"{sample_id}/{file_type}".encode()).hexdigest(),
            s3_path=f"s3://gencove-sandbox/{sample_id}/{file_type}.dat",
        )
        for kind, file_type in enumerate(
            ("impute-vcf", "ancestry-json") if final == "succeeded" else ("fastq-r1",)
        )
    ]
    world.samples[sample_id] = GencoveSample(
        sample_id=sample_id,
        project_id=project_id,
        account=account,
        created=created,
        client_id=f"client-{index:04d}",
        customer=_customer(index),
        metadata={"customer_id": f"cust_{index:05d}", "order_number": f"ORD-G-{index}"},
        timeline=timeline,
        archive_timeline=[StatusChange("archived", final_at + timedelta(days=30))],
        failed_qc=["format"] if final == "failed qc" else [],
        files=files,
        quality_controls=[
            {
                "quality_control_type": {"key": "bases_pct_q30", "type": "float"},
                "quality_control": {
                    "value_expected": 0.8,
                    "value_measured": 0.9,
                    "value_string": "",
                    "status": "succeeded",
                },
            }
        ],
        trait_scores=[
            {
                "trait_score": {"value": 0.1 * n, "percentile": 10 * n},
                "trait_distribution": {"value": [], "version": 1},
                "trait": {"key": f"trait_{n}"},
                "trait_unit": {"key": "cm"},
                "risk": None,
            }
            for n in range(3)
        ],
        ancestry={"european": 0.7, "east_asian": 0.3},
        hidden=index % 50 == 49,
    )


@pytest.fixture
def world() -> World:
    return build_world()


@pytest.fixture
def server(world: World) -> Iterator[SandboxServer]:
    with SandboxServer(world) as running:
        yield running


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def _token(base_url: str, client_id: str, secret: str) -> str:
    response = requests.post(
        f"{base_url}/api/v1/auth/token",
        auth=(client_id, secret),
        data={"grant_type": "client_credentials"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["access_token"]


@pytest.fixture
def token_for(server: SandboxServer) -> Callable[[str, str], str]:
    """Issue a Biomesight token for (client_id, secret) on the running server."""
    return lambda client_id, secret: _token(server.base_url, client_id, secret)


@pytest.fixture
def bearer(server: SandboxServer) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {_token(server.base_url, BIOMESIGHT_CLIENT_ID, BIOMESIGHT_CLIENT_SECRET)}"
    }


@pytest.fixture
def api_key() -> dict[str, str]:
    return {"Authorization": f"Api-Key {GENCOVE_API_KEY}"}
