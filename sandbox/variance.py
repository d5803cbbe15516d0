"""The variance profile: the sandbox stops agreeing with kitsync by construction (`sandbox serve --variance`).

The sandbox was written with the clients, so by default it speaks exactly the dialect they expect. A variance
profile makes it use, deterministically from a seed, the freedom the partner docs and partners/NOTES.md leave
open, so the suite can find what client and sandbox both assumed:

- `limit` capped below what was asked, a different cap per endpoint (DRF's `max_limit`, unpublished);
- `project-samples` filters defaulting to visible, available samples (the defaults are unpublished);
- `next`/`previous` links (absolute, as DRF builds them) with their query parameters in another order;
- timestamps with and without fractional seconds (whole-second and millisecond moments exist in a varied
  world), with `Z` or `+00:00`, and `archive_last_status.created` in Python's space-separated form;
- an unknown extra field on every object the partner describes (never inside customer metadata, scores,
  recommendations or ancestry values, which are data, not records);
- the shapes documented both ways: quality controls, trait scores and status histories as a bare list or
  as a page;
- `failed_qc` as a list or as the string the spec types it as; both spellings `failed qc` / `failed_qc`
  (already in every world);
- `client_id` empty on some samples; metadata inside the sample detail (as the kit guide shows) or only at
  `sample-metadata` (as the spec has it);
- more samples sharing one `modified` instant than a page holds (a bulk order);
- Biomesight score keys in odd case (`GUT_HEALTH`, `gutHealth`, `Diversity`), `date` with `Z` or
  `+00:00`, and taxonomy CSVs with a UTF-8 BOM and/or CRLF line endings.

Everything a variance changes in meaning lives in the world (whole-second moments, empty client ids, the
bulk order): the world stays the ground truth. The rest only changes spelling, and `Variance` can say how
each thing was spelled (e.g. `score_name`), so tests compare against what the partner really sent.
Like the rest of the sandbox, this imports nothing of the product.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web
from multidict import MultiDict
from yarl import URL

from sandbox.accounts import GENCOVE_API_KEY, GENCOVE_PROJECT_IDS
from sandbox.model import StatusChange, World
from sandbox.wire import JSON_TYPE, json_response

# Keys whose values are data (customer metadata, score maps, population fractions...), not partner records:
# no extra field is added inside them and their strings are left alone.
OPAQUE_KEYS = frozenset({"metadata", "value", "scores", "recommendations", "csv", "pdf"})
# Realistic unknown fields a newer API version might add.
_EXTRA_FIELDS = (
    ("schema_version", 3),
    ("links", {"self": None}),
    ("x_trace", "sandbox-variance"),
    ("tags", []),
)
# How each documented score key may be spelled (the first is the doc's own spelling).
SCORE_SPELLINGS: dict[str, tuple[str, ...]] = {
    "gut_health": ("gut_health", "Gut_Health", "GUT_HEALTH", "gutHealth", "Gut Health"),
    "Diversity": ("Diversity", "diversity", "DIVERSITY"),
    "Probiotic": ("Probiotic", "probiotic", "PROBIOTIC"),
    "Commensal": ("Commensal", "commensal", "COMMENSAL"),
    "Pathobiont": ("Pathobiont", "pathobiont", "PATHOBIONT"),
}
LISTING_DEFAULTS = {"hidden_status": "visible", "archive_status": "available"}
BULK_ORDER_SIZE = 12  # samples created at one instant: more than any variance page cap below holds


def _draw(seed: int, *parts: object) -> random.Random:
    return random.Random(":".join(str(p) for p in ("variance", seed, *parts)))


def _roll(seed: int, *parts: object) -> float:
    """A deterministic number in [0, 1) for one decision (blake2b: no PYTHONHASHSEED dependence)."""
    digest = hashlib.blake2b(":".join(str(p) for p in (seed, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True)
class Variance:
    """What one variance profile does; every choice follows from `seed`."""

    seed: int
    caps: dict[str, int] = field(default_factory=dict)  # endpoint -> largest `limit` served
    bare_lists: frozenset[str] = frozenset()  # listed endpoints answering with a bare list, not a page

    @classmethod
    def from_seed(cls, seed: int) -> Variance:
        """Caps drawn per endpoint from the seed; quality controls (documented as a bare list) come as a page
        and trait scores (documented as a page) as a bare list: the other way from the default sandbox."""
        rng = _draw(seed, "profile")
        caps = {
            "gencove.project_samples": rng.choice((5, 7, 9, 11)),
            "gencove.sample_statuses": rng.choice((1, 2, 3)),
            "gencove.trait_scores": rng.choice((2, 3, 4)),
            "gencove.quality_controls": rng.choice((2, 4, 5)),
        }
        return cls(seed=seed, caps=caps, bare_lists=frozenset({"gencove.trait_scores"}))

    # --- decisions per thing -----------------------------------------------------------------------------

    def metadata_in_detail(self, sample_id: str) -> bool:
        """Whether `samples/{id}` carries the sample's metadata too (the kit guide's shape)."""
        return _roll(self.seed, "metadata", sample_id) < 0.5

    def failed_qc_as_text(self, sample_id: str) -> bool:
        """Whether `failed_qc` comes as the spec's string rather than the list the API sends."""
        return _roll(self.seed, "failed_qc", sample_id) < 0.5

    def score_name(self, kit_id: str, documented: str) -> str:
        """How the score documented as `documented` is spelled in `kit_id`'s results."""
        spellings = SCORE_SPELLINGS.get(documented, (documented,))
        return spellings[int(_roll(self.seed, "score", kit_id, documented) * len(spellings))]

    def csv_dialect(self, kit_id: str) -> tuple[bool, bool]:
        """(UTF-8 BOM, CRLF line endings) of a kit's taxonomy CSV."""
        roll = _roll(self.seed, "csv", kit_id)
        return roll < 0.5, 0.25 <= roll < 0.75

    # --- serving -----------------------------------------------------------------------------------------

    def listing_query(self, query: Any) -> Any:
        """project-samples parameters with narrower defaults than the plain sandbox's `all`: only visible,
        available samples unless asked otherwise (the defaults are unpublished; a DRF filter may well
        default to what a user interface shows)."""
        widened = MultiDict(query)
        for name, default in LISTING_DEFAULTS.items():
            if not widened.get(name):
                widened[name] = default
        return widened

    def render_taxonomy_csv(self, kit_id: str, text: str) -> bytes:
        bom, crlf = self.csv_dialect(kit_id)
        if crlf:
            text = text.replace("\r\n", "\n").replace("\n", "\r\n")
        return ("\ufeff" if bom else "").encode() + text.encode()

    def respell(self, endpoint: str, body: Any) -> Any:
        """A JSON body as the varied partner spells it (same meaning)."""
        return _Respeller(self, endpoint).walk(body, None)


class _Respeller:
    def __init__(self, variance: Variance, endpoint: str) -> None:
        self.variance = variance
        self.seed = variance.seed
        self.endpoint = endpoint
        self.objects = 0

    def walk(self, value: Any, key: str | None) -> Any:
        if isinstance(value, dict):
            return self._object(value, key)
        if isinstance(value, list):
            return [self.walk(item, key) for item in value]
        if isinstance(value, str):
            return self._text(value, key)
        return value

    def _object(self, value: dict[str, Any], key: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, item in value.items():
            if name in OPAQUE_KEYS:
                out[name] = item
            elif name in ("next", "previous") and isinstance(item, str):
                out[name] = self._link(item)
            elif (
                name == "failed_qc"
                and isinstance(item, list)
                and self.variance.failed_qc_as_text(str(value.get("id")))
            ):
                out[name] = ",".join(str(reason) for reason in item)
            else:
                out[name] = self.walk(item, name)
        self.objects += 1
        extra, sample = _EXTRA_FIELDS[int(_roll(self.seed, "extra", self.endpoint, self.objects) * 4)]
        out.setdefault(extra, sample)
        return out

    def _link(self, link: str) -> str:
        """The same absolute link with its query parameters in another (deterministic) order."""
        url = URL(link)
        pairs = list(url.query.items())
        _draw(self.seed, "link", link).shuffle(pairs)
        if len(pairs) > 1 and [k for k, _ in pairs] == list(url.query.keys()):
            pairs.reverse()
        return str(url.with_query(pairs))

    def _text(self, text: str, key: str | None) -> str:
        moment = _timestamp(text)
        if moment is None:
            return text
        roll = _roll(self.seed, "time", key, text)
        zone = "Z" if roll < 0.5 else "+00:00"
        spaced = " " in text
        if spaced:  # archive_last_status.created: Python's str(), which omits a zero fraction
            return str(moment)
        fraction = _fraction(moment, roll)
        return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + zone


def _fraction(moment: datetime, roll: float) -> str:
    """A lossless fractional part: none for whole seconds (sometimes `.000000`), milliseconds when exact."""
    micros = moment.microsecond
    if micros == 0:
        return "" if roll < 0.8 else ".000000"
    if micros % 1000 == 0 and roll < 0.75:
        return f".{micros // 1000:03d}"
    return f".{micros:06d}"


def _timestamp(text: str) -> datetime | None:
    """The moment of a partner timestamp string (ours are always UTC), else None."""
    if len(text) < 19 or text[4] != "-" or text[10] not in "T " or text[13] != ":":
        return None
    raw = text[:-1] + "+00:00" if text.endswith("Z") else text
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def variance_middleware(variance: Variance) -> Any:
    """Respell every JSON answer of both partner APIs (admin endpoints stay as they are)."""

    @web.middleware
    async def respell(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if not request.path.startswith("/api/") or not isinstance(response, web.Response):
            return response
        if response.content_type != JSON_TYPE or not isinstance(response.body, bytes):
            return response
        try:
            body = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            return response  # a fault's broken body stays broken
        route = request.match_info.route.name or request.path
        kept = {
            k: v for k, v in response.headers.items() if k.lower() not in ("content-type", "content-length")
        }
        return json_response(variance.respell(route, body), status=response.status, headers=kept)

    return respell


# --- the varied world ---------------------------------------------------------------------------------------


BULK_ORDER = {
    "recipient_address_name": "Bulk Order",
    "recipient_address_line1": "1 Batch Street",
    "recipient_address_city": "Leeds",
    "recipient_address_state_region": "West Yorkshire",
    "recipient_address_postal_code": "LS1 1AA",
    "recipient_address_country_code": "GB",
    "recipient_email": "bulk@example.org",
    "recipient_phone": "+44 113 496 0001",
}


def vary_world(world: World, seed: int | None = None) -> World:
    """Make a generated world use what the docs leave open in meaning (in place; returns it).

    - about a third of the samples carry whole-second moments and a sixth millisecond ones (Gencove stamps
      with microseconds otherwise);
    - about a tenth of our samples have an empty `client_id` (the kit guide's example shows one), and
      about one in twelve empty metadata `{}` (ordered without any), and one in twenty is hidden;
    - `BULK_ORDER_SIZE` test-mode samples (never shipped, so they never change) are created at one instant
      an hour before the clock, in the first project: more samples share one `modified` than a page holds.
    """
    from sandbox.changes import order_sample_kit

    seed = world.seed if seed is None else seed
    with world.lock:
        for sample in list(world.samples.values()):
            roll = _roll(seed, "precision", sample.sample_id)
            if roll < 0.5:
                unit = timedelta(seconds=1) if roll < 0.33 else timedelta(milliseconds=1)
                _truncate(sample, unit)
            if sample.account == GENCOVE_API_KEY and _roll(seed, "client_id", sample.sample_id) < 0.1:
                sample.client_id = ""
            if sample.account == GENCOVE_API_KEY and _roll(seed, "no_metadata", sample.sample_id) < 0.08:
                sample.metadata = {}
            if _roll(seed, "hidden", sample.sample_id) < 0.05:
                sample.hidden = True
        bulk_at = (world.clock.now() - timedelta(hours=1)).replace(microsecond=0)
        for number in range(BULK_ORDER_SIZE):
            order_sample_kit(
                world,
                GENCOVE_API_KEY,
                {
                    **BULK_ORDER,
                    "project_id": GENCOVE_PROJECT_IDS[0],
                    "test_mode": True,
                    "metadata": {
                        "customer_id": f"bulk_{seed}_{number}",
                        "order_number": f"BULK-{number:03d}",
                    },
                },
                bulk_at,
            )
    return world


def _floor(moment: datetime, unit: timedelta) -> datetime:
    step = unit // timedelta(microseconds=1)  # 1_000 or 1_000_000: both floor within the second
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % step)


def _truncate(sample: Any, unit: timedelta) -> None:
    """Floor every moment of a sample to `unit`: order is kept (flooring is monotone)."""
    sample.created = _floor(sample.created, unit)
    sample.timeline = [StatusChange(c.status, _floor(c.at, unit), c.description) for c in sample.timeline]
    sample.archive_timeline = [
        StatusChange(c.status, _floor(c.at, unit), c.description) for c in sample.archive_timeline
    ]
