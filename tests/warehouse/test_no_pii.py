"""No customer PII anywhere kitsync writes: the lake, the warehouse and all other files of its data directory.

The needles are every sandbox customer's full name, e-mail, phone and first street line (`World.customers`
holds the platform's customers of both partners). What is deliberately NOT searched for, because it would only
produce false alarms:
- a first or last name alone ("Mia", "Lee", "King", "Green"): short common words that also occur as taxa,
  recommendation items and status notes; a name is only identifying next to the other half;
- address_line2 ("Flat 3"), city, postcode and country: generic or short (a postcode such as "2000" is also a
  number in the data), and the country is a cohort kitsync keeps on purpose.

Text is compared as case-folded word sequences (`\\w+` tokens), so a needle is found whatever punctuation or
spacing separates its words ("+44 7700 900123" also as "+44-7700-900123"), but "10 Station Road" does not
match inside "110 Station Road". A phone is also searched for as one run of digits ("447700900123").
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from sandbox.export import export_csv, platform_export
from sandbox.model import Customer
from tests.synced import SyncedWorld
from warehouse.duck import quote_ident

_WORD = re.compile(r"\w+")


def _words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text.casefold()))


@dataclass
class Needles:
    """Every customer's identifying strings, indexed by their first word for one pass over a text's words."""

    by_first_word: dict[str, list[tuple[tuple[str, ...], str]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    digit_runs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, customers: Iterable[Customer]) -> Needles:
        needles = cls()
        for customer in customers:
            for kind, value in (
                ("name", f"{customer.first_name} {customer.last_name}"),
                ("email", customer.email),
                ("phone", customer.phone),
                ("street", customer.address_line1),
            ):
                words = _words(value)
                # One word is too weak a needle (a bare "Lee" is a false alarm); each field above has two.
                if len(words) >= 2:
                    needles.by_first_word[words[0]].append((words, f"{kind} {value!r}"))
            needles.digit_runs["".join(ch for ch in customer.phone if ch.isdigit())] = (
                f"phone {customer.phone!r}"
            )
        return needles

    def find(self, text: str) -> set[str]:
        """Which needles occur in the text (their kind and value)."""
        words = _words(text)
        anchors = self.by_first_word.keys() | self.digit_runs.keys()
        found = set()
        for index in [i for i, word in enumerate(words) if word in anchors]:
            word = words[index]
            for needle, label in self.by_first_word.get(word, ()):
                if words[index : index + len(needle)] == needle:
                    found.add(label)
            if word in self.digit_runs:
                found.add(self.digit_runs[word])
        return found


@pytest.fixture(scope="module")
def needles(synced_world: SyncedWorld) -> Needles:
    customers = list(synced_world.world.customers.values())
    assert len(customers) > 300
    return Needles.of(customers)


def _files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def _raw_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


def _values(value: object) -> Iterator[str]:
    """Every scalar inside a cell as text (lists and structs included: PII could hide in a nested field)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield str(key)
            yield from _values(inner)
    elif isinstance(value, list | tuple):
        for inner in value:
            yield from _values(inner)
    elif value is not None:
        yield str(value)


def test_the_scan_finds_pii_where_it_is(synced_world: SyncedWorld, needles: Needles) -> None:
    """The control: the platform's own export (what kitsync imports) is full of PII and the scan sees all four
    kinds (so the tests below cannot pass by looking badly); other spellings of a phone are caught, and a
    house number that only ends like the needle's is not a match."""
    world = synced_world.world
    found = needles.find(export_csv(platform_export(world, synced_world.server.clock.now())))
    assert {label.split()[0] for label in found} == {"name", "email", "phone", "street"}
    customer = next(c for c in world.customers.values() if c.address_line1[0].isdigit())
    phone = f"phone {customer.phone!r}"
    digits = "".join(ch for ch in customer.phone if ch.isdigit())
    assert phone in needles.find(f"tel:{digits};")
    assert phone in needles.find(customer.phone.replace(" ", "-"))
    assert f"street {customer.address_line1!r}" not in needles.find(f"1{customer.address_line1}")


def test_lake_parquet_files_hold_no_pii(synced_world: SyncedWorld, needles: Needles) -> None:
    """Every parquet file of the data directory: all its columns' values, and its raw bytes."""
    parquet = [path for path in _files(synced_world.data_dir) if path.suffix == ".parquet"]
    assert len(parquet) > 20
    leaks = {}
    for path in parquet:
        table = pq.read_table(path)
        text = "\n".join(v for column in table.columns for cell in column.to_pylist() for v in _values(cell))
        found = needles.find(text) | needles.find(_raw_text(path))
        if found:
            leaks[str(path.relative_to(synced_world.data_dir))] = sorted(found)[:5]
    assert not leaks, leaks


def test_warehouse_tables_hold_no_pii(synced_world: SyncedWorld, needles: Needles) -> None:
    """Every column of every table of each DuckDB file in the data directory (published and writer copies)."""
    databases = [path for path in _files(synced_world.data_dir) if path.suffix == ".duckdb"]
    assert synced_world.warehouse in databases
    leaks = {}
    tables_scanned = 0
    for database in databases:
        connection = duckdb.connect(str(database), read_only=True)
        try:
            columns = connection.execute(
                # Base tables only: the views are computed from them (and recomputing each is slow).
                "SELECT c.table_name, c.column_name FROM duckdb_columns() AS c "
                "JOIN duckdb_tables() AS t USING (database_name, schema_name, table_name) ORDER BY ALL"
            ).fetchall()
            tables = defaultdict(list)
            for table, column in columns:
                tables[table].append(column)
            for table, names in tables.items():
                tables_scanned += 1
                for column in names:
                    sql = (
                        f"SELECT string_agg(CAST({quote_ident(column)} AS VARCHAR), chr(10)) "  # noqa: S608
                        f"FROM {quote_ident(table)}"
                    )
                    text = connection.execute(sql).fetchall()[0][0] or ""
                    found = needles.find(text)
                    if found:
                        leaks[f"{database.name}:{table}.{column}"] = sorted(found)[:5]
        finally:
            connection.close()
    assert tables_scanned > 15
    assert not leaks, leaks


def test_other_files_hold_no_pii(synced_world: SyncedWorld, needles: Needles) -> None:
    """Everything else under the data directory (webhook landing JSON, ledgers, locks, documents), byte by
    byte; DuckDB files too, for anything a table scan would not see (e.g. a dropped table's pages)."""
    others = [path for path in _files(synced_world.data_dir) if path.suffix != ".parquet"]
    landing = [path for path in others if "landing" in path.parts]
    assert landing, "webhooks were flowing: their landing files should be here"
    leaks = {}
    for path in others:
        found = needles.find(_raw_text(path))
        if found:
            leaks[str(path.relative_to(synced_world.data_dir))] = sorted(found)[:5]
    assert not leaks, leaks
