"""The warehouse reconciled row by row against what the sandbox's partners said: expected rows per table.

Ground truth is the sandbox's `World` and the sandbox's own wire renderings (`sandbox.gencove_views`,
`sandbox.results`), read at the virtual moments kitsync polled: the rows below are what a partner showed,
written into the warehouse's vocabulary by this module's own rules (statuses mapped by the table written out
from the partner docs in tests/warehouse/lifecycle_oracle.py), never by kitsync's transforms.

What kitsync cannot observe is left out, each for a stated reason:
- statuses that came and went between two polls (Biomesight shows only the current status; webhooks, when
  flowing, push every later change; a Gencove sample's whole history is read once it is final);
- the kingdom of a taxon in the two id-based taxonomy CSV dialects (their rows start at phylum);
- pseudonymous customer keys (their derivation is kitsync's own and is tested in tests/transform): only their
  presence is checked, and a pseudonym must never be the partner's raw customer id;
- kitsync's own records and reference tables (quarantine, sync_runs, status_map, lifecycle_stages) and PDFs
  (fetched only when a setting asks).

`reconcile_content(world, db, polls=...)` returns a `ContentReport`: per table, expected and actual row counts
and the keys of missing, unexpected and mismatched rows. Entry point for any test that syncs a sandbox world.
"""

# ruff: noqa: S608 - table and column names in the SQL below come from this module's constants, quoted

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from sandbox.accounts import BIOMESIGHT_CLIENT_ID, GENCOVE_API_KEY, GENCOVE_PROJECT_IDS
from sandbox.gencove_views import FAILED_STATUSES, current_status, is_final, list_item, status_history
from sandbox.model import GencoveSample, Kit, Order, StatusChange, World, status_at
from sandbox.results import render_results_json
from tests.warehouse.lifecycle_oracle import BIOMESIGHT_KIT, BIOMESIGHT_ORDER, GENCOVE, SAMPLE_COLLECTED
from transform.gencove import METADATA_SAFE_FIELDS
from warehouse.duck import connect_readonly, quote_ident

Key = tuple[Any, ...]
Row = dict[str, Any]

# Each compared table: its key columns (the partner's identifiers) and the columns compared by value.
# Keys are the partner's own ids (order, kit, sample, file, population...): no pseudonym is needed to match.
COMPARED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "orders": (("provider", "order_id"), ("country_code", "purchased_at", "purchase_date")),
    "order_items": (("provider", "order_id", "position"), ("product_sku", "product_name", "quantity")),
    "kits": (
        ("provider", "kit_id"),
        (
            "order_id",
            "project_id",
            "country_code",
            "purchase_date",
            "sample_date",
            "sample_type",
            "bristol_scale",
            "bm_frequency",
            "physical_id",
            "hidden",
            "created_at",
            "modified_at",
            "failed_qc",
            "archive_status",
            "archive_status_at",
            "metadata_json",
        ),
    ),
    "status_events": (
        ("provider", "entity", "entity_id", "partner_status", "partner_date"),
        ("stage", "failure_reason", "description"),
    ),
    "results": (("provider", "kit_id"), ("sample_id", "export_date", "pipeline_id", "general_json")),
    "scores": (("provider", "kit_id", "score_name"), ("value",)),
    "recommendations": (("provider", "kit_id", "category", "action", "position"), ("item",)),
    "taxonomy": (("provider", "kit_id", "rank", "lineage"), ("taxon", "relative_abundance", "read_count")),
    "deliverables": (("provider", "kit_id", "file_id"), ("file_type", "size_bytes", "checksum_sha256")),
    "quality_controls": (
        ("provider", "kit_id", "qc_key"),
        ("qc_type", "value_expected", "value_measured", "value_string", "status"),
    ),
    "trait_scores": (
        ("provider", "kit_id", "trait_key"),
        ("unit_key", "value", "percentile", "risk", "distribution_version", "distribution_json"),
    ),
    "ancestry": (("provider", "kit_id", "population"), ("fraction",)),
    "ancestry_reports": (("provider", "kit_id"), ("ancestry_json", "metadata_json")),
}
JSON_COLUMNS = frozenset({"metadata_json", "general_json", "distribution_json", "ancestry_json"})
# Abundances travel as rounded text (Greengenes: percent with 6 decimals; tax_name: 8 decimals) or as counts.
ABSOLUTE_TOLERANCE = {"relative_abundance": 1e-8}
# Texts kitsync names itself for the platform export's events (not partner wording): not compared.
KITSYNC_WORDING = frozenset({("biomesight", "order", "Pending"), ("biomesight", "kit", SAMPLE_COLLECTED)})
# The taxonomy CSV dialects that name nodes by id and parent id (no Greengenes lineage).
_ID_DIALECTS = frozenset({"tax_name", "taxon_id"})


@dataclass
class TableReport:
    """One table: how many rows the partners' ground truth expects, how many the warehouse holds, and which
    rows differ (keys only, plus the first differing column of each mismatched row)."""

    expected: int = 0
    actual: int = 0
    missing: list[Key] = field(default_factory=list)
    unexpected: list[Key] = field(default_factory=list)
    mismatched: list[tuple[Key, str, Any, Any]] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    @property
    def wrong(self) -> list[tuple[Key, str, Any, Any]]:
        """Mismatches holding a value other than the partner's (not merely a value not yet fetched)."""
        return [m for m in self.mismatched if m[3] is not None]


@dataclass
class ContentReport:
    """Every compared table's `TableReport`, and the rows each checked."""

    tables: dict[str, TableReport]

    @property
    def exact(self) -> bool:
        return all(t.exact for t in self.tables.values())

    def count(self, what: str) -> int:
        """Rows `expected`, `actual`, `missing`, `unexpected`, `mismatched` or `wrong`, summed over tables."""
        return sum(
            getattr(t, what) if isinstance(getattr(t, what), int) else len(getattr(t, what))
            for t in self.tables.values()
        )

    @property
    def rows_lost(self) -> int:
        """Rows the partners showed that the warehouse lacks or holds wrong."""
        return self.count("missing") + self.count("mismatched")

    def without(self, ignore: Callable[[str, Key], bool]) -> ContentReport:
        """The report with some unexpected rows set aside (e.g. statuses a fault made the partner say)."""
        tables = {}
        for name, table in self.tables.items():
            kept = [key for key in table.unexpected if not ignore(name, key)]
            tables[name] = TableReport(
                table.expected, table.actual - (len(table.unexpected) - len(kept)), table.missing, kept,
                table.mismatched,
            )  # fmt: skip
        return ContentReport(tables)

    def summary(self) -> str:
        lines = [
            f"{self.count('expected')} rows expected in {len(self.tables)} tables, "
            f"{self.count('actual')} held; "
            f"{self.count('missing')} missing, {self.count('unexpected')} unexpected, "
            f"{self.count('mismatched')} mismatched"
        ]
        for name, t in self.tables.items():
            if t.exact:
                continue
            lines.append(
                f"  {name}: expected {t.expected}, held {t.actual}; missing {t.missing[:3]} "
                f"unexpected {t.unexpected[:3]} mismatched {t.mismatched[:3]} wrong {t.wrong[:3]}"
            )
        return "\n".join(lines)


# --- what the partners showed -----------------------------------------------------------------------------


def _text(value: Any) -> Any:
    """A blank text is no value (as a partner's empty string means nothing was said)."""
    return None if isinstance(value, str) and not value.strip() else value


def _seconds(moment: datetime) -> datetime:
    """Biomesight and the platform export send second-precision times."""
    return moment.astimezone(UTC).replace(microsecond=0)


def _status_row(
    provider: str, entity: str, entity_id: str, status: str, at: datetime, *, description: str | None
) -> tuple[Key, Row]:
    mapping = {"biomesight": BIOMESIGHT_KIT if entity == "kit" else BIOMESIGHT_ORDER, "gencove": GENCOVE}
    if provider == "biomesight" and entity == "kit" and status == SAMPLE_COLLECTED:
        stage, reason = "sample_collected", None
    else:
        stage, reason = mapping[provider][status]
    return (provider, entity, entity_id, status, at), {
        "stage": stage,
        "failure_reason": reason,
        "description": _text(description),
    }


def _biomesight_seen(
    timeline: list[StatusChange], polls: Sequence[datetime], pushed: bool
) -> set[StatusChange]:
    """The status current at each poll; with webhooks flowing, every change after the first poll too."""
    seen = {change for moment in polls if (change := status_at(timeline, moment)) is not None}
    if pushed:
        seen |= {c for c in timeline if polls[0] < c.at <= polls[-1]}
    return seen


def _orders(
    world: World, polls: Sequence[datetime], pushed: bool, expected: dict[str, dict[Key, Row]]
) -> None:
    from sandbox.biomesight_api import ORDER_STATUS_DESCRIPTIONS

    last = polls[-1]
    for order in world.orders.values():
        if order.account != BIOMESIGHT_CLIENT_ID or order.purchase_date > last:
            continue
        expected["orders"][("biomesight", order.order_id)] = {
            "country_code": order.customer.country_code,
            "purchased_at": _seconds(order.purchase_date),
            "purchase_date": order.purchase_date.astimezone(UTC).date(),
        }
        events = expected["status_events"]
        # The export's purchase, and "Pending" at the purchase time until the first change: one event.
        key, row = _status_row(
            "biomesight", "order", order.order_id, "Pending", _seconds(order.purchase_date), description=None
        )
        events[key] = row
        for change in _biomesight_seen(order.timeline, polls, pushed):
            description = change.description or ORDER_STATUS_DESCRIPTIONS.get(change.status, "")
            key, row = _status_row(
                "biomesight",
                "order",
                order.order_id,
                change.status,
                _seconds(change.at),
                description=description,
            )
            events[key] = row


def _kits(world: World, polls: Sequence[datetime], pushed: bool, expected: dict[str, dict[Key, Row]]) -> None:
    from sandbox.biomesight_api import KIT_STATUS_DESCRIPTIONS

    last = polls[-1]
    for kit in world.kits.values():
        if kit.account != BIOMESIGHT_CLIENT_ID or kit.registered_at is None or kit.registered_at > last:
            continue
        order: Order = world.orders[kit.order_id]
        expected["kits"][("biomesight", kit.kit_id)] = {
            "order_id": kit.order_id,
            "project_id": None,
            "country_code": order.customer.country_code,
            "purchase_date": order.purchase_date.astimezone(UTC).date(),
            "sample_date": kit.sample_date,
            "sample_type": kit.sample_type,
            "bristol_scale": kit.bristol_scale,
            "bm_frequency": kit.bm_frequency,
            "physical_id": None,
            "hidden": None,
            "created_at": None,
            "modified_at": None,
            "failed_qc": None,
            "archive_status": None,
            "archive_status_at": None,
            "metadata_json": None,
        }
        events = expected["status_events"]
        if kit.sample_date is not None:
            midnight = datetime.combine(kit.sample_date, time(), tzinfo=UTC)
            key, row = _status_row(
                "biomesight", "kit", kit.kit_id, SAMPLE_COLLECTED, midnight, description=None
            )
            events[key] = row
        for change in _biomesight_seen(kit.timeline, polls, pushed):
            description = change.description or KIT_STATUS_DESCRIPTIONS.get(change.status, "")
            key, row = _status_row(
                "biomesight", "kit", kit.kit_id, change.status, _seconds(change.at), description=description
            )
            events[key] = row
        if kit.result is not None and kit.results_ready_at is not None and kit.results_ready_at <= last:
            _results(kit, expected)


def _results(kit: Kit, expected: dict[str, dict[Key, Row]]) -> None:
    """A kit's results as `format=json` renders them, and its taxonomy as the lab's CSV dialect carries it."""
    result = kit.result
    assert result is not None
    body = render_results_json(kit)
    general = body["general"]
    expected["results"][("biomesight", kit.kit_id)] = {
        "sample_id": general["sample_id"],
        "export_date": _seconds(result.export_date),
        "pipeline_id": general["pipeline_id"],
        "general_json": general,
    }
    for name, value in body["scores"].items():
        expected["scores"][("biomesight", kit.kit_id, name)] = {"value": float(value)}
    for category, actions in body["recommendations"].items():
        for action, items in actions.items():
            for position, item in enumerate(items, start=1):
                expected["recommendations"][("biomesight", kit.kit_id, category, action, position)] = {
                    "item": item
                }
    by_ids = result.csv_dialect in _ID_DIALECTS
    for taxon in result.taxonomy:
        lineage = taxon.lineage
        if by_ids:  # rows start at phylum: the kingdom's name is not in the CSV
            kingdom, _, rest = lineage.partition("; ")
            lineage = f"{kingdom[:3]}; {rest}" if rest else kingdom[:3]
        expected["taxonomy"][("biomesight", kit.kit_id, taxon.rank, lineage)] = {
            "taxon": taxon.taxon,
            "relative_abundance": taxon.abundance,
            "read_count": taxon.count if by_ids else None,
        }


def _gencove(world: World, polls: Sequence[datetime], expected: dict[str, dict[Key, Row]]) -> None:
    last = polls[-1]
    for sample in world.samples.values():
        if sample.account != GENCOVE_API_KEY or sample.project_id not in GENCOVE_PROJECT_IDS:
            continue
        if sample.created > last:
            continue
        _sample(sample, [p for p in polls if p >= sample.created], expected)


def _sample(sample: GencoveSample, polls: Sequence[datetime], expected: dict[str, dict[Key, Row]]) -> None:
    last = polls[-1]
    item = list_item(sample, last)
    final = is_final(current_status(sample, last))
    metadata = None
    if final:
        # Only the fields the data contract declares safe are kept (free text, order numbers are not).
        metadata = {k: v for k, v in sample.metadata.items() if k in METADATA_SAFE_FIELDS}
    expected["kits"][("gencove", sample.sample_id)] = {
        "order_id": None,
        "project_id": sample.project_id,
        "country_code": None,
        "purchase_date": None,
        "sample_date": None,
        "sample_type": None,
        "bristol_scale": None,
        "bm_frequency": None,
        "physical_id": _text(item["physical_id"]),
        "hidden": item["hidden"],
        "created_at": sample.created,
        "modified_at": sample.modified_at(last),
        "failed_qc": list(sample.failed_qc) if item["last_status"]["status"] in FAILED_STATUSES else [],
        "archive_status": item["archive_last_status"]["status"],
        "archive_status_at": datetime.fromisoformat(item["archive_last_status"]["created"]),
        "metadata_json": metadata,
    }
    # The listing's current status at each poll, and the whole history once the sample is final.
    seen: dict[tuple[str, str], str] = {}
    for moment in polls:
        status = list_item(sample, moment)["last_status"]
        seen[(status["status"], status["created"])] = status["note"]
        if is_final(current_status(sample, moment)):
            seen |= {(s["status"], s["created"]): s["note"] for s in status_history(sample, moment)}
    for (status, created), note in seen.items():
        at = datetime.fromisoformat(created)
        key, row = _status_row("gencove", "kit", sample.sample_id, status, at, description=note)
        expected["status_events"][key] = row
    if final:
        _sample_results(sample, current_status(sample, last) == "succeeded", expected)


def _sample_results(sample: GencoveSample, succeeded: bool, expected: dict[str, dict[Key, Row]]) -> None:
    """A final sample's deliverables and QC; a succeeded one's trait scores and ancestry too."""
    kit = ("gencove", sample.sample_id)
    for file in sample.files:
        expected["deliverables"][(*kit, file.file_id)] = {
            "file_type": file.file_type,
            "size_bytes": file.size,
            "checksum_sha256": file.checksum_sha256,
        }
    for qc in sample.quality_controls:
        values = qc["quality_control"]
        expected["quality_controls"][(*kit, qc["quality_control_type"]["key"])] = {
            "qc_type": qc["quality_control_type"]["type"],
            "value_expected": values["value_expected"],
            "value_measured": values["value_measured"],
            "value_string": _text(values["value_string"]),
            "status": values["status"],
        }
    if not succeeded:
        return
    for trait in sample.trait_scores:
        expected["trait_scores"][(*kit, trait["trait"]["key"])] = {
            "unit_key": trait["trait_unit"]["key"],
            "value": trait["trait_score"]["value"],
            "percentile": trait["trait_score"]["percentile"],
            "risk": trait["risk"],
            "distribution_version": trait["trait_distribution"]["version"],
            "distribution_json": trait["trait_distribution"]["value"],
        }
    if sample.ancestry:
        body = sample.ancestry
        if "ancestry" not in body:
            body = {"ancestry": {"value": body}, "metadata": {"value": {}}}
        fractions = body["ancestry"]["value"]
        expected["ancestry_reports"][kit] = {
            "ancestry_json": fractions,
            "metadata_json": body["metadata"]["value"],
        }
        if isinstance(fractions, dict) and all(isinstance(v, (int, float)) for v in fractions.values()):
            for population, fraction in fractions.items():
                expected["ancestry"][(*kit, population)] = {"fraction": float(fraction)}


def expected_rows(
    world: World, polls: Sequence[datetime], *, pushed: bool = False
) -> dict[str, dict[Key, Row]]:
    """Every compared table's rows as the partners showed them to syncs at `polls` (virtual times, in order),
    with Biomesight's webhooks pushing changes between the first and last poll when `pushed`."""
    if not polls:
        raise ValueError("at least one poll time is needed")
    polls = sorted(polls)
    expected: dict[str, dict[Key, Row]] = {name: {} for name in COMPARED}
    with world.lock:
        _orders(world, polls, pushed, expected)
        _kits(world, polls, pushed, expected)
        _gencove(world, polls, expected)
    return expected


# --- what the warehouse holds -----------------------------------------------------------------------------


def actual_rows(db: Path) -> tuple[dict[str, dict[Key, Row]], dict[str, int]]:
    """The compared columns of every compared table, keyed like `expected_rows`; and the row counts (a
    duplicate key would show as a count above the keyed rows)."""
    connection = connect_readonly(db)
    rows: dict[str, dict[Key, Row]] = {}
    counts: dict[str, int] = {}
    try:
        for name, (key, columns) in COMPARED.items():
            selected = ", ".join(quote_ident(c) for c in (*key, *columns))
            found = connection.execute(f"SELECT {selected} FROM {quote_ident(name)}").fetchall()
            counts[name] = len(found)
            rows[name] = {r[: len(key)]: dict(zip(columns, r[len(key) :], strict=True)) for r in found}
    finally:
        connection.close()
    return rows, counts


def _same(column: str, want: Any, have: Any) -> bool:
    if column in JSON_COLUMNS and have is not None:
        have = json.loads(have)
        if column == "metadata_json" and isinstance(have, dict):
            have = {k: v for k, v in have.items() if k != "customer_id"}
    if want is None or have is None:
        return want is None and have is None
    if isinstance(want, float) or isinstance(have, float):
        return math.isclose(
            float(want), float(have), rel_tol=1e-9, abs_tol=ABSOLUTE_TOLERANCE.get(column, 0.0)
        )
    if isinstance(want, datetime):
        return isinstance(have, datetime) and have == want
    if isinstance(want, date):
        return not isinstance(have, datetime) and have == want
    if isinstance(want, (list, tuple)):
        return list(have) == list(want)
    return bool(have == want)


def compare(
    expected: dict[str, dict[Key, Row]], actual: dict[str, dict[Key, Row]], counts: dict[str, int]
) -> ContentReport:
    """Row by row, column by column."""
    tables = {}
    for name, rows in expected.items():
        held = actual[name]
        report = TableReport(expected=len(rows), actual=counts[name])
        report.missing = sorted((k for k in rows if k not in held), key=repr)
        report.unexpected = sorted((k for k in held if k not in rows), key=repr)
        for key in sorted(rows.keys() & held.keys(), key=repr):
            for column, want in rows[key].items():
                if (
                    name == "status_events"
                    and column == "description"
                    and (key[0], key[1], key[3]) in KITSYNC_WORDING
                ):
                    continue
                if not _same(column, want, held[key][column]):
                    report.mismatched.append((key, column, want, held[key][column]))
                    break
        tables[name] = report
    return ContentReport(tables)


def reconcile_content(
    world: World, db: Path, polls: Iterable[datetime] | None = None, *, pushed: bool = False
) -> ContentReport:
    """The published warehouse `db` compared by content with what the partners showed at `polls` (default:
    one sync at the world's current virtual time)."""
    moments = sorted(polls) if polls is not None else [world.clock.now()]
    actual, counts = actual_rows(db)
    return compare(expected_rows(world, moments, pushed=pushed), actual, counts)
