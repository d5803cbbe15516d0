"""Reading the platform's order/kit export (CSV or parquet) in batches, as plain string rows.

The export holds customer PII; it is read here only to be pseudonymized by transform/ before anything is
written. Nothing of it is kept as it was read.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq


class ExportFormatError(ValueError):
    """The file is not a CSV or parquet export kitsync can read."""


def read_export(path: str | os.PathLike[str], *, batch_size: int = 5_000) -> Iterator[list[dict[str, str]]]:
    """Yield the export's rows in batches; values are strings ("" for missing), whatever the file format."""
    file = Path(path)
    if not file.is_file():
        raise ExportFormatError(f"{file}: no such file")
    if file.suffix.lower() == ".parquet":
        yield from _parquet_batches(file, batch_size)
    elif file.suffix.lower() in {".csv", ".txt"}:
        yield from _csv_batches(file, batch_size)
    else:
        raise ExportFormatError(
            f"{file}: expected a .csv or .parquet export, not {file.suffix or 'no extension'}"
        )


def _csv_batches(file: Path, batch_size: int) -> Iterator[list[dict[str, str]]]:
    with file.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames:
            raise ExportFormatError(f"{file}: the CSV has no header row")
        batch: list[dict[str, str]] = []
        for row in reader:
            batch.append({key: (value or "").strip() for key, value in row.items() if key is not None})
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch


def _parquet_batches(file: Path, batch_size: int) -> Iterator[list[dict[str, str]]]:
    parquet = pq.ParquetFile(file)
    for record_batch in parquet.iter_batches(batch_size=batch_size):
        yield [
            {key: "" if value is None else str(value) for key, value in row.items()}
            for row in record_batch.to_pylist()
        ]


# The platform's order/kit export always has these columns (kit_id empty for an order whose kit is not
# registered yet). A file without one of them is some other file: imported anyway, it would track orders
# without their kits (no kit_id) or quarantine every row (no purchase_date), so it is refused whole.
REQUIRED_COLUMNS = ("order_id", "kit_id", "purchase_date")


def _csv_columns(file: Path) -> list[str]:
    """The CSV's header, after reading the whole file once: a file that is not UTF-8 text (a spreadsheet or
    archive renamed .csv) is refused before anything is imported, not halfway through."""
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            columns = next(reader, [])
            for _ in reader:
                pass
    except UnicodeDecodeError as error:
        raise ExportFormatError(
            f"{file}: not a UTF-8 text CSV (byte {error.start} cannot be read as text); export the "
            "platform's orders and kits as CSV (UTF-8) or parquet"
        ) from None
    except csv.Error as error:
        raise ExportFormatError(f"{file}: not a readable CSV ({error})") from None
    return columns


def check_export(path: str | os.PathLike[str]) -> None:
    """Fail fast, before a run starts, on an export that cannot be imported (missing, wrong kind, no ids)."""
    file = Path(path)
    if not file.is_file():
        raise ExportFormatError(f"{file}: no such file")
    suffix = file.suffix.lower()
    if suffix == ".parquet":
        try:
            columns = pq.ParquetFile(file).schema_arrow.names
        except Exception as error:
            raise ExportFormatError(f"{file}: not a readable parquet file ({type(error).__name__})") from None
    elif suffix in {".csv", ".txt"}:
        columns = _csv_columns(file)
    else:
        raise ExportFormatError(f"{file}: expected a .csv or .parquet export, not {suffix or 'no extension'}")
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise ExportFormatError(
            f"{file}: the export has {' and '.join(f'no {name} column' for name in missing)} "
            f"(found: {columns[:8]}); the platform's "
            f"order/kit export has {', '.join(REQUIRED_COLUMNS)}"
        )
