"""``tocsin graph``: Mermaid and DOT that survive hostile names, DOT rendered
by a real Graphviz."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from _cli import GOLDEN, golden, stable, tocsin

from support import server_unavailable

HOSTILE_RECEIVER = 'hostile.end"]; click s1 call evil() %% <script>x</script>'
HOSTILE_SENDER = '"sender" {end} \\ <b>'
NODE = re.compile(
    r'^    ([sgr]\d+)(\["([^"]*)"\]|\{\{"([^"]*)"\}\}|\(\["([^"]*)"\]\))$'
)
EDGE = re.compile(r'^    ([sgr]\d+) (-->|-\.->|==>)(\|"([^"]*)"\|)? ([sgr]\d+)$')


def parse_mermaid(text: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Check each line against the flowchart syntax that ``graph`` writes;
    return the labels (entities decoded) by node ID, and the edges."""
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    labels: dict[str, str] = {}
    edges = []
    for line in lines[1:]:
        if node := NODE.match(line):
            raw = next(g for g in node.groups()[2:] if g is not None)
            assert "<" not in raw.replace("<br/>", ""), line  # only our <br/>
            decoded = re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), raw)
            labels[node.group(1)] = decoded.replace("<br/>", "\n")
        elif edge := EDGE.match(line):
            edges.append((edge.group(1), edge.group(2), edge.group(5)))
        else:
            assert re.match(r"^    (classDef|class|linkStyle) [\w,#:; ]+$", line), line
    for source, _, target in edges:
        assert source in labels
        assert target in labels
    return labels, edges


def render_svg(source: str) -> ET.Element:
    if shutil.which("dot") is None:
        server_unavailable("Graphviz's dot (scripts/ensure-graphviz.sh installs it)")
    run = subprocess.run(
        ["dot", "-Tsvg"], input=source, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""  # no syntax warning either
    return ET.fromstring(run.stdout)


def svg_texts(svg: ET.Element) -> list[str]:
    return [t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}text")]


def test_the_mermaid_of_the_fixture_app_is_golden_and_well_formed() -> None:
    run = tocsin("-A", "inspected", "graph")
    assert run.returncode == 0, run.stderr
    assert stable(run.stdout) == golden("inspected.mmd", run.stdout)
    labels, edges = parse_mermaid(run.stdout)
    ids = {label.split("\n")[0]: node for node, label in labels.items()}
    signal = ids["inspected.receivers.order_placed"]
    arrows = {(s, t): a for s, a, t in edges}
    assert arrows[(signal, ids["inspected.receivers.durable_mail"])] == "==>"
    post_save = ids["tocsin.signals.post_save"]
    assert arrows[(post_save, ids["inspected.receivers.after_commit"])] == "-.->"
    assert arrows[(post_save, ids["inspected.receivers.lazy_thing"])] == "-->"
    assert arrows[(ids["inspected.models.Thing"], post_save)] == "-->"
    # A dead receiver is not drawn: nothing would call it.
    assert not any("forgotten" in label for label in labels.values())


def test_the_dot_of_the_fixture_app_is_golden_and_renders() -> None:
    run = tocsin("-A", "inspected", "graph", "--format", "dot")
    assert run.returncode == 0, run.stderr
    assert stable(run.stdout) == golden("inspected.dot", run.stdout)
    assert 'label="prio -1, on_commit", style=dashed' in run.stdout
    texts = svg_texts(render_svg(run.stdout))
    assert "inspected.receivers.durable_mail" in texts
    assert "inspected/receivers.py:53" in texts


def test_hostile_names_stay_labels_in_mermaid() -> None:
    run = tocsin("-A", "hostile", "graph")
    assert run.returncode == 0, run.stderr
    labels, _edges = parse_mermaid(run.stdout)
    assert f"{HOSTILE_RECEIVER}\nhostile/__init__.py:12" in labels.values()
    assert HOSTILE_SENDER in labels.values()
    assert "hostile.début_de_commande" in labels.values()
    assert "<script>" not in run.stdout
    # end is a Mermaid keyword: no node is named by it, every ID is generated.
    assert all(re.fullmatch(r"[sgr]\d+", node) for node in labels)


def test_hostile_names_render_verbatim_with_graphviz() -> None:
    run = tocsin("-A", "hostile", "graph", "--format", "dot")
    assert run.returncode == 0, run.stderr
    texts = svg_texts(render_svg(run.stdout))
    assert HOSTILE_RECEIVER in texts
    assert HOSTILE_SENDER in texts
    assert "hostile.o_x_héros" in texts
    assert "hostile.début_de_commande" in texts


def test_trace_adds_the_observed_senders_and_receivers() -> None:
    trace = GOLDEN / "trace.json"
    run = tocsin("-A", "inspected", "graph", "--trace", str(trace))
    assert run.returncode == 0, run.stderr
    labels, edges = parse_mermaid(run.stdout)
    ids = {label.split("\n")[0]: node for node, label in labels.items()}
    signal = ids["inspected.receivers.order_placed"]  # matched by Signal.name
    assert (ids["inspected.models.Thing"], "-.->", signal) in edges
    assert (signal, "-.->", ids["billing.charge"]) in edges  # seen, not connected
    assert (signal, "-.->", ids["inspected.receivers.plain"]) in edges
    assert f"linkStyle {len(edges) - 1} stroke:#2a9d8f" in run.stdout
    both = tocsin("-A", "inspected", "graph", "--format", "dot", "--trace", str(trace))
    assert '"billing.charge\\nbilling.py:9"' in both.stdout
    render_svg(both.stdout)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not JSON"),
        (
            json.dumps({"requests": []}),
            'not a tocsin timeline (a request\'s JSON has a "dispatches" list',
        ),
    ],
)
def test_a_bad_trace_file_is_a_usage_error(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "trace.json"
    path.write_text(content)
    run = tocsin("-A", "inspected", "graph", "--trace", str(path))
    assert run.returncode == 2
    assert message in html.unescape(run.stderr)
    missing = tocsin("-A", "inspected", "graph", "--trace", str(tmp_path / "none"))
    assert missing.returncode == 2
    assert "No such file or directory" in missing.stderr
