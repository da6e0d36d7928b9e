"""The demo's output: a readable timeline of the signals sent and what the
receivers did. Only the demo needs this; an application would log instead."""

from __future__ import annotations

import threading
from typing import Any

import tocsin
from tocsin import Observer, ReceiverCall, Signal

entries: list[str] = []
timings: list[str] = []
request_done = threading.Event()
#: The worker's delivery transactions committed so far (one per event done).
worker_commits = 0


def did(text: str) -> None:
    """Called by a receiver to say what it did."""
    entries.append(f"        {text}")


def _label(value: Any) -> str:
    return value.__name__ if isinstance(value, type) else repr(value)


def _summary(named: dict[str, Any]) -> str:
    parts = []
    for key, value in named.items():
        if key in {"signal", "session", "request", "environ", "raw", "using"}:
            continue
        if key == "scope":
            parts.append(f"path={value['path']}")
        elif key == "update_fields" and value is None:
            continue
        elif key == "changes":  # {column: (old, new)}, empty for an INSERT
            if value:
                parts.append(f"changes={dict(value)!r}")
        else:
            parts.append(f"{key}={_label(value)}")
    return " ".join(parts)


def _tracer(signal: Signal, sender: Any, **named: Any) -> None:
    entries.append(f"  -> {signal.name:<18} sender={_label(sender)} {_summary(named)}")
    if signal.name == "request_finished":
        request_done.set()


def mark_commits() -> None:
    """Show each COMMIT in the timeline, so on-commit receivers stand out."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from tocsin.durable.delivery import EVENT_KEY

    @event.listens_for(Session, "after_commit")
    def _committed(session: Session) -> None:
        global worker_commits
        if EVENT_KEY in session.info:
            entries.append("  == COMMIT (the worker's transaction)")
            worker_commits += 1
        else:
            entries.append("  == COMMIT")


def trace(*signals: Signal) -> None:
    """Record every send of ``signals`` in the timeline, before any receiver."""
    for signal in signals:
        signal.connect(_tracer, weak=False, priority=float("inf"))


class _Timings(Observer):
    """Keeps how long each of the shop's receivers took (the observation hook)."""

    def receiver_finished(self, call: ReceiverCall) -> None:
        module = getattr(call.receiver, "__module__", "")
        if call.deferred is not None or not module.startswith("examples.shop."):
            return
        if call.dispatch.mode == "durable":
            return  # the worker thread's, whenever it runs: not the request's
        if module == __name__:
            return  # the timeline's own tracer
        after = " after commit" if call.dispatch.mode == "on_commit" else ""
        duration = (call.duration_ns or 0) / 1e6
        timings.append(f"{call.qualname} {duration:.2f} ms{after}")


def time_receivers() -> None:
    """Record every receiver call's duration; :func:`timing_line` shows them."""
    tocsin.observe(_Timings())


def timing_line() -> str:
    """The receivers' timings since the last call, on one line; then forget them."""
    line = "  receivers' timings: " + (", ".join(timings) or "none")
    timings.clear()
    return line
