"""Gencove payloads -> tables: project-samples list items, sample details (+ metadata), status histories,
quality controls, trait scores and ancestry.

A Gencove sample is one kit, so samples land in `kits` with the sample id as kit_id. The platform's customer
id travels in the sample's `metadata.customer_id` (the kit-ordering guide; `client_id` is then "") or in
`client_id` (older integrations): metadata first, then client_id, stored only as the pseudonymous
`customer_key` that Biomesight's `user.id` gets too, so one customer has one key at both partners. A sample
with neither stays keyless. Of the rest of the metadata (order numbers, notes typed by support staff: the
platform writes what it likes there) only the fields declared in METADATA_SAFE_FIELDS are kept. File download
URLs are presigned credentials and are never read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from transform.changes import HeldStatus, is_change
from transform.pseudonym import optional_customer_key, scrub_json, strip_personal_data
from transform.result import TableRows, TransformResult, concat_results
from transform.status import is_final, to_stage
from transform.values import (
    ContractError,
    as_float,
    as_int,
    parse_timestamp,
    shown,
    text_or_none,
    to_json,
)

PROVIDER: Final = "gencove"
_ABSENT: Final = object()
# Where a sample's metadata carries the platform's customer id (the kit-ordering guide's key).
METADATA_CUSTOMER_ID: Final = "customer_id"
# Metadata fields that hold no personal data and are kept (scalars only) in kits.metadata_json; every other
# key (order numbers, free text, anything new) is dropped. Add a field here only once it is known to be safe.
METADATA_SAFE_FIELDS: Final = frozenset({"channel", "kit_type", "product_sku", "test_mode"})


def _soft(parse: Callable[[Any], Any], value: object) -> Any:
    """A fact that does not parse becomes null rather than costing the whole sample."""
    try:
        return parse(value)
    except ValueError:
        return None


def _mapping(value: object) -> Mapping[str, Any]:
    if value.__class__ is dict:  # parsed JSON: skips the ABC check, the slow part of isinstance(Mapping)
        return value  # type: ignore[return-value]
    return value if isinstance(value, Mapping) else {}


def _page_items(payload: object) -> object:
    """The items of a paginated response (`{"meta", "results"}`), or the payload itself (a bare list)."""
    if isinstance(payload, Mapping) and isinstance(payload.get("results"), list):
        return payload["results"]
    return payload


def failed_qc_list(value: object) -> list[str] | None:
    """`failed_qc` as a list: the API sends a list (["format"]) though its spec says string; accept both."""
    if isinstance(value, list):
        return [text for text in (text_or_none(item) for item in value) if text is not None]
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return None


def _sample_id(item: object, what: str) -> str:
    if not isinstance(item, Mapping):
        raise ContractError("not_an_object", f"the {what} is not a JSON object")
    sample_id = text_or_none(item.get("id"))
    if sample_id is None:
        raise ContractError("missing_field", f"the {what} has no 'id'")
    return sample_id


def endpoint_metadata(payload: object) -> object:
    """The sample's own metadata in a `sample-metadata/{id}` answer `{"metadata": <any JSON>}`: only that
    member is the sample's, not fields the partner may add beside it."""
    if isinstance(payload, Mapping) and "metadata" in payload:
        return payload["metadata"]
    return payload


def declared_metadata(metadata: object) -> dict[str, Any]:
    """What of a sample's metadata may be kept: the customer id (verbatim: it is pseudonymized by the
    transform, so raw responses can be transformed again) and the declared safe scalar fields."""
    if not isinstance(metadata, Mapping):
        return {}
    kept = {}
    for name, value in metadata.items():
        wanted = name == METADATA_CUSTOMER_ID or name in METADATA_SAFE_FIELDS
        if wanted and isinstance(value, str | int | float | bool) and strip_personal_data(value) is not None:
            kept[name] = value
    return kept


def metadata_customer_id(metadata: object) -> object:
    """The platform's customer id in a sample's metadata, or None."""
    return metadata.get(METADATA_CUSTOMER_ID) if isinstance(metadata, Mapping) else None


def sample_customer_key(metadata: object, client_id: object, key: bytes) -> str | None:
    """The customer's pseudonym: from metadata.customer_id, else client_id; None when neither holds an id."""
    return optional_customer_key(metadata_customer_id(metadata), key) or optional_customer_key(client_id, key)


def _metadata_json(metadata: object) -> str:
    """The declared safe fields as JSON; "{}" when there are none (a fetched metadata is never null: a
    non-null metadata_json tells the planner the sample's details were read)."""
    safe = {k: v for k, v in declared_metadata(metadata).items() if k in METADATA_SAFE_FIELDS}
    return to_json(safe)


def _kit_row(item: Mapping[str, Any], sample_id: str, key: bytes, source: str) -> dict[str, Any]:
    archive = _mapping(item.get("archive_last_status"))
    row: dict[str, Any] = {
        "provider": PROVIDER,
        "kit_id": sample_id,
        "customer_key": sample_customer_key(item.get("metadata"), item.get("client_id"), key),
        "project_id": text_or_none(item.get("project")),
        "physical_id": text_or_none(item.get("physical_id")),
        "hidden": item.get("hidden") if isinstance(item.get("hidden"), bool) else None,
        "created_at": _soft(parse_timestamp, item.get("created")),
        "modified_at": _soft(parse_timestamp, item.get("modified")),
        "failed_qc": failed_qc_list(item.get("failed_qc")),
        "archive_status": text_or_none(archive.get("status")),
        "archive_status_at": _soft(parse_timestamp, archive.get("created")),
        "source": source,
    }
    if "metadata" in item:
        row["metadata_json"] = _metadata_json(item["metadata"])
    return row


def _status_event(sample_id: str, status_item: object, source: str) -> dict[str, Any] | None:
    """A status event from `{status, note, created}`; None without a status; ContractError if undatable."""
    if not isinstance(status_item, Mapping):
        return None
    status = text_or_none(status_item.get("status"))
    if status is None:
        return None
    try:
        partner_date = parse_timestamp(status_item.get("created"))
    except ValueError as error:
        raise ContractError("bad_date", f"status '{status}' created {error}") from None
    if partner_date is None:
        raise ContractError(
            "bad_date", f"status '{status}' has no 'created' date, so it cannot be placed in history"
        )
    stage, reason = to_stage(PROVIDER, status)
    return {
        "provider": PROVIDER,
        "entity": "kit",
        "entity_id": sample_id,
        "partner_status": status,
        "stage": stage,
        "failure_reason": reason,
        "description": text_or_none(status_item.get("note")),
        "partner_date": partner_date,
        "source": source,
    }


def _add_event(rows: TableRows, sample_id: str, status_item: object, source: str, stage: str) -> None:
    try:
        event = _status_event(sample_id, status_item, source)
    except ContractError as rejected:
        rows.quarantine(
            provider=PROVIDER,
            entity="kit",
            entity_id=sample_id,
            stage=stage,
            reason=rejected.reason,
            detail=rejected.detail,
            payload=status_item,
            excerpt=False,
        )
        return
    if event is None:
        return
    if event["stage"] == "unknown":
        rows.unknown_statuses[(PROVIDER, event["partner_status"])] += 1
    rows.add("status_events", event)


def transform_gencove_project_samples(
    items: Iterable[Any], *, project_id: str, key: bytes, observed_at: datetime, source: str = "poll"
) -> TransformResult:
    """`project-samples/{project_id}` list items -> kits (in the project queried) and last_status events."""
    rows = TableRows(observed_at, "kits", "status_events")
    for item in items:
        try:
            sample_id = _sample_id(item, "project-samples item")
        except ContractError as rejected:
            rows.quarantine(
                provider=PROVIDER,
                entity="kit",
                entity_id=None,
                stage="project_samples",
                reason=rejected.reason,
                detail=rejected.detail,
                payload=item,
                excerpt=False,
            )
            continue
        kit = _kit_row(item, sample_id, key, source)
        kit["project_id"] = kit["project_id"] or project_id
        rows.add("kits", kit)
        _add_event(rows, sample_id, item.get("last_status"), source, "project_samples")
    return rows.result()


def _deliverables(sample_id: str, files: object) -> list[dict[str, Any]]:
    if not isinstance(files, list):
        raise ContractError("malformed_files", f"'files' is {shown(files)}, not a list of files")
    rows = []
    for position, file in enumerate(files, start=1):
        file_id = text_or_none(file.get("id")) if isinstance(file, Mapping) else None
        if file_id is None:
            raise ContractError("malformed_files", f"file {position} of sample {sample_id} has no 'id'")
        try:
            size = as_int(file.get("size"))
        except ValueError:
            raise ContractError(
                "malformed_files", f"file {file_id} has size {shown(file.get('size'))}"
            ) from None
        # download_url is deliberately never read: it is a presigned credential.
        rows.append(
            {
                "provider": PROVIDER,
                "kit_id": sample_id,
                "file_id": file_id,
                "file_type": text_or_none(file.get("file_type")),
                "size_bytes": size,
                "checksum_sha256": text_or_none(file.get("checksum_sha256")),
            }
        )
    return rows


def transform_gencove_samples(
    details: Iterable[Any],
    *,
    key: bytes,
    observed_at: datetime,
    metadata_by_sample: Mapping[str, Any] | None = None,
    source: str = "poll",
) -> TransformResult:
    """`samples/{id}` details (+ optional `sample-metadata/{id}` payloads) -> kits, deliverables, events.

    Metadata may come inside the detail (as the kit guide shows) or from the metadata endpoint; both are
    scrubbed.
    A sample with metadata but no detail still gets its kits row (the "current" merge fills in the rest).
    """
    metadata_by_sample = metadata_by_sample or {}
    rows = TableRows(observed_at, "kits", "deliverables", "status_events")
    seen: set[str] = set()
    for detail in details:
        try:
            sample_id = _sample_id(detail, "sample detail")
        except ContractError as rejected:
            rows.quarantine(
                provider=PROVIDER,
                entity="kit",
                entity_id=None,
                stage="sample_detail",
                reason=rejected.reason,
                detail=rejected.detail,
                payload=detail,
                excerpt=False,
            )
            continue
        seen.add(sample_id)
        kit = _kit_row(detail, sample_id, key, source)
        if sample_id in metadata_by_sample:
            metadata = endpoint_metadata(metadata_by_sample[sample_id])
            kit["metadata_json"] = _metadata_json(metadata)
            kit["customer_key"] = sample_customer_key(metadata, detail.get("client_id"), key)
        rows.add("kits", kit)
        _add_event(rows, sample_id, detail.get("last_status"), source, "sample_detail")
        if detail.get("files", _ABSENT) is _ABSENT:
            continue
        try:
            rows.extend("deliverables", _deliverables(sample_id, detail.get("files")))
        except ContractError as rejected:
            rows.quarantine(
                provider=PROVIDER,
                entity="kit",
                entity_id=sample_id,
                stage="sample_detail",
                reason=rejected.reason,
                detail=rejected.detail,
                payload=detail.get("files"),
                excerpt=False,
            )
    for sample_id, payload in metadata_by_sample.items():
        if sample_id not in seen:
            metadata = endpoint_metadata(payload)
            rows.add(
                "kits",
                {
                    "provider": PROVIDER,
                    "kit_id": sample_id,
                    "customer_key": sample_customer_key(metadata, None, key),
                    "source": source,
                    "metadata_json": _metadata_json(metadata),
                },
            )
    return rows.result()


def detail_as_list_item(sample: Mapping[str, Any]) -> dict[str, Any]:
    """A `samples/{id}` detail as the listing item it extends: without files, metadata or project, so landing
    it records the sample's status without marking its details fetched."""
    return {k: v for k, v in sample.items() if k not in ("files", "metadata", "project")}


def samples_without_customer_id(items: Iterable[Any]) -> list[str]:
    """Ids of listed samples that carry no customer id of their own (client_id empty, no metadata): the ones
    whose `sample-metadata` must be read to key them before they are final (the kit-ordering guide's way)."""
    ids = []
    for item in items:
        if not isinstance(item, Mapping) or text_or_none(item.get("id")) is None:
            continue
        if not _is_id(item.get("client_id")) and not _is_id(metadata_customer_id(item.get("metadata"))):
            ids.append(str(item["id"]))
    return ids


def _is_id(value: object) -> bool:
    """Whether a value can be a customer id (what optional_customer_key keys): non-blank text or a number."""
    return isinstance(value, str | int) and not isinstance(value, bool) and bool(str(value).strip())


def transform_gencove_sample_customers(
    metadata_by_sample: Mapping[str, Any], *, key: bytes, observed_at: datetime, source: str = "poll"
) -> TransformResult:
    """`sample-metadata/{id}` payloads of samples not final yet -> their kits' customer_key, nothing else.

    metadata_json stays untouched: it marks a sample whose details were read (see warehouse.state), and
    these samples' details come when they are final.
    """
    rows = TableRows(observed_at, "kits")
    for sample_id, payload in metadata_by_sample.items():
        customer = optional_customer_key(metadata_customer_id(endpoint_metadata(payload)), key)
        if customer is not None:
            rows.add(
                "kits",
                {"provider": PROVIDER, "kit_id": sample_id, "customer_key": customer, "source": source},
            )
    return rows.result()


def transform_gencove_sample_statuses(
    statuses_by_sample: Mapping[str, Any], *, observed_at: datetime, source: str = "poll"
) -> TransformResult:
    """`sample-statuses/{id}` items (a list, or a page with `results`) per sample -> full status history."""
    rows = TableRows(observed_at, "status_events")
    for sample_id, payload in statuses_by_sample.items():
        items = _page_items(payload)
        if not isinstance(items, list):
            rows.quarantine(
                provider=PROVIDER,
                entity="kit",
                entity_id=sample_id,
                stage="sample_statuses",
                reason="not_a_list",
                detail="the status history is not a list of statuses",
                payload=payload,
                excerpt=False,
            )
            continue
        for item in items:
            if not isinstance(item, Mapping) or text_or_none(item.get("status")) is None:
                rows.quarantine(
                    provider=PROVIDER,
                    entity="kit",
                    entity_id=sample_id,
                    stage="sample_statuses",
                    reason="missing_field",
                    detail="a status history item has no 'status'",
                    payload=item,
                    excerpt=False,
                )
                continue
            _add_event(rows, sample_id, item, source, "sample_statuses")
    return rows.result()


def _per_sample(
    payloads: Mapping[str, Any],
    observed_at: datetime,
    table: str,
    stage: str,
    parse: Callable[[str, Any], list[dict[str, Any]]],
) -> TransformResult:
    """All or nothing per sample: one malformed item quarantines the sample's payload."""
    rows = TableRows(observed_at, table)
    for sample_id, payload in payloads.items():
        try:
            parsed = parse(sample_id, payload)
        except ContractError as rejected:
            rows.quarantine(
                provider=PROVIDER,
                entity="kit",
                entity_id=sample_id,
                stage=stage,
                reason=rejected.reason,
                detail=rejected.detail,
                payload=payload,
                excerpt=True,
            )
            continue
        rows.extend(table, parsed)
    return rows.result()


def _quality_controls(sample_id: str, payload: object) -> list[dict[str, Any]]:
    items = _page_items(payload)
    if not isinstance(items, list):
        raise ContractError("malformed_quality_controls", "quality controls are not a list")
    rows = []
    for position, item in enumerate(items, start=1):
        kind = _mapping(_mapping(item).get("quality_control_type"))
        check = _mapping(_mapping(item).get("quality_control"))
        qc_key = text_or_none(kind.get("key"))
        if qc_key is None:
            raise ContractError(
                "malformed_quality_controls", f"quality control {position} has no quality_control_type.key"
            )
        rows.append(
            {
                "provider": PROVIDER,
                "kit_id": sample_id,
                "qc_key": qc_key,
                "qc_type": text_or_none(kind.get("type")),
                "value_expected": _soft(as_float, check.get("value_expected")),
                "value_measured": _soft(as_float, check.get("value_measured")),
                "value_string": text_or_none(check.get("value_string")),
                "status": text_or_none(check.get("status")),
            }
        )
    return rows


def transform_gencove_quality_controls(
    qc_by_sample: Mapping[str, Any], *, observed_at: datetime
) -> TransformResult:
    """`sample-quality-controls/{id}` per sample -> quality_controls (one row per check)."""
    return _per_sample(qc_by_sample, observed_at, "quality_controls", "quality_controls", _quality_controls)


def _trait_scores(sample_id: str, payload: object) -> list[dict[str, Any]]:
    items = _page_items(payload)
    if not isinstance(items, list):
        raise ContractError("malformed_trait_scores", "trait scores are not a list")
    rows = []
    for position, item in enumerate(items, start=1):
        entry = _mapping(item)
        trait_key = text_or_none(_mapping(entry.get("trait")).get("key"))
        if trait_key is None:
            raise ContractError("malformed_trait_scores", f"trait score {position} has no trait.key")
        score = _mapping(entry.get("trait_score"))
        distribution = _mapping(entry.get("trait_distribution"))
        rows.append(
            {
                "provider": PROVIDER,
                "kit_id": sample_id,
                "trait_key": trait_key,
                "unit_key": text_or_none(_mapping(entry.get("trait_unit")).get("key")),
                "value": _soft(as_float, score.get("value")),
                "percentile": _soft(as_float, score.get("percentile")),
                "risk": text_or_none(entry.get("risk")),
                "distribution_version": text_or_none(distribution.get("version")),
                "distribution_json": None
                if distribution.get("value") is None
                else to_json(distribution.get("value")),
            }
        )
    return rows


def transform_gencove_trait_scores(
    traits_by_sample: Mapping[str, Any], *, observed_at: datetime
) -> TransformResult:
    """`sample-trait-scores/{id}` items (all pages) per sample -> trait_scores."""
    return _per_sample(traits_by_sample, observed_at, "trait_scores", "trait_scores", _trait_scores)


def population_fractions(value: object) -> dict[str, float] | None:
    """A plain population -> fraction mapping, or None when the ancestry JSON has another shape."""
    if not isinstance(value, Mapping) or not value:
        return None
    fractions = {}
    for population, fraction in value.items():
        name = text_or_none(population)
        number = _soft(as_float, fraction) if not isinstance(fraction, str) else None
        if name is None or number is None:
            return None
        fractions[name] = number
    return fractions


def transform_gencove_ancestry(
    ancestry_by_sample: Mapping[str, Any], *, key: bytes, observed_at: datetime
) -> TransformResult:
    """`sample-ancestry/{id}` per sample -> ancestry_reports (JSON as sent, metadata scrubbed), ancestry.

    The inner shape is unpublished, so the JSON is always kept and only a plain mapping is flattened.
    """
    rows = TableRows(observed_at, "ancestry", "ancestry_reports")
    for sample_id, payload in ancestry_by_sample.items():
        if not isinstance(payload, Mapping):
            rows.quarantine(
                provider=PROVIDER,
                entity="kit",
                entity_id=sample_id,
                stage="ancestry",
                reason="not_an_object",
                detail="the ancestry payload is not a JSON object",
                payload=payload,
                excerpt=True,
            )
            continue
        ancestry = _mapping(payload.get("ancestry")).get("value")
        metadata = scrub_json(_mapping(payload.get("metadata")).get("value"), key)
        rows.add(
            "ancestry_reports",
            {
                "provider": PROVIDER,
                "kit_id": sample_id,
                "ancestry_json": None if ancestry is None else to_json(ancestry),
                "metadata_json": None if metadata is None else to_json(metadata),
            },
        )
        for population, fraction in (population_fractions(ancestry) or {}).items():
            rows.add(
                "ancestry",
                {"provider": PROVIDER, "kit_id": sample_id, "population": population, "fraction": fraction},
            )
    return rows.result()


# --- what a sync needs to know of a sample -----------------------------------------------------------------

SUCCEEDED: Final = "succeeded"  # the final status whose sample has results (trait scores, ancestry)


def sample_id_of(item: Mapping[str, Any]) -> str:
    """A listed or detailed sample's id, as raw responses and plans key it."""
    return str(item.get("id"))


def sample_project(sample: Mapping[str, Any]) -> str:
    """The project a `samples/{id}` detail names (list items carry none)."""
    return str(sample.get("project"))


def sample_status(item: Mapping[str, Any]) -> tuple[object, object]:
    """A sample's (status, date of that status) from its `last_status`; (None, None) when it has none."""
    last = item.get("last_status")
    return (last.get("status"), last.get("created")) if isinstance(last, Mapping) else (None, None)


def final_status(sample: Mapping[str, Any]) -> str | None:
    """The sample's status when it is final (nothing more will change), else None."""
    status, _ = sample_status(sample)
    return status if isinstance(status, str) and is_final(PROVIDER, status) else None


def has_results(status: str) -> bool:
    """Whether a sample in this final status has results to fetch (trait scores, ancestry)."""
    return status == SUCCEEDED


@dataclass
class ListingTriage:
    """What one listed page means for the run: how many statuses changed, which samples are now final."""

    status_changes: int = 0
    final: list[str] = field(default_factory=list)


def triage_gencove_listing(
    items: Iterable[Mapping[str, Any]], known: Mapping[str, HeldStatus]
) -> ListingTriage:
    """Listed samples against the latest statuses held (sample id -> status)."""
    triage = ListingTriage()
    for item in items:
        status, created = sample_status(item)
        sample_id = sample_id_of(item)
        triage.status_changes += is_change(known.get(sample_id), status, created)
        if final_status(item) is not None:
            triage.final.append(sample_id)
    return triage


def sample_bundle(
    *,
    sample: Any,
    metadata: Any,
    statuses: Any,
    qc: Any,
    traits: Any = None,
    ancestry: Any = None,
) -> dict[str, Any]:
    """Everything kitsync keeps about one final sample, as one raw response (parts not fetched left out)."""
    parts = {"sample": sample, "metadata": metadata, "statuses": statuses, "qc": qc}
    if traits is not None:
        parts["traits"] = traits
    if ancestry is not None:
        parts["ancestry"] = ancestry
    return parts


def transform_gencove_bundles(
    bundles: Mapping[str, Mapping[str, Any]], *, key: bytes, source: str, observed_at: datetime
) -> TransformResult:
    """Sample bundles (see `sample_bundle`) -> kits, status events, result tables (fresh or reprocessed)."""

    def part(name: str) -> dict[str, Any]:
        return {sample_id: parts[name] for sample_id, parts in bundles.items() if name in parts}

    return concat_results(
        (
            transform_gencove_samples(
                [parts["sample"] for parts in bundles.values() if "sample" in parts],
                key=key,
                observed_at=observed_at,
                metadata_by_sample=part("metadata"),
                source=source,
            ),
            transform_gencove_sample_statuses(part("statuses"), observed_at=observed_at, source=source),
            transform_gencove_quality_controls(part("qc"), observed_at=observed_at),
            transform_gencove_trait_scores(part("traits"), observed_at=observed_at),
            transform_gencove_ancestry(part("ancestry"), key=key, observed_at=observed_at),
        )
    )


def pushed_samples(event: Mapping[str, Any]) -> dict[str, str]:
    """The samples a Gencove webhook event names (sample id -> project id): the ones to query again."""
    payload = event.get("payload") or {}
    if not isinstance(payload, Mapping):
        return {}
    project = payload.get("project") or {}
    project_id = str((project.get("id") if isinstance(project, Mapping) else None) or "")
    return {
        str(sample["id"]): project_id
        for sample in payload.get("samples") or []
        if isinstance(sample, Mapping) and sample.get("id")
    }
