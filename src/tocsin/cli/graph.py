"""Draw who listens to what: senders -> signals -> receivers, as Mermaid or DOT.

Sender nodes come from the sender filters of the connections (a receiver
that hears every sender has none). Senders are not declared anywhere, so
``--trace FILE`` adds the edges observed in a recorded timeline (the JSON of
``/_tocsin/r/<id>.json``, or a list of them): who actually sent what, and
which receivers ran.

Node IDs are generated (``s1``, ``g1``, ``r1``), never made from names, and
every label is quoted and escaped: a name such as ``end``, ``"`` or
``<script>`` cannot break or inject into the output.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import CommandError
from ._inspect import Inspection, add_inspect_arguments, loaded

NAME = "graph"
HELP = "draw senders -> signals -> receivers as Mermaid or Graphviz DOT"


def configure(parser: argparse.ArgumentParser) -> None:
    add_inspect_arguments(parser)
    parser.add_argument(
        "--format",
        choices=["mermaid", "dot"],
        default="mermaid",
        help="default: mermaid",
    )
    parser.add_argument(
        "--trace",
        metavar="FILE",
        type=Path,
        help="add the edges observed in this timeline JSON (see docs/timeline.md)",
    )


def run(args: argparse.Namespace) -> int:
    trace = _read_trace(args.trace) if args.trace else []
    inspection = loaded(args)
    if inspection is None:
        return 1
    graph = build(inspection, trace)
    print(mermaid(graph) if args.format == "mermaid" else dot(graph))
    return 0


# -- the graph ------------------------------------------------------------------------


@dataclass
class Node:
    id: str
    kind: str  # "sender", "signal" or "receiver"
    label: str
    detail: str = ""  # the location of a receiver
    group: str = ""  # the top-level package, for DOT clusters


@dataclass
class Edge:
    source: str
    target: str
    style: str  # "sender", "sync", "on_commit", "durable" or "observed"
    label: str = ""


_PREFIX = {"sender": "s", "signal": "g", "receiver": "r"}


@dataclass
class Graph:
    nodes: dict[tuple[str, str, str], Node] = field(default_factory=dict)
    edges: dict[tuple[str, str, str], Edge] = field(default_factory=dict)

    def node(self, kind: str, label: str, detail: str = "", group: str = "") -> Node:
        key = (kind, label, detail)
        if key not in self.nodes:
            number = sum(n.kind == kind for n in self.nodes.values()) + 1
            prefix = _PREFIX[kind]
            self.nodes[key] = Node(f"{prefix}{number}", kind, label, detail, group)
        return self.nodes[key]

    def edge(self, source: Node, target: Node, style: str, label: str = "") -> None:
        self.edges.setdefault(
            (source.id, target.id, style), Edge(source.id, target.id, style, label)
        )


def build(inspection: Inspection, trace: Iterable[dict[str, Any]] = ()) -> Graph:
    graph = Graph()
    signals = {}
    for entry in inspection.signals:
        if not entry.receivers:
            continue
        signal = signals[entry.name] = graph.node("signal", entry.name)
        for row in entry.receivers:
            if row.dead:
                continue
            if row.sender is not None:
                graph.edge(graph.node("sender", row.sender), signal, "sender")
            target = graph.node(
                "receiver", row.name, row.location, row.name.partition(".")[0]
            )
            style = (
                "durable" if row.durable else "on_commit" if row.on_commit else "sync"
            )
            label = f"prio {row.priority:g}"
            if row.durable:
                label += f", durable:{row.durable}"
            elif row.on_commit:
                label += ", on_commit"
            graph.edge(signal, target, style, label)
    by_name = {e.signal.name: e.name for e in inspection.signals if e.signal.name}
    receivers = {n.label: n for n in graph.nodes.values() if n.kind == "receiver"}
    for dispatch in trace:
        name = str(dispatch.get("signal", "?"))
        name = name if name in signals else by_name.get(name, name)
        signal = signals.get(name) or graph.node("signal", name)
        sender = dispatch.get("sender")
        if sender is not None:
            graph.edge(graph.node("sender", str(sender)), signal, "observed", "sent")
        for call in dispatch.get("calls", []):
            receiver = str(call.get("receiver", "?"))
            target = receivers.get(receiver) or graph.node(
                "receiver", receiver, str(call.get("location") or "")
            )
            graph.edge(signal, target, "observed", "ran")
    return graph


def _read_trace(path: Path) -> list[dict[str, Any]]:
    """The dispatches of a timeline JSON: one request, or a list of them."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CommandError(f"--trace {path}: {error.strerror}") from None
    except ValueError as error:
        raise CommandError(f"--trace {path}: not JSON ({error})") from None
    requests = document if isinstance(document, list) else [document]
    dispatches = []
    for request in requests:
        if not isinstance(request, dict) or not isinstance(
            request.get("dispatches"), list
        ):
            raise CommandError(
                f"--trace {path}: not a tocsin timeline (a request's JSON has a "
                '"dispatches" list; save it from /_tocsin/r/<id>.json)'
            )
        dispatches += [d for d in request["dispatches"] if isinstance(d, dict)]
    return dispatches


# -- Mermaid --------------------------------------------------------------------------

_MERMAID_ARROWS = {
    "sender": "-->",
    "sync": "-->",
    "on_commit": "-.->",
    "durable": "==>",
    "observed": "-.->",
}


def mermaid_text(text: str) -> str:
    """``text`` for a quoted Mermaid label: markup characters as entity codes."""
    return "".join(
        f"#{ord(c)};" if c in '"#%&<>;`|\\' or not c.isprintable() else c for c in text
    )


def mermaid(graph: Graph) -> str:
    lines = ["flowchart LR"]
    for node in graph.nodes.values():
        label = mermaid_text(node.label)
        if node.detail:
            label += "<br/>" + mermaid_text(node.detail)
        if node.kind == "signal":
            lines.append(f'    {node.id}{{{{"{label}"}}}}')
        elif node.kind == "sender":
            lines.append(f'    {node.id}(["{label}"])')
        else:
            lines.append(f'    {node.id}["{label}"]')
    for index, edge in enumerate(graph.edges.values()):
        arrow = _MERMAID_ARROWS[edge.style]
        label = f'|"{mermaid_text(edge.label)}"|' if edge.label else ""
        lines.append(f"    {edge.source} {arrow}{label} {edge.target}")
        if edge.style == "observed":
            lines.append(f"    linkStyle {index} stroke:#2a9d8f")
    lines.append("    classDef signal fill:#eef,stroke:#447")
    signals = [n.id for n in graph.nodes.values() if n.kind == "signal"]
    if signals:
        lines.append(f"    class {','.join(signals)} signal")
    return "\n".join(lines)


# -- DOT ------------------------------------------------------------------------------

_DOT_EDGE = {
    "sender": "",
    "sync": "",
    "on_commit": ", style=dashed",
    "durable": ", style=bold, color=purple",
    "observed": ", style=dotted, color=teal",
}
_DOT_SHAPE = {"sender": "ellipse", "signal": "hexagon", "receiver": "box"}


def dot_string(text: str) -> str:
    """``text`` as a double-quoted DOT string that reads back as itself."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\r", "\\r").replace("\n", "\\n")
    return f'"{escaped}"'


def dot(graph: Graph) -> str:
    lines = [
        "digraph tocsin {",
        "    rankdir=LR;",
        '    charset="UTF-8";',
        '    node [fontname="Helvetica"];',
    ]

    def node_line(node: Node, indent: str) -> str:
        label = node.label + (f"\n{node.detail}" if node.detail else "")
        return (
            f"{indent}{dot_string(node.id)} [label={dot_string(label)}, "
            f"shape={_DOT_SHAPE[node.kind]}];"
        )

    groups: dict[str, list[Node]] = {}
    for node in graph.nodes.values():
        if node.group:
            groups.setdefault(node.group, []).append(node)
        else:
            lines.append(node_line(node, "    "))
    for group, members in groups.items():
        lines.append(f"    subgraph {dot_string('cluster_' + group)} {{")
        lines.append(f"        label={dot_string(group)};")
        lines += [node_line(node, "        ") for node in members]
        lines.append("    }")
    for edge in graph.edges.values():
        lines.append(
            f"    {dot_string(edge.source)} -> {dot_string(edge.target)} "
            f"[label={dot_string(edge.label)}{_DOT_EDGE[edge.style]}];"
        )
    lines.append("}")
    return "\n".join(lines)
