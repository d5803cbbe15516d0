"""`flows/` only orchestrates: it never reads, writes or compares a partner's field or status (DESIGN.md).

The names come from declared sources, not from a list kept here: the partner statuses are the documented ones
of `transform.status`, the partner field names are the keys the modules that read partner payloads (extract's
clients and receiver, transform's partner modules) take out of them. Every use of such a name in `flows/` as a
field (a subscript, `.get`/`.pop`/`.setdefault`, a dict key, a comparison or membership test, a module
constant) fails the test; move the knowledge to `transform/` (or `extract/` for the wire) and call it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from transform.status import DOCUMENTED

ROOT = Path(__file__).resolve().parent.parent

# The modules that read partner payloads: what their keys name is a partner's field. (transform/platform.py
# reads the platform's own export and requests, transform/runs.py kitsync's own run records.)
PARTNER_READERS = (
    "extract/biomesight.py",
    "extract/gencove.py",
    "extract/pagination.py",
    "extract/responses.py",
    "extract/webhooks.py",
    "transform/biomesight.py",
    "transform/gencove.py",
    "transform/raw.py",
    "transform/taxonomy.py",
)

# Names that are also kitsync's own vocabulary, where a file uses them as such (file -> name -> why).
OWN_VOCABULARY: dict[str, dict[str, str]] = {
    "flows/report.py": {"status": "the cohort report's own summary (written, skipped, failed)"},
    "flows/output.py": {"csv": "an output format of `kitsync query`"},
    "flows/cli.py": {"failed": "a run's own state (sync_runs.state), a word Gencove uses for a status too"},
    "flows/deployments.py": {"description": "a deployment's description in prefect.yaml"},
}

_FIELD_METHODS = frozenset({"get", "pop", "setdefault"})


def _text(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level names bound to a string (`_CSV_FIELD: Final = "csv"`)."""
    bound = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            target, value = node.target.id, node.value
        else:
            continue
        if (text := _text(value)) is not None:
            bound[target] = text
    return bound


def _read_keys(tree: ast.Module) -> Iterator[str]:
    """String keys a module reads: `x["key"]` and `x.get("key")`, spelled out or through a module constant
    (HTTP headers are the wire's, not fields)."""
    bound = _constants(tree)

    def key_text(node: ast.AST | None) -> str | None:
        if isinstance(node, ast.Name):
            return bound.get(node.id)
        return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None

    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript):
            key = key_text(node.slice)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _FIELD_METHODS
            and node.args
            and not (isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "headers")
        ):
            key = key_text(node.args[0])
        else:
            continue
        if key is not None:
            yield key


def partner_names() -> frozenset[str]:
    fields = {key for path in PARTNER_READERS for key in _read_keys(ast.parse((ROOT / path).read_text()))}
    return frozenset(fields | {mapping.partner_status for mapping in DOCUMENTED})


def _field_uses(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, name) of each string a module uses as a field or a value compared with one."""
    for node in ast.walk(tree):
        texts: list[ast.AST] = []
        if isinstance(node, ast.Subscript):
            texts.append(node.slice)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in _FIELD_METHODS and node.args:
                texts.append(node.args[0])
        elif isinstance(node, ast.Dict):
            texts.extend(key for key in node.keys if key is not None)
        elif isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                texts.extend(side.elts if isinstance(side, ast.Tuple | ast.List | ast.Set) else [side])
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            texts.append(node.value)
        for text in texts:
            if (name := _text(text)) is not None:
                yield text.lineno, name


def test_the_declared_sources_name_the_partners_fields() -> None:
    """The derivation finds what the partners' payloads are made of (a broken one would pass anything)."""
    names = partner_names()
    expected = {"kit_id", "order_id", "status", "date", "last_status", "created", "modified", "client_id"}
    expected |= {"metadata", "payload", "samples", "project", "scores", "results", "taxonomy", "id", "csv"}
    expected |= {"Results Processed", "Sample Received", "succeeded", "failed qc"}
    assert expected <= names, sorted(expected - names)


def test_flows_use_no_partner_field_or_status() -> None:
    names = partner_names()
    found = []
    for path in sorted((ROOT / "flows").glob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        allowed = OWN_VOCABULARY.get(relative, {})
        for line, name in _field_uses(ast.parse(path.read_text())):
            if name in names and name not in allowed:
                found.append(f"{relative}:{line}: {name!r}")
    assert not found, "flows/ handles partner payloads; move this to transform/ or extract/:\n" + "\n".join(
        found
    )


def test_the_scan_sees_a_partner_field_read() -> None:
    """The scan itself: each form of reading a field is caught, a plain variable is not."""
    source = (
        'status = payload["status"]\n'
        'when = payload.get("created")\n'
        'row = {"kit_id": kit}\n'
        'done = status == "succeeded"\n'
        'SHIPPED = "Shipped"\n'
        "kit_id = status\n"
    )
    uses = {name for _, name in _field_uses(ast.parse(source))}
    assert {"status", "created", "kit_id", "succeeded", "Shipped"} <= uses & partner_names()
