"""Trace context across the outbox: the sender's span, restored where the event runs.

A send to a durable receiver stores the W3C ``traceparent`` of the span that
is current in the sending code (:func:`current`) in the outbox row's
``traceparent`` column. Whatever delivers the event (the embedded worker, a
Celery task) runs the receiver with that span as its remote parent
(:func:`restored`), so the receiver's span, made by
:class:`tocsin.integrations.opentelemetry.TocsinInstrumentor`, belongs to the
sender's trace, minutes or machines away.

Only when ``opentelemetry-api`` is installed; without it (or outside any
span) the column stays ``NULL`` and nothing is restored. Only the
``traceparent`` travels, not baggage nor ``tracestate``.

.. versionadded:: 0.1
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

__all__ = ["current", "restored"]

# version 00: trace id, parent span id, flags; all-zero ids are invalid.
_TRACEPARENT = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")


def current() -> str | None:
    """The W3C ``traceparent`` of the current OpenTelemetry span, or ``None``
    (OpenTelemetry not installed, or no valid span current)."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    flags = int(context.trace_flags)
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags:02x}"


@contextlib.contextmanager
def restored(traceparent: str | None) -> Iterator[None]:
    """Make the span named by ``traceparent`` the current (remote) parent in
    the block; does nothing for ``None``, a malformed value, or without
    OpenTelemetry."""
    if traceparent is None or not _TRACEPARENT.fullmatch(traceparent):
        yield
        return
    try:
        from opentelemetry import context, trace
    except ImportError:
        yield
        return
    _, trace_id, span_id, flags = traceparent.split("-")
    parent = trace.SpanContext(
        trace_id=int(trace_id, 16),
        span_id=int(span_id, 16),
        is_remote=True,
        trace_flags=trace.TraceFlags(int(flags, 16)),
    )
    token = context.attach(trace.set_span_in_context(trace.NonRecordingSpan(parent)))
    try:
        yield
    finally:
        context.detach(token)
