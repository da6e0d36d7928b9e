"""The recorder of the timeline: an observer that files each dispatch under
the request that made it.

The request being served lives in a context variable, set by the middleware
for the duration of the request (and of its post-response work: request_finished,
on-commit receivers). The observer writes only when it is set, so that two
concurrent requests never mix, and a send made outside any request is not
recorded. Records are copied into plain rows when they finish: a row never
holds a receiver, a sender or the arguments of a send.
"""

from __future__ import annotations

import collections
import contextvars
import itertools
import reprlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .. import Dispatch, Observer, ReceiverCall, observe
from .._names import qualified_name, sender_label, source_of

__all__ = ["CallRow", "DispatchRow", "Recorder", "RequestTrace", "current_trace"]

#: The calls kept per request; later ones only set ``truncated``.
MAX_CALLS = 10_000
_short = reprlib.Repr()
_short.maxstring = _short.maxother = 80
_current: contextvars.ContextVar[RequestTrace | None] = contextvars.ContextVar(
    "tocsin_timeline_request", default=None
)


def current_trace() -> RequestTrace | None:
    """The request whose dispatches are being recorded here, if any."""
    return _current.get()


def _error(exception: BaseException | None) -> str | None:
    if exception is None:
        return None
    return f"{type(exception).__name__}: {_short.repr(str(exception))[1:-1]}"


@dataclass
class CallRow:
    receiver: str
    location: str
    is_async: bool
    deferred: str | None
    start_ns: int
    end_ns: int
    error: str | None
    result: str


@dataclass
class DispatchRow:
    id: int
    signal: str
    sender: str | None
    mode: str
    depth: int
    parent: int | None  # the dispatch of the receiver that sent it
    origin: int | None  # for a deferred run: the dispatch that scheduled it
    start_ns: int
    end_ns: int | None = None
    error: str | None = None
    calls: list[CallRow] = field(default_factory=list)


@dataclass
class RequestTrace:
    """What one request sent, and what ran."""

    id: int
    method: str
    path: str
    client: str | None
    started_at: float  # time.time()
    start_ns: int
    end_ns: int | None = None
    status: int | None = None
    truncated: bool = False
    call_count: int = 0
    dispatches: dict[int, DispatchRow] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def calls(self) -> int:
        return sum(len(d.calls) for d in self.dispatches.values())

    @property
    def errors(self) -> int:
        rows = self.dispatches.values()
        return sum(c.error is not None for d in rows for c in d.calls)

    @property
    def duration_ns(self) -> int:
        return (self.end_ns or time.perf_counter_ns()) - self.start_ns

    def receivers_ns(self) -> int:
        """The time spent in receivers, nested ones counted once."""
        with self.lock:
            return sum(
                c.end_ns - c.start_ns
                for d in self.dispatches.values()
                if d.depth == 0
                for c in d.calls
                if c.deferred is None
            )


class Recorder(Observer):
    """Files every observed dispatch under the current request; keeps the last
    ``max_requests`` requests."""

    def __init__(self, max_requests: int = 50) -> None:
        if not isinstance(max_requests, int) or max_requests < 1:
            raise ValueError(
                f"max_requests={max_requests!r}: keep at least 1 request "
                "(an int, 50 by default)."
            )
        self.requests: collections.deque[RequestTrace] = collections.deque(
            maxlen=max_requests
        )
        self._ids = itertools.count(1).__next__
        self._undo: Any = None

    def start(self) -> None:
        if self._undo is None:
            self._undo = observe(self)

    def stop(self) -> None:
        if self._undo is not None:
            self._undo()
            self._undo = None

    def begin(
        self, method: str, path: str, client: str | None
    ) -> contextvars.Token[Any]:
        trace = RequestTrace(
            self._ids(), method, path, client, time.time(), time.perf_counter_ns()
        )
        self.requests.append(trace)
        return _current.set(trace)

    def find(self, trace_id: int) -> RequestTrace | None:
        for trace in list(self.requests):
            if trace.id == trace_id:
                return trace
        return None

    # -- the observer's callbacks ---------------------------------------------------

    def send_started(self, dispatch: Dispatch) -> None:
        trace = _current.get()
        if trace is None:
            return
        parent = dispatch.parent
        origin = dispatch.origin
        row = DispatchRow(
            id=dispatch.id,
            signal=dispatch.signal.name or repr(dispatch.signal),
            sender=sender_label(dispatch.sender),
            mode=dispatch.mode,
            depth=dispatch.depth,
            parent=None if parent is None else parent.dispatch.id,
            origin=None if origin is None else origin.id,
            start_ns=dispatch.start_ns,
        )
        with trace.lock:
            trace.dispatches[dispatch.id] = row

    def receiver_finished(self, call: ReceiverCall) -> None:
        trace = _current.get()
        if trace is None:
            return
        receiver = call.receiver
        if receiver is None:
            name, location = call.qualname, "?"
        else:
            file, line = source_of(receiver)
            name, location = qualified_name(receiver), f"{file}:{line}"
        row = CallRow(
            receiver=name,
            location=location,
            is_async=call.is_async,
            deferred=call.deferred,
            start_ns=call.start_ns,
            end_ns=call.end_ns or call.start_ns,
            error=_error(call.exception),
            result=_short.repr(call.result),
        )
        with trace.lock:
            dispatch = trace.dispatches.get(call.dispatch.id)
            if dispatch is None:
                return
            if trace.call_count >= MAX_CALLS:
                trace.truncated = True
                return
            trace.call_count += 1
            dispatch.calls.append(row)

    def send_finished(self, dispatch: Dispatch) -> None:
        trace = _current.get()
        if trace is None:
            return
        with trace.lock:
            row = trace.dispatches.get(dispatch.id)
            if row is not None:
                row.end_ns = dispatch.end_ns
                row.error = _error(dispatch.exception)
