"""The outputs shown in docs/inspection.md and the README are the command's own,
and the rendered graph image matches the demo's wiring."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

from _cli import REPO

DEMO = ("-A", "examples.shop.wiring")


def run_in_repo(*argv: str) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "tocsin", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_the_signals_table_in_the_docs_and_readme_is_the_demos() -> None:
    table = run_in_repo(*DEMO, "signals")
    block = f"$ tocsin -A examples.shop.wiring signals\n{table}```"
    assert block in (REPO / "docs" / "inspection.md").read_text()
    assert block in (REPO / "README.md").read_text()


def test_the_mermaid_graph_in_the_docs_is_the_demos() -> None:
    graph = run_in_repo(*DEMO, "graph")
    assert (
        f"$ tocsin -A examples.shop.wiring graph\n{graph}```"
        in (REPO / "docs" / "inspection.md").read_text()
    )
    assert f"```mermaid\n{graph}```" in (REPO / "README.md").read_text()


def test_the_rendered_image_shows_every_node_of_the_demos_graph() -> None:
    dot = run_in_repo(*DEMO, "graph", "--format", "dot")
    labels = {
        line.split('label="')[1].split('"')[0].split("\\n")[0]
        for line in dot.splitlines()
        if "shape=" in line
    }
    svg = ET.parse(REPO / "docs" / "images" / "shop-graph.svg").getroot()
    texts = {t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")}
    assert labels <= texts, "run `make docs` to render docs/images/shop-graph.svg"
