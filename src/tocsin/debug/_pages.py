"""The timeline's pages: the recent requests, one request's waterfall, its JSON.

Server-rendered HTML with inline CSS, no script and no build step. Every name
shown (signals, receivers, senders, paths, errors) goes through
:func:`html.escape`.
"""

from __future__ import annotations

import json
import time
from html import escape
from typing import Any

from ._recorder import CallRow, DispatchRow, RequestTrace

__all__ = ["index_page", "trace_json", "waterfall_page"]

#: The version of a request's JSON (read by ``tocsin graph --trace``).
SCHEMA_VERSION = 1

_STYLE = """
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;width:100%}
td,th{padding:3px 8px;text-align:left;border-bottom:1px solid #eee;white-space:nowrap}
td.name{overflow:hidden;text-overflow:ellipsis;max-width:36em}
.lane{position:relative;width:45%;min-width:20em}
.bar{position:absolute;top:5px;height:12px;min-width:2px;border-radius:2px}
.dispatch .bar{background:#999}.sync .bar{background:#4a7bd0}
.async .bar{background:#2a9d8f}.on_commit .bar{background:#e9c46a;border:1px dashed #a07c10}
.durable .bar{background:#9b5de5}.error .bar{background:#d62828}
.error td{color:#d62828}.dispatch td{font-weight:600}
code{font-size:12px;color:#555}
"""


def _ms(ns: int) -> float:
    return round(ns / 1e6, 3)


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def index_page(traces: list[RequestTrace], mount: str) -> str:
    rows = []
    for trace in reversed(traces):
        when = time.strftime("%H:%M:%S", time.localtime(trace.started_at))
        rows.append(
            f'<tr class="request"><td><a href="{escape(mount)}/r/{trace.id}">'
            f"#{trace.id}</a></td><td>{when}</td><td>{escape(trace.method)}</td>"
            f'<td class="name">{escape(trace.path)}</td><td>{trace.status or "-"}</td>'
            f"<td>{_ms(trace.duration_ns):.1f} ms</td><td>{len(trace.dispatches)}</td>"
            f"<td>{trace.calls}</td><td>{trace.errors}</td></tr>"
        )
    table = (
        "<table><tr><th>request</th><th>at</th><th>method</th><th>path</th>"
        "<th>status</th><th>total</th><th>dispatches</th><th>receivers</th>"
        "<th>errors</th></tr>" + "".join(rows) + "</table>"
    )
    empty = "" if rows else "<p>No request recorded yet.</p>"
    return _page("tocsin timeline", f"<h1>Recent requests</h1>{table}{empty}")


def _bar(trace: RequestTrace, start_ns: int, end_ns: int | None) -> str:
    total = max(trace.duration_ns, 1)
    left = max(0.0, (start_ns - trace.start_ns) / total * 100)
    width = max(0.0, ((end_ns or start_ns) - start_ns) / total * 100)
    return (
        f'<td class="lane"><div class="bar" style="left:{min(left, 100):.2f}%;'
        f'width:{min(width, 100 - min(left, 100)):.2f}%"></div></td>'
    )


def _call_kind(call: CallRow) -> str:
    if call.error:
        return "error"
    if call.deferred is not None:
        return (
            call.deferred if call.deferred in ("on_commit", "durable") else "on_commit"
        )
    return "async" if call.is_async else "sync"


def _rows(trace: RequestTrace) -> list[tuple[int, int, str, Any]]:
    """Dispatches and calls in the order they started."""
    with trace.lock:
        dispatches = list(trace.dispatches.values())
        items: list[tuple[int, int, str, Any]] = []
        for dispatch in dispatches:
            items.append((dispatch.start_ns, 0, "dispatch", dispatch))
            items += [(c.start_ns, 1, "call", (dispatch, c)) for c in dispatch.calls]
    items.sort(key=lambda item: (item[0], item[1]))
    return items


def waterfall_page(trace: RequestTrace, mount: str) -> str:
    rows = []
    for start, _, kind, item in _rows(trace):
        if kind == "dispatch":
            dispatch: DispatchRow = item
            indent = dispatch.depth * 1.5
            note = dispatch.mode
            if dispatch.origin is not None:
                note += f" (scheduled by dispatch {dispatch.origin})"
            title = f"sender: {dispatch.sender or '-'}"
            css = "dispatch error" if dispatch.error else "dispatch"
            rows.append(
                f'<tr class="{css}" title="{escape(title)}">'
                f'<td class="name" style="padding-left:{indent + 0.5}em">'
                f"{escape(dispatch.signal)}</td><td>{escape(note)}</td>"
                f"<td>{_ms(start - trace.start_ns):.2f}</td>"
                f"<td>{_ms((dispatch.end_ns or start) - start):.2f}</td>"
                f"{_bar(trace, start, dispatch.end_ns)}</tr>"
            )
            continue
        dispatch, call = item
        kind_name = _call_kind(call)
        state = {
            "on_commit": "scheduled for the commit",
            "durable": "enqueued",
            "error": call.error or "",
            "async": "async",
            "sync": "",
        }[kind_name]
        title = (
            f"{call.location}\nsender: {dispatch.sender or '-'}\nresult: {call.result}"
        )
        rows.append(
            f'<tr class="call {kind_name}" title="{escape(title)}">'
            f'<td class="name" style="padding-left:{dispatch.depth * 1.5 + 2}em">'
            f"{escape(call.receiver)} <code>{escape(call.location)}</code></td>"
            f"<td>{escape(state)}</td><td>{_ms(start - trace.start_ns):.2f}</td>"
            f"<td>{_ms(call.end_ns - call.start_ns):.2f}</td>"
            f"{_bar(trace, call.start_ns, call.end_ns)}</tr>"
        )
    truncated = (
        "<p><strong>truncated:</strong> more receivers ran than are kept.</p>"
        if trace.truncated
        else ""
    )
    head = (
        f'<p><a href="{escape(mount)}/">all requests</a> · '
        f'<a href="{escape(mount)}/r/{trace.id}.json">JSON</a></p>'
        f"<h1>#{trace.id} {escape(trace.method)} {escape(trace.path)}</h1>"
        f"<p>status {trace.status or '-'} · {_ms(trace.duration_ns):.2f} ms · "
        f"{len(trace.dispatches)} dispatches · {trace.calls} receivers · "
        f"{trace.errors} errors</p>{truncated}"
    )
    table = (
        '<table id="waterfall"><tr><th>signal / receiver</th><th>what</th>'
        "<th>start ms</th><th>ms</th><th>timeline</th></tr>"
        + "".join(rows)
        + "</table>"
    )
    return _page(f"tocsin #{trace.id} {trace.path}", head + table)


def trace_json(trace: RequestTrace) -> str:
    def offset(ns: int | None) -> float | None:
        return None if ns is None else _ms(ns - trace.start_ns)

    with trace.lock:
        dispatches = [
            {
                "id": d.id,
                "signal": d.signal,
                "sender": d.sender,
                "mode": d.mode,
                "depth": d.depth,
                "parent": d.parent,
                "origin": d.origin,
                "start_ms": offset(d.start_ns),
                "duration_ms": None if d.end_ns is None else _ms(d.end_ns - d.start_ns),
                "error": d.error,
                "calls": [
                    {
                        "receiver": c.receiver,
                        "location": c.location,
                        "async": c.is_async,
                        "deferred": c.deferred,
                        "start_ms": offset(c.start_ns),
                        "duration_ms": _ms(c.end_ns - c.start_ns),
                        "error": c.error,
                        "result": c.result,
                    }
                    for c in d.calls
                ],
            }
            for d in sorted(trace.dispatches.values(), key=lambda d: d.start_ns)
        ]
    document = {
        "version": SCHEMA_VERSION,
        "id": trace.id,
        "method": trace.method,
        "path": trace.path,
        "status": trace.status,
        "started_at": trace.started_at,
        "duration_ms": _ms(trace.duration_ns),
        "truncated": trace.truncated,
        "dispatches": dispatches,
    }
    return json.dumps(document, indent=2, ensure_ascii=False)
