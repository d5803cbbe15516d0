"""Strict, total coercions from partner JSON/CSV values to the column types of the contract.

Partners send strings for numbers, naive timestamps, spaces instead of `T`; these helpers accept what the
docs and notes show and raise `ContractError` (a reason code and a sentence) for anything else, so that a
transform can turn one bad record into one quarantine row instead of failing its batch.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, date, datetime
from typing import Any, Final

INT32: Final = (-(2**31), 2**31 - 1)
INT64: Final = (-(2**63), 2**63 - 1)


class ContractError(ValueError):
    """A record that does not fit its contract: `reason` is a short code, the message a sentence to act on."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def storable(text: str) -> str:
    """The text itself, unless it holds lone surrogates (JSON escapes allow them, UTF-8 and Arrow do not)."""
    if text.isascii():  # the usual case, answered without encoding the text
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def text_or_none(value: object) -> str | None:
    """A trimmed string for str/number values; None for missing, blank or structured values."""
    if value.__class__ is str:  # the usual case first: a text field read from JSON
        stripped = value.strip()
        return storable(stripped) if stripped else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        stripped = value.strip()
        return storable(stripped) if stripped else None
    return None


def required_text(record: dict[str, Any], field: str, *, what: str) -> str:
    """A present, non-blank string field, or ContractError('missing_field')."""
    value = text_or_none(record.get(field))
    if value is None:
        raise ContractError("missing_field", f"{what} has no '{field}'; the partner must send it")
    return value


def parse_timestamp(value: object) -> datetime | None:
    """An aware UTC datetime from ISO 8601 (`T` or space, `Z` or offset, or none: then UTC); None if missing.

    Raises ValueError for a value that is present but not a timestamp.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise ValueError(f"{shown(value)} is not a timestamp string")
    try:
        parsed = datetime.fromisoformat(value.strip())
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError) as error:
        raise ValueError(f"{shown(value)} is not an ISO 8601 timestamp") from error


def parse_date(value: object) -> date | None:
    """A calendar date from `YYYY-MM-DD` (or the UTC date of a full timestamp); None if missing."""
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            return date.fromisoformat(value.strip())
        except ValueError as error:
            raise ValueError(f"{shown(value)} is not a YYYY-MM-DD date") from error
    parsed = parse_timestamp(value)
    return None if parsed is None else parsed.date()


def _integral(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value) and value.is_integer()
    return isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d{1,20}\s*", value) is not None


def as_int(value: object, *, bounds: tuple[int, int] = INT64) -> int | None:
    """An integer from an int, an integral float or a digit string; None if missing; ValueError otherwise."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number: int
    if isinstance(value, bool):
        raise ValueError(f"{shown(value)} is not an integer")
    if isinstance(value, int):
        number = value
    elif _integral(value):
        number = int(value)  # type: ignore[arg-type]
        number = int(value)
    else:
        raise ValueError(f"{shown(value)} is not an integer")
    if not bounds[0] <= number <= bounds[1]:
        raise ValueError(f"{number} is outside {bounds[0]}..{bounds[1]}")
    return number


def as_float(value: object) -> float | None:
    """A finite float from a number or numeric string; None if missing; ValueError otherwise."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{shown(value)} is not a number")
    try:
        number = float(value)
    except (ValueError, OverflowError) as error:
        raise ValueError(f"{shown(value)} is not a number") from error
    if not math.isfinite(number):
        raise ValueError(f"{shown(value)} is not a finite number")
    return number


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def to_json(value: Any) -> str:
    """Canonical JSON text (sorted keys, valid JSON: non-finite floats become null) for a JSON column."""
    try:
        text = json.dumps(
            value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str
        )
    except (ValueError, TypeError):
        text = json.dumps(
            _finite(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
        )
    return storable(text)


def payload_bytes(payload: object) -> bytes:
    """The bytes a payload is fingerprinted by: raw bytes as they are, anything else as canonical JSON."""
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogatepass")
    return to_json(payload).encode("utf-8")


def sha256_hex(payload: object) -> str:
    return hashlib.sha256(payload_bytes(payload)).hexdigest()


def snake_case(name: str) -> str:
    """A stable key for a partner's label: "Diversity" -> "diversity", "GutHealth" -> "gut_health"."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip())
    return re.sub(r"[^0-9a-z]+", "_", spaced.casefold()).strip("_")


def shown(value: object, limit: int = 40) -> str:
    """A short rendering of a bad value for a quarantine detail (never a whole payload)."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
