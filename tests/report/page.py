"""Read a rendered report back: its sections, figures, images and tables, with the stdlib's HTML parser."""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass, field
from html.parser import HTMLParser

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class Figure:
    chart: str
    n: int
    src: str
    alt: str
    caption: str = ""


@dataclass
class PageSection:
    key: str
    rows: int
    heading: str = ""
    text: str = ""
    figures: list[Figure] = field(default_factory=list)
    table_rows: list[list[str]] = field(default_factory=list)
    table_header: list[str] = field(default_factory=list)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: dict[str, PageSection] = {}
        self.tags: list[tuple[str, dict[str, str]]] = []
        self._section: PageSection | None = None
        self._in: list[str] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attributes))
        self._in.append(tag)
        if tag == "section":
            self._section = PageSection(attributes["id"], int(attributes["data-rows"]))
            self.sections[self._section.key] = self._section
        elif self._section is None:
            return
        elif tag == "figure":
            self._section.figures.append(Figure(attributes["data-chart"], int(attributes["data-n"]), "", ""))
        elif tag == "img" and self._section.figures:
            self._section.figures[-1].src = attributes.get("src", "")
            self._section.figures[-1].alt = attributes.get("alt", "")
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._in and self._in[-1] == tag:
            self._in.pop()
        if tag == "section":
            self._section = None
        elif tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._section is not None and self._row is not None:
            if "thead" in self._in:
                self._section.table_header = self._row
            else:
                self._section.table_rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._section is None:
            return
        self._section.text += data
        if self._cell is not None:
            self._cell.append(data)
        if "h2" in self._in:
            self._section.heading += data
        if "figcaption" in self._in and self._section.figures:
            self._section.figures[-1].caption += data


@dataclass
class Page:
    sections: dict[str, PageSection]
    tags: list[tuple[str, dict[str, str]]]


def read_page(text: str) -> Page:
    reader = _Reader()
    reader.feed(text)
    reader.close()
    return Page(reader.sections, reader.tags)


def png_size(src: str) -> tuple[int, int]:
    """Width and height of a PNG data URI (from its IHDR chunk); raises if it is not a PNG."""
    prefix = "data:image/png;base64,"
    if not src.startswith(prefix):
        raise ValueError(f"not an inline PNG: {src[:40]!r}")
    data = base64.b64decode(src[len(prefix) :], validate=True)
    if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return width, height
