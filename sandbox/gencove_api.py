"""The Gencove API v2 (`/api/v2`): kit ordering and the sample endpoints, per the kit guide and NOTES.md.

Choices the sources leave open, made here and relied on by tests:
- Paths are accepted with and without a trailing slash.
- A sample of another organisation, or one the virtual clock has not reached yet, is 404 "Not found.".
- Before a sample is final, `sample-quality-controls` is `[]`, `sample-trait-scores` an empty page and
  `sample-ancestry` 404; deliverable `files` appear once the sample is final (succeeded or failed QC).
- `sample-kit` answers an unknown or foreign `project_id` per field: `{"project_id": ["Project does not exist
  or you do not have privileges to access it."]}`; `project-samples` answers it with the bare list.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson
from aiohttp import web

from sandbox.accounts import GENCOVE_ACCOUNTS
from sandbox.countries import is_country_code
from sandbox.faults import unknown_status_for
from sandbox.gencove_listing import paginate, parse_query
from sandbox.gencove_views import current_status, is_final, list_item, sample_detail, status_history
from sandbox.model import GencoveFile, GencoveSample
from sandbox.state import SandboxState, state_of
from sandbox.wire import json_response

PREFIX = "/api/v2"
NOT_FOUND = {"detail": "Not found."}
NO_PROJECT = "Project does not exist or you do not have privileges to access it."
_PROJECTS = {account.api_key: frozenset(account.project_ids) for account in GENCOVE_ACCOUNTS}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# sample-kit fields: (name, required, max length); `metadata` and `test_mode` are checked separately.
SAMPLE_KIT_FIELDS = (
    ("recipient_address_name", True, 255),
    ("recipient_address_line1", True, 50),
    ("recipient_address_line2", False, 50),
    ("recipient_address_line3", False, 50),
    ("recipient_address_city", True, 50),
    ("recipient_address_state_region", True, 50),
    ("recipient_address_postal_code", True, 20),
    ("recipient_address_country_code", True, 2),
    ("recipient_email", True, 254),
    ("recipient_phone", True, 128),
    ("recipient_instructions", False, 255),
)


def _api_key(request: web.Request) -> str | web.Response:
    """The organisation's API key, or DRF's 401."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": "Api-Key"}
    if scheme != "Api-Key" or not key.strip():
        return json_response(
            {"detail": "Authentication credentials were not provided."}, status=401, headers=challenge
        )
    if key.strip() not in _PROJECTS:
        return json_response({"detail": "Invalid API key."}, status=401, headers=challenge)
    return key.strip()


def _own_sample(request: web.Request, state: SandboxState, key: str) -> GencoveSample | None:
    sample = state.world.samples.get(request.match_info["sample_id"])
    if sample is None or sample.account != key or sample.created > state.now():
        return None
    return sample


def _base_url(request: web.Request) -> str:
    return str(request.url.origin())


def _cap(state: SandboxState, endpoint: str) -> int | None:
    """The largest `limit` an endpoint serves: MAX_LIMIT, or less under a variance profile."""
    return None if state.variance is None else state.variance.caps.get(endpoint)


def _listing(request: web.Request, state: SandboxState, items: list[Any], *, bare: bool) -> web.Response:
    """A list endpoint's answer: a bare list or a DRF page (a variance profile may flip the shape and cap
    the page size)."""
    endpoint = request.match_info.route.name or ""
    if state.variance is not None:
        bare = endpoint in state.variance.bare_lists
    if bare:
        return json_response(items)
    meta, page = paginate(request.url, items, request.query, _cap(state, endpoint))
    return json_response({"meta": meta, "results": page})


def _status_override(state: SandboxState, endpoint: str) -> str | None:
    rule = state.faults.take(endpoint, "unknown_status")
    return unknown_status_for(rule, "gencove") if rule is not None else None


# --- kit ordering -----------------------------------------------------------------------------------------


def validate_sample_kit(payload: dict[str, Any], key: str) -> dict[str, list[str]]:
    """DRF-style per-field errors for a sample-kit body (empty when it is valid)."""
    errors: dict[str, list[str]] = {}
    project_id = payload.get("project_id")
    if project_id is None:
        errors["project_id"] = ["This field is required."]
    elif not isinstance(project_id, str) or not _is_uuid(project_id):
        errors["project_id"] = ["Must be a valid UUID."]
    elif project_id not in _PROJECTS[key]:
        errors["project_id"] = [NO_PROJECT]
    for name, required, max_length in SAMPLE_KIT_FIELDS:
        problem = _string_problem(payload.get(name), required=required, max_length=max_length)
        if problem is not None:
            errors[name] = [problem]
    country = payload.get("recipient_address_country_code")
    if "recipient_address_country_code" not in errors and not is_country_code(country):
        errors["recipient_address_country_code"] = [f'"{country}" is not a valid choice.']
    email = payload.get("recipient_email")
    if "recipient_email" not in errors and not _EMAIL.match(str(email)):
        errors["recipient_email"] = ["Enter a valid email address."]
    if "test_mode" in payload and not isinstance(payload["test_mode"], bool):
        errors["test_mode"] = ["Must be a valid boolean."]
    return errors


def _string_problem(value: object, *, required: bool, max_length: int) -> str | None:
    if value is None:
        return "This field is required." if required else None
    if not isinstance(value, str):
        return "Not a valid string."
    if required and not value.strip():
        return "This field may not be blank."
    if len(value) > max_length:
        return f"Ensure this field has no more than {max_length} characters."
    return None


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


async def sample_kit(request: web.Request) -> web.Response:
    """`POST sample-kit/`: 201 {"sample_id"}; 400 with per-field errors."""
    state = state_of(request)
    key = _api_key(request)
    if isinstance(key, web.Response):
        return key
    try:
        payload = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        return json_response({"detail": f"JSON parse error - {exc}"}, status=400)
    if not isinstance(payload, dict):
        return json_response({"non_field_errors": ["Invalid data. Expected a dictionary."]}, status=400)
    errors = validate_sample_kit(payload, key)
    if errors:
        return json_response(errors, status=400)
    from sandbox.changes import order_sample_kit

    with state.world.lock:
        sample = order_sample_kit(state.world, key, payload, state.now())
    state.world_changed()
    return json_response({"sample_id": sample.sample_id}, status=201)


# --- samples ----------------------------------------------------------------------------------------------


async def project_samples(request: web.Request) -> web.Response:
    """`GET project-samples/{project_id}`: filtered, sorted, limit/offset pages with absolute links."""
    state = state_of(request)
    key = _api_key(request)
    if isinstance(key, web.Response):
        return key
    project_id = request.match_info["project_id"]
    if project_id not in _PROJECTS[key]:
        return json_response([NO_PROJECT], status=400)
    params = request.query if state.variance is None else state.variance.listing_query(request.query)
    query = parse_query(project_id, params)
    if isinstance(query, dict):
        return json_response(query, status=400)
    now = state.now()
    samples = state.listing.matching(state.world.samples, query, now, state.generation)
    meta, page = paginate(request.url, samples, request.query, _cap(state, "gencove.project_samples"))
    override = _status_override(state, "gencove.project_samples")
    return json_response({"meta": meta, "results": [list_item(sample, now, override) for sample in page]})


async def sample(request: web.Request) -> web.Response:
    """`GET samples/{id}`: the list item plus project and files."""
    state = state_of(request)
    key = _api_key(request)
    if isinstance(key, web.Response):
        return key
    found = _own_sample(request, state, key)
    if found is None:
        return json_response(NOT_FOUND, status=404)
    override = _status_override(state, "gencove.sample")
    detail = sample_detail(found, state.now(), _base_url(request), override)
    if state.variance is not None and state.variance.metadata_in_detail(found.sample_id):
        detail["metadata"] = found.metadata
    if detail["files"]:
        state.remember_files(found, found.files)
    return json_response(detail)


async def sample_metadata(request: web.Request) -> web.Response:
    """`GET sample-metadata/{id}`: {"metadata": <whatever JSON was stored>}."""
    state = state_of(request)
    key = _api_key(request)
    if isinstance(key, web.Response):
        return key
    found = _own_sample(request, state, key)
    if found is None:
        return json_response(NOT_FOUND, status=404)
    return json_response({"metadata": found.metadata})


async def sample_statuses(request: web.Request) -> web.Response:
    """`GET sample-statuses/{id}`: the status history, newest first, paginated like project-samples."""
    state = state_of(request)
    key = _api_key(request)
    if isinstance(key, web.Response):
        return key
    found = _own_sample(request, state, key)
    if found is None:
        return json_response(NOT_FOUND, status=404)
    history = status_history(found, state.now())
    override = _status_override(state, "gencove.sample_statuses")
    if override is not None and history:
        history[0] = {**history[0], "status": override}
    return _listing(request, state, history, bare=False)


async def quality_controls(request: web.Request) -> web.Response:
    """`GET sample-quality-controls/{id}`: a list, empty until the sample is final."""
    state = state_of(request)
    key = _api_key(request)
    if isinstance(key, web.Response):
        return key
    found = _own_sample(request, state, key)
    if found is None:
        return json_response(NOT_FOUND, status=404)
    final = is_final(current_status(found, state.now()))
    return _listing(request, state, found.quality_controls if final else [], bare=True)


async def trait_scores(request: web.Request) -> web.Response:
    """`GET sample-trait-scores/{id}`: paginated trait scores, none until the sample succeeded."""
    state = state_of(request)
    key = _api_key(request)
    if isinstance(key, web.Response):
        return key
    found = _own_sample(request, state, key)
    if found is None:
        return json_response(NOT_FOUND, status=404)
    succeeded = current_status(found, state.now()) == "succeeded"
    return _listing(request, state, found.trait_scores if succeeded else [], bare=False)


async def ancestry(request: web.Request) -> web.Response:
    """`GET sample-ancestry/{id}`: {"ancestry": {"value"}, "metadata": {"value"}}; 404 until succeeded."""
    state = state_of(request)
    key = _api_key(request)
    if isinstance(key, web.Response):
        return key
    found = _own_sample(request, state, key)
    if found is None or current_status(found, state.now()) != "succeeded" or not found.ancestry:
        return json_response(NOT_FOUND, status=404)
    body = found.ancestry
    if "ancestry" not in body:
        body = {"ancestry": {"value": body}, "metadata": {"value": {}}}
    return json_response(body)


async def file_checksum(request: web.Request) -> web.Response:
    """`GET files/{file_id}.sha256`: `<sha256> *<name>` as text, for a visible deliverable of ours."""
    state = state_of(request)
    key = _api_key(request)
    if isinstance(key, web.Response):
        return key
    located = state.find_file(request.match_info["file_id"])
    now = state.now()
    if located is None:
        return json_response(NOT_FOUND, status=404)
    owner, deliverable = located
    if owner.account != key or owner.created > now or not is_final(current_status(owner, now)):
        return json_response(NOT_FOUND, status=404)
    return web.Response(text=_checksum_line(deliverable), content_type="text/plain")


def _checksum_line(deliverable: GencoveFile) -> str:
    return f"{deliverable.checksum_sha256} *{deliverable.s3_path.rsplit('/', 1)[-1]}\n"


def add_routes(app: web.Application) -> None:
    """Mount the Gencove endpoints; `{slash}` accepts the guide's trailing slash and its absence."""
    slash = "{slash:/?}"
    router = app.router
    router.add_post(f"{PREFIX}/sample-kit{slash}", sample_kit, name="gencove.sample_kit")
    router.add_get(
        f"{PREFIX}/project-samples/{{project_id}}{slash}", project_samples, name="gencove.project_samples"
    )
    router.add_get(f"{PREFIX}/samples/{{sample_id}}{slash}", sample, name="gencove.sample")
    router.add_get(f"{PREFIX}/sample-metadata/{{sample_id}}{slash}", sample_metadata, name="gencove.metadata")
    router.add_get(
        f"{PREFIX}/sample-statuses/{{sample_id}}{slash}", sample_statuses, name="gencove.sample_statuses"
    )
    router.add_get(
        f"{PREFIX}/sample-quality-controls/{{sample_id}}{slash}",
        quality_controls,
        name="gencove.quality_controls",
    )
    router.add_get(
        f"{PREFIX}/sample-trait-scores/{{sample_id}}{slash}", trait_scores, name="gencove.trait_scores"
    )
    router.add_get(f"{PREFIX}/sample-ancestry/{{sample_id}}{slash}", ancestry, name="gencove.ancestry")
    router.add_get(f"{PREFIX}/files/{{file_id}}.sha256", file_checksum, name="gencove.file_checksum")
