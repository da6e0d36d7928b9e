"""Bar charts, as plain SVG text, of the tables in ``docs/benchmarks.md``.

``python -m benchmarks`` calls :func:`embed` on the report it is about to write:
each table with measured figures gets a chart drawn from those very figures,
written to ``docs/benchmarks/<heading>.svg``, and a link to it below the
table. ``python -m benchmarks.charts`` redraws the charts of the report as it
stands, without measuring anything.

A chart is a stack of panels, each with its own scale, because one table's
figures span several orders of magnitude (one receiver against a hundred): in a
table of contenders (first column ``contender``) a panel is one column of the
table, a case, with a bar per contender; in any other table, a panel is one
row, with a bar per column. Bars start at zero, so their lengths compare as
the figures do. Lower is better in every table of the report.

Only the standard library: the charts are text that any browser draws.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from html import escape
from pathlib import Path

__all__ = ["Panel", "Table", "embed", "panels", "parse_tables", "quantity", "svg"]

REPORT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
CHART_DIR = "benchmarks"  # beside the report, so the page links benchmarks/x.svg

TIME = re.compile(r"(\d[\d,]*(?:\.\d+)?) ?(ns|us|µs|ms|s)\b")
PLAIN = re.compile(r"\d[\d,]*(?:\.\d+)?")
SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}
CHART_LINK = re.compile(rf"^!\[[^\]]*\]\({CHART_DIR}/[\w-]+\.svg\)$")

# Drawing, in pixels.
WIDTH = 760
BAR = 16
GAP = 5
PANEL_TITLE = 22
PANEL_GAP = 14
CHAR = 6.6  # average width of a character of the 12px sans-serif labels
VALUE_ROOM = 90  # right of the longest bar, for its label
HIGHLIGHT = "#e8590c"  # tocsin's bars
OTHER = "#868e96"


@dataclass(frozen=True)
class Table:
    """One Markdown table of the report, and the heading it sits under."""

    heading: str
    header: list[str]
    rows: list[list[str]]
    end: int  # index of the line after the table


@dataclass(frozen=True)
class Panel:
    """One group of bars on a common scale: ``(label, value, text)`` each."""

    title: str
    bars: list[tuple[str, float, str]]


def quantity(cell: str) -> tuple[float, str] | None:
    """The figure a cell holds, as ``(value, text)``, or ``None``.

    Times are converted to seconds; a bare number (bytes) is kept as is;
    ratios (``1.20x``), words and empty cells are not figures.

    >>> value, text = quantity("1.67 us (5.80x)")
    >>> f"{value:.3g}", text
    ('1.67e-06', '1.67 us')
    >>> quantity("loop over the 1: 319 ns")[1]
    '319 ns'
    >>> quantity("217"), quantity("0.91x"), quantity("n/a")
    ((217.0, '217'), None, None)
    """
    cell = cell.strip().replace("`", "")
    found = TIME.search(cell)
    if found:
        number = float(found[1].replace(",", ""))
        return number * SECONDS[found[2]], f"{found[1]} {found[2]}"
    if PLAIN.fullmatch(cell):
        return float(cell.replace(",", "")), cell
    return None


def parse_tables(report: str) -> list[Table]:
    """Every table of the report, with the heading above it."""
    lines = report.split("\n")
    tables = []
    heading = "table"
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        if line.startswith("|"):
            start = index
            while index < len(lines) and lines[index].startswith("|"):
                index += 1
            cells = [split_row(row) for row in lines[start:index]]
            # cells[1] is the |---| line under the header.
            tables.append(Table(heading, cells[0], cells[2:], index))
            continue
        index += 1
    return tables


def split_row(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def label(text: str) -> str:
    """A row or column name, short: no Markdown, no bracketed remark."""
    return re.sub(r"\s*\([^)]*\)\s*$", "", text.replace("`", "")).strip()


def panels(table: Table) -> list[Panel]:
    """The panels of one table's chart (see the module's docstring)."""
    found = []
    if table.header[0].lower() == "contender":
        for column, title in enumerate(table.header[1:], start=1):
            bars = [
                (label(row[0]), *figure)
                for row in table.rows
                if column < len(row) and (figure := quantity(row[column]))
            ]
            found.append(Panel(label(title), bars))
    else:
        for row in table.rows:
            bars = [
                (label(title), *figure)
                for title, cell in zip(table.header[1:], row[1:], strict=False)
                if (figure := quantity(cell))
            ]
            found.append(Panel(label(row[0]), bars))
    return [panel for panel in found if len(panel.bars) >= 2]


def svg(title: str, chart: list[Panel]) -> str:
    """The chart as an SVG document: one panel under the other."""
    names = [name for panel in chart for name, _, _ in panel.bars]
    left = int(max(map(len, names)) * CHAR) + 12
    room = WIDTH - left - VALUE_ROOM
    parts = []
    y = 28
    for panel in chart:
        parts.append(
            f'<text x="0" y="{y + 14}" class="panel">{escape(panel.title)}</text>'
        )
        y += PANEL_TITLE
        top = max(value for _, value, _ in panel.bars)
        for name, value, text in panel.bars:
            width = room * value / top if top > 0 else 0.0
            colour = HIGHLIGHT if name.lower().startswith("tocsin") else OTHER
            middle = y + BAR / 2 + 4
            parts.append(
                f'<text x="{left - 8}" y="{middle}" class="name">{escape(name)}</text>'
                f'<rect x="{left}" y="{y}" width="{width:.1f}" height="{BAR}"'
                f' fill="{colour}" data-value="{value!r}"><title>{escape(name)}:'
                f" {escape(text)}</title></rect>"
                f'<text x="{left + width + 6:.1f}" y="{middle}" class="value">'
                f"{escape(text)}</text>"
            )
            y += BAR + GAP
        y += PANEL_GAP
    height = y + 16
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}"'
        f' viewBox="0 0 {WIDTH} {height}" role="img"'
        f' aria-label="{escape(title)}">\n'
        "<style>text{font:12px sans-serif;fill:#333}"
        ".title{font-weight:bold;font-size:14px}.panel{font-weight:bold}"
        ".name{text-anchor:end}</style>\n"
        f'<text x="0" y="16" class="title">{escape(title)} (lower is better)</text>\n'
        + "\n".join(parts)
        + "\n</svg>\n"
    )


def slug(heading: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-") or "table"


def embed(report: str, directory: Path) -> str:
    """Draw the report's charts into ``directory``; return the report linking them.

    Charts and links from an earlier run are replaced, so running it twice
    gives the same report and the same files.
    """
    lines: list[str] = []
    for line in report.split("\n"):
        if CHART_LINK.match(line):
            if lines and not lines[-1]:
                lines.pop()  # the blank line inserted with the link
            continue
        lines.append(line)
    report = "\n".join(lines)
    directory.mkdir(parents=True, exist_ok=True)
    drawn: dict[int, str] = {}
    names: set[str] = set()
    for table in parse_tables(report):
        chart = panels(table)
        if not chart:
            continue
        name = slug(table.heading)
        while name in names:
            name += "-2"
        names.add(name)
        (directory / f"{name}.svg").write_text(svg(table.heading, chart), "utf-8")
        drawn[table.end] = f"\n![{table.heading}: chart]({CHART_DIR}/{name}.svg)"
    for stale in directory.glob("*.svg"):
        if stale.stem not in names:
            stale.unlink()
    lines = report.split("\n")
    for end in sorted(drawn, reverse=True):
        lines.insert(end, drawn[end])
    return "\n".join(lines)


def main() -> int:
    """Redraw the charts of ``docs/benchmarks.md`` from the figures it holds."""
    report = REPORT.read_text(encoding="utf-8")
    REPORT.write_text(embed(report, REPORT.parent / CHART_DIR), encoding="utf-8")
    print(f"redrew the charts of {REPORT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
