"""The benchmark charts are drawn from the report's figures, and kept in step with it."""

from __future__ import annotations

import doctest
import importlib.util
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SVG = "{http://www.w3.org/2000/svg}"


def load_charts() -> ModuleType:
    # benchmarks/ is not installed; charts.py imports only the standard library.
    spec = importlib.util.spec_from_file_location(
        "benchmark_charts", ROOT / "benchmarks" / "charts.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


charts = load_charts()

REPORT = """\
# Benchmarks

### Broadcast

| contender | N=1 | N=10 |
| --- | ---: | ---: |
| plain loop | 250 ns | 2.00 us (1.00x) |
| tocsin | 1.00 us (4.00x) | 4.00 us (2.00x) |
| blinker | 2.00 us (8.00x) | n/a |

## Web

| application | bare | tocsin (vs bare) | ratio |
| --- | ---: | ---: | ---: |
| raw app | 1.00 ms | 3.00 ms (0.33x) | 3.00x |

Words after the tables.
"""


def bars(path: Path) -> list[tuple[str, float, float]]:
    """(tooltip, data-value, width) of each bar of a chart."""
    root = ET.parse(path).getroot()
    found = []
    for rect in root.iter(f"{SVG}rect"):
        title = rect.find(f"{SVG}title")
        assert title is not None
        found.append(
            (
                title.text or "",
                float(rect.get("data-value", "")),
                float(rect.get("width", "")),
            )
        )
    return found


def test_each_bar_is_as_long_as_its_figure_on_its_panels_scale(tmp_path: Path) -> None:
    charts.embed(REPORT, tmp_path)
    broadcast = bars(tmp_path / "broadcast.svg")
    assert [title for title, _, _ in broadcast] == [
        "plain loop: 250 ns",
        "tocsin: 1.00 us",
        "blinker: 2.00 us",
        "plain loop: 2.00 us",
        "tocsin: 4.00 us",
    ]
    first, second = broadcast[:3], broadcast[3:]
    for panel in (first, second):
        longest = max(width for _, _, width in panel)
        top = max(value for _, value, _ in panel)
        for _, value, width in panel:
            assert width == pytest.approx(longest * value / top, abs=0.1)
    assert first[2][1] == pytest.approx(2e-6)


def test_a_table_of_cases_gets_a_panel_per_row_and_ratios_are_not_drawn(
    tmp_path: Path,
) -> None:
    charts.embed(REPORT, tmp_path)
    assert [title for title, _, _ in bars(tmp_path / "web.svg")] == [
        "bare: 1.00 ms",
        "tocsin: 3.00 ms",
    ]


def test_the_report_links_each_chart_below_its_table_and_redrawing_changes_nothing(
    tmp_path: Path,
) -> None:
    once = charts.embed(REPORT, tmp_path)
    lines = once.split("\n")
    link = lines.index("![Broadcast: chart](benchmarks/broadcast.svg)")
    assert lines[link - 2].startswith("| blinker")
    assert "![Web: chart](benchmarks/web.svg)" in lines
    (tmp_path / "stale.svg").write_text("<svg/>")
    assert charts.embed(once, tmp_path) == once
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broadcast.svg", "web.svg"]


def test_the_published_charts_are_those_of_the_published_figures(
    tmp_path: Path,
) -> None:
    page = ROOT / "docs" / "benchmarks.md"
    published = page.read_text(encoding="utf-8")
    assert charts.embed(published, tmp_path) == published, (
        "docs/benchmarks.md links other charts: run python -m benchmarks.charts"
    )
    committed = sorted((ROOT / "docs" / "benchmarks").glob("*.svg"))
    assert committed, "no chart beside docs/benchmarks.md"
    assert [p.name for p in committed] == sorted(p.name for p in tmp_path.iterdir())
    for path in committed:
        assert path.read_text(encoding="utf-8") == (tmp_path / path.name).read_text(
            encoding="utf-8"
        ), f"{path.name} was not drawn from docs/benchmarks.md's figures"


def test_the_chart_modules_examples() -> None:
    result = doctest.testmod(charts, report=True)
    assert result.failed == 0
    assert result.attempted >= 3
