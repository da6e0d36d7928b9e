"""List every signal and its receivers, in the order a send calls them.

A table for people (colour on a terminal only, never with ``NO_COLOR``) or
``--format json`` for tools: ``{"version": 1, "app": ..., "signals": [...]}``,
in a deterministic order. The table leaves out the signals nobody listens to
unless ``--all`` is given; the JSON always lists them.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
from typing import Any

from ._inspect import Inspection, ReceiverRow, add_inspect_arguments, loaded

NAME = "signals"
HELP = "list every signal and its receivers, in dispatch order"

#: The version of the JSON document; a change that can break a reader bumps it.
SCHEMA_VERSION = 1
COLUMNS = ("SIGNAL", "PRIO", "RECEIVER", "LOCATION", "SENDER", "UID", "FLAGS")
_COLOURS = {"dead": "31", "durable": "35", "on_commit": "33", "async": "36"}


def configure(parser: argparse.ArgumentParser) -> None:
    add_inspect_arguments(parser)
    parser.add_argument(
        "--format", choices=["table", "json"], default="table", help="default: table"
    )
    parser.add_argument(
        "--signal",
        metavar="PATTERN",
        help="only the signals whose name matches this shell pattern ('shop.*')",
    )
    parser.add_argument(
        "--all", action="store_true", help="list the signals with no receiver too"
    )


def run(args: argparse.Namespace) -> int:
    inspection = loaded(args)
    if inspection is None:
        return 1
    if args.signal:
        inspection.signals = [
            e for e in inspection.signals if fnmatch.fnmatchcase(e.name, args.signal)
        ]
    if args.format == "json":
        print(json.dumps(as_json(inspection), indent=2, ensure_ascii=False))
    else:
        colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        print(as_table(inspection, show_all=args.all, colour=colour))
    return 0


def receiver_json(row: ReceiverRow) -> dict[str, Any]:
    return {
        "receiver": row.name,
        "file": row.file,
        "line": row.line,
        "sender": row.sender,
        "dispatch_uid": row.dispatch_uid,
        "priority": row.priority,
        "weak": row.weak,
        "async": row.is_async,
        "on_commit": row.on_commit,
        "durable": None
        if row.durable is None
        else {"name": row.durable_name, "queue": row.durable},
        "dead": row.dead,
    }


def as_json(inspection: Inspection) -> dict[str, Any]:
    return {
        "version": SCHEMA_VERSION,
        "app": inspection.spec,
        "signals": [
            {
                "signal": entry.name,
                "receivers": [receiver_json(row) for row in entry.receivers],
            }
            for entry in inspection.signals
        ],
    }


def as_table(inspection: Inspection, *, show_all: bool, colour: bool) -> str:
    rows: list[tuple[str, ...]] = []
    quiet = 0
    for entry in inspection.signals:
        if not entry.receivers:
            quiet += 1
            if show_all:
                rows.append((entry.name, "", "(no receiver)", "", "", "", ""))
            continue
        for index, row in enumerate(entry.receivers):
            rows.append(
                (
                    entry.name if index == 0 else "",
                    f"{row.priority:g}",
                    row.name,
                    row.location,
                    row.sender or "*",
                    row.dispatch_uid or "-",
                    ",".join(row.flags) or "-",
                )
            )
    rows = [tuple(_printable(cell) for cell in row) for row in rows]
    widths = [max(len(r[i]) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    lines = [_line(COLUMNS, widths, colour, header=True)]
    lines += [_line(r, widths, colour) for r in rows]
    if quiet and not show_all:
        lines.append(f"({quiet} more signals have no receiver: --all lists them)")
    return "\n".join(lines)


def _printable(cell: str) -> str:
    """A cell on one line: control characters escaped as in ``repr``."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in cell)


def _line(
    cells: tuple[str, ...], widths: list[int], colour: bool, header: bool = False
) -> str:
    out = []
    for index, (cell, width) in enumerate(zip(cells, widths, strict=True)):
        # PRIO is a number: right-aligned; the last column is not padded.
        last = index == len(cells) - 1
        padded = (
            cell.rjust(width) if index == 1 else cell if last else cell.ljust(width)
        )
        if colour and cell:
            padded = _paint(padded, index, header)
        out.append(padded)
    return "  ".join(out).rstrip()


def _paint(text: str, column: int, header: bool) -> str:
    if header:
        return f"\x1b[1m{text}\x1b[0m"
    if column == 0:
        return f"\x1b[1;34m{text}\x1b[0m"
    if column == 6:
        for flag, code in _COLOURS.items():
            if flag in text:
                return f"\x1b[{code}m{text}\x1b[0m"
    return text
