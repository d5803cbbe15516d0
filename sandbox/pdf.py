"""A kit's one-page PDF report, hand-written as PDF 1.4 objects with a correct cross-reference table."""

from __future__ import annotations

from sandbox.model import Kit

_PAGE_WIDTH, _PAGE_HEIGHT = 595, 842  # A4 in points
_TOP_GENERA = 10


def _escape(text: str) -> str:
    """A PDF literal string body: Latin-1 only (the standard fonts' encoding), with \\ ( ) escaped."""
    latin = text.encode("latin-1", "replace").decode("latin-1")
    return latin.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def report_lines(kit: Kit) -> list[tuple[int, str]]:
    """(font size, text) lines of the report: header, scores, top genera."""
    result = kit.result
    if result is None:
        raise ValueError(f"kit {kit.kit_id} has no result")
    lines = [
        (18, "Gut Microbiome Report"),
        (10, "Powered by Biomesight"),
        (12, f"Kit: {kit.kit_id}    Sample: {result.sample_id}    Pipeline: {result.pipeline_id}"),
        (12, f"Report date: {result.export_date:%Y-%m-%d %H:%M:%S}"),
        (14, "Scores"),
    ]
    lines += [(12, f"{name}: {value:.2f}") for name, value in result.scores.items()]
    lines.append((14, f"Top {_TOP_GENERA} genera"))
    genera = sorted((row for row in result.taxonomy if row.rank == "genus"), key=lambda row: -row.abundance)
    lines += [(11, f"{row.taxon}: {row.abundance * 100:.2f}%") for row in genera[:_TOP_GENERA]]
    return lines


def render_pdf(kit: Kit) -> bytes:
    """A real, minimal, valid PDF: catalog, pages, one page, Helvetica, and its text content stream."""
    commands = ["BT", "/F1 12 Tf", f"50 {_PAGE_HEIGHT - 60} Td"]
    for index, (size, text) in enumerate(report_lines(kit)):
        if index:
            commands.append(f"0 -{size + 8} Td")
        commands.append(f"/F1 {size} Tf ({_escape(text)}) Tj")
    commands.append("ET")
    stream = "\n".join(commands).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {_PAGE_WIDTH} {_PAGE_HEIGHT}] "
            "/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"
        ).encode("ascii"),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length " + str(len(stream)).encode("ascii") + b" >>\nstream\n" + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode("ascii") + body + b"\nendobj\n"
    xref_at = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode("ascii")
    out += b"0000000000 65535 f \n"
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode("ascii")
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n".encode(
        "ascii"
    )
    return bytes(out)
