"""Contract: the Gencove clients against the sandbox over real HTTP (listings, samples, errors, faults).

Expectations come from the sandbox's world objects (what the partner knows), not numbers copied from a run.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from extract.errors import CredentialsRefused, Invalid, MalformedResponse, NotFound, ServerError
from extract.gencove import AsyncGencoveClient, GencoveClient
from extract.retry import Backoff
from sandbox.accounts import GENCOVE_API_KEY, GENCOVE_PROJECT_IDS, OTHER_GENCOVE_PROJECT_IDS
from sandbox.model import GencoveSample, World, status_at
from sandbox.server import SandboxServer
from sandbox.world import generate_world

NO_WAIT = Backoff(base=0.0, cap=0.0)
PROJECT = GENCOVE_PROJECT_IDS[0]


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer(generate_world(seed=5, kits=40, gencove_samples=120)) as running:
        yield running


@pytest.fixture
def client(server: SandboxServer) -> Iterator[GencoveClient]:
    with GencoveClient(server.base_url, GENCOVE_API_KEY, backoff=NO_WAIT, timeout=10) as running:
        yield running


def project_samples(world: World, project_id: str = PROJECT) -> list[GencoveSample]:
    now = world.clock.now()
    return [
        sample
        for sample in world.samples.values()
        if sample.project_id == project_id and sample.account == GENCOVE_API_KEY and sample.created <= now
    ]


def sample_with_status(world: World, wanted: str) -> GencoveSample:
    now = world.clock.now()
    for sample in project_samples(world):
        change = status_at(sample.timeline, now)
        if change is not None and change.status == wanted:
            return sample
    pytest.skip(f"the generated world has no {wanted} sample")


def kit_order(project_id: str = PROJECT) -> dict[str, object]:
    return {
        "project_id": project_id,
        "recipient_address_name": "Jane Doe",
        "recipient_address_line1": "123 Main Street",
        "recipient_address_city": "San Francisco",
        "recipient_address_state_region": "CA",
        "recipient_address_postal_code": "94102",
        "recipient_address_country_code": "US",
        "recipient_email": "jane.doe@example.com",
        "recipient_phone": "+14155551234",
        "metadata": {"customer_id": "cust_contract"},
    }


def test_listing_pages_through_every_sample_of_the_project(
    server: SandboxServer, client: GencoveClient
) -> None:
    expected = {sample.sample_id for sample in project_samples(server.world)}
    assert len(expected) > 7
    pages = list(client.iter_project_sample_pages(PROJECT, page_size=7))
    ids = [item["id"] for page in pages for item in page]
    assert sorted(ids) == sorted(expected)  # every sample exactly once
    assert len(pages) == -(-len(expected) // 7)
    modified = [item["modified"] for item in client.iter_project_samples(PROJECT)]
    assert modified == sorted(modified)  # sort_by=modified, ascending


def test_incremental_listing_with_modified_after(server: SandboxServer, client: GencoveClient) -> None:
    now = server.clock.now()
    samples = project_samples(server.world)
    cutoff = sorted(sample.modified_at(now) for sample in samples)[len(samples) // 2] + timedelta(
        microseconds=1
    )
    changed = {sample.sample_id for sample in samples if sample.modified_at(now) > cutoff}
    listed = {item["id"] for item in client.iter_project_samples(PROJECT, modified_after=cutoff)}
    assert listed == changed
    assert 0 < len(listed) < len(samples)


def test_sample_endpoints_of_a_succeeded_sample(server: SandboxServer, client: GencoveClient) -> None:
    now = server.clock.now()
    sample = sample_with_status(server.world, "succeeded")
    detail = client.get_sample(sample.sample_id)
    assert (detail["id"], detail["project"]) == (sample.sample_id, PROJECT)
    assert {deliverable["file_type"] for deliverable in detail["files"]} == {
        f.file_type for f in sample.files
    }
    assert client.get_sample_metadata(sample.sample_id) == {"metadata": sample.metadata}
    statuses = list(client.iter_sample_statuses(sample.sample_id))
    assert len(statuses) == len([change for change in sample.timeline if change.at <= now])
    assert client.get_quality_controls(sample.sample_id) == sample.quality_controls
    assert list(client.iter_trait_scores(sample.sample_id)) == sample.trait_scores
    assert "ancestry" in client.get_ancestry(sample.sample_id)


def test_a_running_sample_has_no_results_yet(server: SandboxServer, client: GencoveClient) -> None:
    sample = sample_with_status(server.world, "running")
    assert client.get_quality_controls(sample.sample_id) == []
    assert list(client.iter_trait_scores(sample.sample_id)) == []
    with pytest.raises(NotFound):
        client.get_ancestry(sample.sample_id)


def test_ordering_a_kit_creates_a_sample(client: GencoveClient) -> None:
    sample_id = client.create_sample_kit(kit_order())["sample_id"]
    assert client.get_sample(sample_id)["id"] == sample_id
    assert client.get_sample_metadata(sample_id) == {"metadata": {"customer_id": "cust_contract"}}


def test_an_invalid_kit_order_carries_field_errors(client: GencoveClient) -> None:
    order = {**kit_order(), "recipient_email": "not-an-email"}
    del order["recipient_address_city"]
    with pytest.raises(Invalid) as caught:
        client.create_sample_kit(order)
    assert set(caught.value.field_errors) == {"recipient_email", "recipient_address_city"}


def test_foreign_projects_samples_and_keys(server: SandboxServer, client: GencoveClient) -> None:
    with pytest.raises(Invalid, match="Project does not exist"):
        list(client.iter_project_samples(OTHER_GENCOVE_PROJECT_IDS[0]))
    foreign = [
        sample.sample_id for sample in server.world.samples.values() if sample.account != GENCOVE_API_KEY
    ]
    for sample_id in [*foreign[:1], "00000000-0000-4000-8000-000000000000"]:
        with pytest.raises(NotFound):
            client.get_sample(sample_id)
    ours = project_samples(server.world)[0].sample_id
    with (
        GencoveClient(server.base_url, "not-a-key", backoff=NO_WAIT) as stranger,
        pytest.raises(CredentialsRefused) as caught,
    ):
        stranger.get_sample(ours)
    assert "not-a-key" not in repr(caught.value)


def test_transient_faults_are_retried(server: SandboxServer) -> None:
    sleeps: list[float] = []
    server.add_fault("gencove.project_samples:503:count=2")
    server.add_fault("gencove.project_samples:drop:count=1")
    server.add_fault("gencove.project_samples:429:count=1,retry_after=2")
    expected = {sample.sample_id for sample in project_samples(server.world)}
    with GencoveClient(server.base_url, GENCOVE_API_KEY, backoff=NO_WAIT, sleep=sleeps.append) as client:
        assert {item["id"] for item in client.iter_project_samples(PROJECT, page_size=50)} == expected
    assert len(sleeps) == 4
    assert 2.0 in sleeps


def test_maintenance_to_the_end_is_a_server_error(server: SandboxServer) -> None:
    server.add_fault("gencove.sample:503")
    sample = project_samples(server.world)[0]
    with (
        GencoveClient(server.base_url, GENCOVE_API_KEY, backoff=NO_WAIT, max_retries=2) as client,
        pytest.raises(ServerError) as caught,
    ):
        client.get_sample(sample.sample_id)
    assert caught.value.attempts == 3


def test_a_truncated_page_is_malformed(server: SandboxServer, client: GencoveClient) -> None:
    server.add_fault("gencove.project_samples:truncate:count=1")
    with pytest.raises(MalformedResponse):
        list(client.iter_project_samples(PROJECT))


@pytest.mark.anyio
@pytest.mark.parametrize("use_aiohttp", [False, True], ids=["httpx", "aiohttp"])
async def test_async_client_over_both_transports(server: SandboxServer, use_aiohttp: bool) -> None:
    expected = {sample.sample_id for sample in project_samples(server.world)}
    server.add_fault("gencove.sample:502:count=2")
    async with AsyncGencoveClient(
        server.base_url,
        GENCOVE_API_KEY,
        use_aiohttp=use_aiohttp,
        backoff=NO_WAIT,
        max_concurrency=8,
        timeout=10,
    ) as client:
        listed = [item async for item in client.iter_project_samples(PROJECT, page_size=25)]
        first = await client.get_sample(listed[0]["id"])
    assert {item["id"] for item in listed} == expected
    assert first["id"] == listed[0]["id"]


def test_a_sandbox_capping_pages_below_the_limit_asked_is_listed_completely(
    variance_sandbox: SandboxServer,
) -> None:
    """Under the variance profile the sandbox serves at most a handful of samples a page whatever `limit`
    asks (200): the keyset listing must still reach every sample, ending only on `meta.next` null."""
    variance = variance_sandbox.state.variance
    assert variance is not None
    with GencoveClient(variance_sandbox.base_url, GENCOVE_API_KEY, backoff=NO_WAIT, timeout=10) as gencove:
        pages = list(gencove.iter_changed_sample_pages(PROJECT))
    expected = {sample.sample_id for sample in project_samples(variance_sandbox.world)}
    cap = variance.caps["gencove.project_samples"]
    assert len(expected) > 3 * cap
    assert {item["id"] for page in pages for item in page} == expected
    assert max(len(page) for page in pages) <= cap
