"""The README's "Tables and views" section: every table and view documented, and every example query works.

Each entry is a level-4 heading with the name in backticks, a line saying what a row is, and one ```sql block.
The examples run on the synced sandbox world's warehouse, read-only as an analyst would, and must return at
least one row (an example that returns nothing on a realistic warehouse teaches nothing; the two tables the
sandbox sync leaves empty, order_items and quarantine, have summary examples that always return one row).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.synced import SyncedWorld
from transform.schemas import TABLES
from warehouse.migrate import VIEWS_DIR

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Tables and views"
_ENTRY = re.compile(r"^#### `([a-z_]+)`\n(.*?)(?=^#{2,4} |\Z)", re.MULTILINE | re.DOTALL)
_SQL = re.compile(r"^```sql\n(.*?)^```", re.MULTILINE | re.DOTALL)


def section() -> str:
    """The section's text, up to the next second-level heading (other sections belong to others)."""
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no '{SECTION}' section"
    body = text.split(SECTION, 1)[1]
    following = re.search(r"^## ", body, re.MULTILINE)
    return body if following is None else body[: following.start()]


def entries() -> dict[str, str]:
    """Documented name -> the entry's text."""
    found: dict[str, str] = {}
    for match in _ENTRY.finditer(section()):
        assert match.group(1) not in found, f"{match.group(1)} is documented twice"
        found[match.group(1)] = match.group(2)
    return found


def examples() -> list[tuple[str, str]]:
    return [(name, sql) for name, text in entries().items() for sql in _SQL.findall(text)]


def test_every_table_and_view_is_documented_once_with_one_example() -> None:
    views = {path.stem for path in VIEWS_DIR.glob("*.sql")}
    documented = entries()
    assert set(documented) == set(TABLES) | views
    for name, text in documented.items():
        assert len(_SQL.findall(text)) == 1, f"{name} needs exactly one ```sql example"
        assert text.split("```sql", 1)[0].strip(), f"{name} needs a line saying what a row is"


def test_table_entries_reuse_the_declared_descriptions() -> None:
    """transform/schemas.py is the one place a table is described; the README repeats it word for word."""
    documented = entries()
    for name, spec in TABLES.items():
        assert spec.description in " ".join(documented[name].split()), name


@pytest.mark.parametrize(("name", "sql"), examples(), ids=[name for name, _ in examples()])
def test_example_runs_on_the_synced_warehouse(synced_world: SyncedWorld, name: str, sql: str) -> None:
    rows = synced_world.rows(sql)
    assert rows, f"the {name} example returns no rows"
    assert name in sql, f"the {name} example does not query {name}"
