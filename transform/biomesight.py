"""Biomesight payloads -> tables: kit and order status payloads (poll or webhook) and results JSON.

Taxonomy CSVs have their own module (`transform.taxonomy`); the platform's orders and registrations are in
`transform.platform`.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

from transform.changes import HeldStatus, is_change
from transform.result import TableRows, TransformResult, build_table
from transform.status import Entity, entity_of, to_stage
from transform.taxonomy import transform_biomesight_taxonomy_base64
from transform.values import (
    ContractError,
    as_float,
    as_int,
    parse_timestamp,
    required_text,
    shown,
    snake_case,
    text_or_none,
    to_json,
)

PROVIDER: Final = "biomesight"
_ID_FIELD: Final[dict[Entity, str]] = {"kit": "kit_id", "order": "order_id"}
_CSV_FIELD: Final = "csv"  # where `results?format=csv` carries the taxonomy CSV, base64-encoded


def status_entity(payload: Mapping[str, Any]) -> Entity:
    """Which entity a status payload is about: the one decision, for the webhook receiver's event ids and for
    the status events alike.

    The partner's documented webhook example names both ids. A kit update naming its order is the likely
    reading, so a `kit_id` makes it a kit's, unless its status is one of the order statuses (they never share
    a name with a kit's); a bare `order_id` makes it an order's.
    """
    kit_id = text_or_none(payload.get("kit_id"))
    order_id = text_or_none(payload.get("order_id"))
    if kit_id and order_id:
        status = text_or_none(payload.get("status")) or ""
        return "order" if entity_of(PROVIDER, status) == "order" else "kit"
    if kit_id or order_id:
        return "kit" if kit_id else "order"
    return "kit" if "kit_id" in payload else "order"  # no usable id: the one named, so the error names it


def _entity(payload: Mapping[str, Any], entity: Entity | None) -> tuple[Entity, str]:
    """The entity and id of a status payload: `entity` when the caller polled one endpoint, else as
    `status_entity` decides (webhooks mix order and kit updates)."""
    if entity is None:
        if not (text_or_none(payload.get("kit_id")) or text_or_none(payload.get("order_id"))):
            raise ContractError("missing_field", "the status payload has neither kit_id nor order_id")
        entity = status_entity(payload)
    return entity, required_text(dict(payload), _ID_FIELD[entity], what=f"the {entity} status payload")


def transform_biomesight_statuses(
    payloads: Iterable[Any], *, source: str, observed_at: datetime, entity: Entity | None = None
) -> TransformResult:
    """Status payloads `{"kit_id"|"order_id", "status", "description", "date"}` -> status events.

    `entity` pins the kind when the caller polled one endpoint; for webhooks (None) the id field decides.
    """
    rows = TableRows(observed_at, "status_events")
    for payload in payloads:
        entity_id: str | None = None
        kind: Entity = entity or "kit"
        try:
            if not isinstance(payload, Mapping):
                raise ContractError("not_an_object", "the status payload is not a JSON object")
            kind, entity_id = _entity(payload, entity)
            status = required_text(dict(payload), "status", what=f"the status payload of {kind} {entity_id}")
            try:
                partner_date = parse_timestamp(payload.get("date"))
            except ValueError as error:
                raise ContractError(
                    "bad_date", f"date {error}; expected ISO 8601 like 2025-07-10T14:22:00Z"
                ) from None
            if partner_date is None:
                raise ContractError(
                    "bad_date", f"the status '{status}' has no date, so it cannot be placed in history"
                )
        except ContractError as rejected:
            rows.quarantine(
                provider=PROVIDER,
                entity=kind,
                entity_id=entity_id,
                stage=f"{source}.status",
                reason=rejected.reason,
                detail=rejected.detail,
                payload=payload,
                excerpt=True,
            )
            continue
        stage, reason = to_stage(PROVIDER, status)
        if stage == "unknown":
            rows.unknown_statuses[(PROVIDER, status)] += 1
        rows.add(
            "status_events",
            {
                "provider": PROVIDER,
                "entity": kind,
                "entity_id": entity_id,
                "partner_status": status,
                "stage": stage,
                "failure_reason": reason,
                "description": text_or_none(payload.get("description")),
                "partner_date": partner_date,
                "source": source,
            },
        )
    return rows.result()


def _scores(kit_id: str, scores: object) -> list[dict[str, Any]]:
    if not isinstance(scores, Mapping):
        raise ContractError(
            "malformed_results", f"'scores' is {shown(scores)}, not an object of score -> number"
        )
    rows: dict[str, dict[str, Any]] = {}
    for name, value in scores.items():
        score_name = text_or_none(name)
        score_key = snake_case(score_name) if score_name else ""
        if not score_name or not score_key:
            raise ContractError("malformed_results", f"score name {shown(name)} has no letters or digits")
        try:
            number = as_float(value)
        except ValueError:
            raise ContractError(
                "malformed_results", f"score '{score_name}' is {shown(value)}, not a number"
            ) from None
        if score_key in rows:
            raise ContractError(
                "malformed_results",
                f"scores '{rows[score_key]['score_name']}' and '{score_name}' both become '{score_key}'",
            )
        rows[score_key] = {
            "provider": PROVIDER,
            "kit_id": kit_id,
            "score_key": score_key,
            "score_name": score_name,
            "value": number,
        }
    return list(rows.values())


def _recommendations(kit_id: str, recommendations: object) -> list[dict[str, Any]]:
    if recommendations is None:
        return []
    if not isinstance(recommendations, Mapping):
        raise ContractError(
            "malformed_results", "'recommendations' is not an object of category -> action -> items"
        )
    rows = []
    for category, actions in recommendations.items():
        if not isinstance(actions, Mapping):
            raise ContractError(
                "malformed_results", f"recommendations '{category}' is not an object of action -> items"
            )
        for action, items in actions.items():
            if not isinstance(items, list):
                raise ContractError(
                    "malformed_results", f"recommendations '{category}/{action}' is not a list"
                )
            for position, item in enumerate(items, start=1):
                text = text_or_none(item)
                if text is None:
                    raise ContractError(
                        "malformed_results",
                        f"recommendation {position} of '{category}/{action}' is {shown(item)}",
                    )
                rows.append(
                    {
                        "provider": PROVIDER,
                        "kit_id": kit_id,
                        "category": text_or_none(category) or "",
                        "action": text_or_none(action) or "",
                        "position": position,
                        "item": text,
                    }
                )
    return rows


def _soft(parse: Any, value: object) -> Any:
    """Metadata that does not parse becomes null (its raw form stays in general_json), not a lost result."""
    try:
        return parse(value)
    except ValueError:
        return None


def _result_row(kit_id: str, general: object) -> dict[str, Any]:
    if general is None:
        general = {}
    if not isinstance(general, Mapping):
        raise ContractError("malformed_results", f"'general' is {shown(general)}, not an object")
    sent_kit_id = text_or_none(general.get("kit_id"))
    if sent_kit_id is not None and sent_kit_id != kit_id:
        raise ContractError(
            "kit_id_mismatch", f"results asked for kit {kit_id} name kit {sent_kit_id}; ask Biomesight"
        )
    return {
        "provider": PROVIDER,
        "kit_id": kit_id,
        "sample_id": _soft(as_int, general.get("sample_id")),
        "export_date": _soft(parse_timestamp, general.get("export_date")),
        "pipeline_id": _soft(as_int, general.get("pipeline_id")),
        "general_json": to_json(general) if general else None,
    }


def transform_biomesight_results(
    results_by_kit: Mapping[str, Any], *, observed_at: datetime
) -> TransformResult:
    """Results JSON per kit id (`{scores, recommendations, general}`) -> results, scores, recommendations.

    All or nothing per kit: a malformed part quarantines the kit's results, so a re-fetch replaces them whole.
    """
    rows = TableRows(observed_at, "results", "scores", "recommendations")
    for kit_id, payload in results_by_kit.items():
        try:
            if not isinstance(payload, Mapping):
                raise ContractError("malformed_results", "the results payload is not a JSON object")
            result = _result_row(kit_id, payload.get("general"))
            scores = _scores(kit_id, payload.get("scores"))
            recommendations = _recommendations(kit_id, payload.get("recommendations"))
        except ContractError as rejected:
            rows.quarantine(
                provider=PROVIDER,
                entity="kit",
                entity_id=kit_id,
                stage="results",
                reason=rejected.reason,
                detail=rejected.detail,
                payload=payload,
                excerpt=True,
            )
            continue
        rows.add("results", result)
        rows.extend("scores", scores)
        rows.extend("recommendations", recommendations)
    return rows.result()


@dataclass
class StatusTriage:
    """What one batch of polled statuses means for the run: what to land, what changed, which kits are ready.

    Only changes (and what the transform must quarantine) are landed: an hourly run re-reads thousands of
    unchanged statuses, whose events and raw bodies would only be dropped again as duplicates at the load.
    """

    changed: dict[Entity, dict[str, Any]] = field(default_factory=lambda: {"order": {}, "kit": {}})
    status_changes: int = 0
    still_unknown: Counter[tuple[str, str]] = field(default_factory=Counter)
    newly_ready: list[str] = field(default_factory=list)


def triage_biomesight_statuses(
    polled: Mapping[Entity, Mapping[str, Any]], known: Mapping[tuple[str, str], HeldStatus]
) -> StatusTriage:
    """Polled status payloads (entity -> id -> payload) against the latest statuses held ((entity, id) ->)."""
    triage = StatusTriage()
    for kind, payloads in polled.items():
        for entity_id, answer in payloads.items():
            status = answer.get("status") if isinstance(answer, Mapping) else None
            date = answer.get("date") if isinstance(answer, Mapping) else None
            stage = to_stage(PROVIDER, status)[0] if isinstance(status, str) else None
            if is_change(known.get((kind, entity_id)), status, date):
                triage.status_changes += 1
                triage.changed[kind][entity_id] = answer
            elif not isinstance(date, str):
                triage.changed[kind][entity_id] = (
                    answer  # undated: the transform quarantines it, with the reason
                )
            elif stage == "unknown":
                triage.still_unknown[(PROVIDER, str(status))] += 1  # still reported every run until mapped
            if kind == "kit" and stage == "results_ready":
                triage.newly_ready.append(entity_id)
    return triage


def taxonomy_raw_body(csv: bytes) -> dict[str, str]:
    """A decoded taxonomy CSV as the raw response it came in (`{"csv": base64}`), so a later fix of the
    transform can reprocess it like any other stored answer."""
    return {_CSV_FIELD: base64.b64encode(csv).decode("ascii")}


def transform_biomesight_taxonomy_answers(
    answers_by_kit: Mapping[str, Any], *, observed_at: datetime
) -> TransformResult:
    """Stored `results?format=csv` answers (`{"csv": base64}`) -> taxonomy (bad base64: quarantined)."""
    encoded = {
        kit_id: answer.get(_CSV_FIELD) if isinstance(answer, Mapping) else answer
        for kit_id, answer in answers_by_kit.items()
    }
    return transform_biomesight_taxonomy_base64(encoded, observed_at=observed_at)


class StoredReport(Protocol):
    """Where a kit's PDF report was stored (`warehouse.raw.StoredFile` fits)."""

    @property
    def path(self) -> str: ...

    @property
    def size_bytes(self) -> int: ...

    @property
    def sha256(self) -> str: ...


def transform_biomesight_report_pdfs(
    stored_by_kit: Mapping[str, StoredReport], *, observed_at: datetime
) -> TransformResult:
    """Stored PDF reports per kit -> report_pdfs rows (none: no table, so nothing is written)."""
    rows = [
        {
            "provider": PROVIDER,
            "kit_id": kit_id,
            "path": stored.path,
            "size_bytes": stored.size_bytes,
            "sha256": stored.sha256,
            "observed_at": observed_at,
        }
        for kit_id, stored in stored_by_kit.items()
    ]
    return TransformResult(tables={"report_pdfs": build_table("report_pdfs", rows)} if rows else {})
