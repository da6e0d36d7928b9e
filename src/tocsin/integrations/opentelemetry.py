"""OpenTelemetry spans for receivers, built on :func:`tocsin.observe`.

::

    from tocsin.integrations.opentelemetry import TocsinInstrumentor

    TocsinInstrumentor().instrument()      # once, at start-up
    TocsinInstrumentor().uninstrument()

Each receiver call becomes one INTERNAL span named by the receiver's
qualified name (``shop.receivers.send_receipt``), with the stable semantic
convention attributes ``code.function.name``, ``code.file.path`` and
``code.line.number``, and ``tocsin.signal.name``, ``tocsin.sender`` (the
sender's class, never its value), ``tocsin.dispatch.mode``,
``tocsin.receiver.priority`` and ``tocsin.receiver.dispatch_uid``. A receiver
that raises gets ``error.type``, an exception event and status ERROR (under
``send_robust``, only its own span). The span is the current one while the
receiver runs, so a database call or a send made by the receiver is its
child. An on-commit receiver's span, made when it runs, links to the span
that was current when the send scheduled it.

The defaults keep traces small and cheap, since an SDK span costs about a
hundred times a receiver call:

- spans are made only under a recording span (an HTTP request, a Celery task),
  unless ``require_parent=False``;
- signals made with ``Signal(trace=False)`` (tocsin's per-row ``pre_init`` and
  ``post_init``) are left out, unless ``all_signals=True``; others can be left
  out with ``exclude_signals``;
- no argument value is recorded, except those named in ``capture_kwargs``
  (as ``tocsin.kwargs.<name>``);
- inside ``suppress_instrumentation()`` nothing is made.

``opentelemetry-instrument`` loads this instrumentor through the
``opentelemetry_instrumentor`` entry point named ``tocsin``, so
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=tocsin`` turns it off.

Needs the ``opentelemetry`` extra (``pip install "tocsin[opentelemetry]"``):
only ``opentelemetry-api`` at run time. Where ``opentelemetry-instrumentation``
is installed too (as ``opentelemetry-instrument`` needs), the instrumentor is
one of its ``BaseInstrumentor`` classes.
"""

from __future__ import annotations

from . import require

require("opentelemetry.trace", extra="opentelemetry", package="opentelemetry-api")

import threading
import weakref
from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any

from opentelemetry import context, trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from .. import Dispatch, Observer, ReceiverCall, Signal, __version__, observe

__all__ = ["TocsinInstrumentor"]

# Stable since the semantic conventions 1.33 (the code.* attributes).
SCHEMA_URL = "https://opentelemetry.io/schemas/1.33.0"
CODE_FUNCTION_NAME = "code.function.name"
CODE_FILE_PATH = "code.file.path"
CODE_LINE_NUMBER = "code.line.number"
ERROR_TYPE = "error.type"

try:
    from opentelemetry.instrumentation.utils import is_instrumentation_enabled
except ImportError:  # the API alone: read its suppression keys directly
    from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY

    def is_instrumentation_enabled() -> bool:
        return not (
            context.get_value(_SUPPRESS_INSTRUMENTATION_KEY)
            or context.get_value("suppress_instrumentation")
        )


class _ApiOnlyInstrumentor:
    """``BaseInstrumentor``'s contract where opentelemetry-instrumentation is
    not installed: one instance, ``instrument()`` and ``uninstrument()`` that
    warn when called twice."""

    _instance: Any = None
    _is_instrumented_by_opentelemetry = False

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls._instance is None:
            cls._instance = object.__new__(cls)
        return cls._instance

    @property
    def is_instrumented_by_opentelemetry(self) -> bool:
        return self._is_instrumented_by_opentelemetry

    def instrument(self, **kwargs: Any) -> None:
        import logging

        if self._is_instrumented_by_opentelemetry:
            logging.getLogger(__name__).warning(
                "Attempting to instrument while already instrumented"
            )
            return
        kwargs.pop("skip_dep_check", None)
        kwargs.pop("raise_exception_on_conflict", None)
        self._instrument(**kwargs)
        self._is_instrumented_by_opentelemetry = True

    def uninstrument(self, **kwargs: Any) -> None:
        import logging

        if not self._is_instrumented_by_opentelemetry:
            logging.getLogger(__name__).warning(
                "Attempting to uninstrument while already uninstrumented"
            )
            return
        self._uninstrument(**kwargs)
        self._is_instrumented_by_opentelemetry = False

    def _instrument(self, **kwargs: Any) -> None:
        raise NotImplementedError

    def _uninstrument(self, **kwargs: Any) -> None:
        raise NotImplementedError


if TYPE_CHECKING:
    _Base = _ApiOnlyInstrumentor
else:
    try:
        from opentelemetry.instrumentation.instrumentor import (
            BaseInstrumentor as _Base,
        )
    except ImportError:
        _Base = _ApiOnlyInstrumentor


class TocsinInstrumentor(_Base):
    """Make OpenTelemetry spans for tocsin's receivers.

    ``instrument()`` takes these keyword arguments, all optional:

    - ``tracer_provider``: by default the global one;
    - ``require_parent`` (``True``): make spans only under a recording span;
    - ``exclude_signals``: signals (or their names) to leave out;
    - ``all_signals`` (``False``): also trace ``Signal(trace=False)`` signals;
    - ``dispatch_spans`` (``False``): also one ``send <signal>`` span per send,
      parent of its receivers' spans;
    - ``capture_kwargs``: names of send arguments whose values to record.

    Calling ``instrument()`` twice logs a warning and changes nothing.

    .. versionadded:: 0.1
    """

    _undo: Callable[[], None] | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("tocsin >= 0.1",)

    def _instrument(self, **kwargs: Any) -> None:
        provider = kwargs.get("tracer_provider")
        tracer = trace.get_tracer(
            __name__, __version__, provider, schema_url=SCHEMA_URL
        )
        observer = _Spans(
            tracer,
            require_parent=kwargs.get("require_parent", True),
            exclude_signals=kwargs.get("exclude_signals", ()),
            all_signals=kwargs.get("all_signals", False),
            dispatch_spans=kwargs.get("dispatch_spans", False),
            capture_kwargs=kwargs.get("capture_kwargs", ()),
        )
        self._undo = observe(observer)

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._undo is not None:
            self._undo()
            self._undo = None


class _Spans(Observer):
    """The observer that ``instrument()`` adds."""

    def __init__(
        self,
        tracer: trace.Tracer,
        *,
        require_parent: bool,
        exclude_signals: Iterable[Signal | str],
        all_signals: bool,
        dispatch_spans: bool,
        capture_kwargs: Iterable[str],
    ) -> None:
        self.tracer = tracer
        self.require_parent = require_parent
        excluded = list(exclude_signals)
        for item in excluded:
            if not isinstance(item, Signal | str):
                raise TypeError(
                    f"exclude_signals takes signals or signal names, not {item!r}."
                )
        self.excluded_names = {item for item in excluded if isinstance(item, str)}
        self.excluded_ids = {id(item) for item in excluded if isinstance(item, Signal)}
        self._excluded_refs = [item for item in excluded if isinstance(item, Signal)]
        self.all_signals = all_signals
        self.dispatch_spans = dispatch_spans
        self.capture_kwargs = tuple(capture_kwargs)
        # Per dispatch or call being traced: its span and context token. Keyed
        # by id(); each entry is removed when its send or call ends.
        self._traced: dict[int, tuple[trace.Span | None, object]] = {}
        self._open: dict[int, tuple[trace.Span, object]] = {}
        # Where each on-commit receiver was scheduled, for its run's span link.
        self._scheduled: weakref.WeakKeyDictionary[Dispatch, trace.SpanContext] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def _wanted(self, dispatch: Dispatch) -> bool:
        """Once per send: is this dispatch traced at all?"""
        signal = dispatch.signal
        if not (signal.trace or self.all_signals):
            return False
        if id(signal) in self.excluded_ids or signal.name in self.excluded_names:
            return False
        if not is_instrumentation_enabled():
            return False
        if dispatch.origin is not None and self._link_for(dispatch) is not None:
            return True  # an on-commit run whose scheduling was traced
        if not self.require_parent:
            return True
        # A remote parent counts: the sender's span restored by a durable
        # receiver's worker (tocsin.durable.tracing).
        parent = trace.get_current_span()
        return parent.is_recording() or parent.get_span_context().is_remote

    def _link_for(self, dispatch: Dispatch) -> trace.SpanContext | None:
        if dispatch.origin is None:
            return None
        with self._lock:
            return self._scheduled.get(dispatch.origin)

    def send_started(self, dispatch: Dispatch) -> None:
        if not self._wanted(dispatch):
            return
        span = token = None
        if self.dispatch_spans:
            name = dispatch.signal.name or "signal"
            span = self.tracer.start_span(
                f"send {name}",
                context=self._under_parent_call(dispatch),
                kind=SpanKind.INTERNAL,
                attributes=self._dispatch_attributes(dispatch),
                links=self._links(dispatch),
            )
            token = context.attach(trace.set_span_in_context(span))
        self._traced[id(dispatch)] = (span, token)

    def send_finished(self, dispatch: Dispatch) -> None:
        entry = self._traced.pop(id(dispatch), None)
        if entry is None:
            return
        span, token = entry
        if span is not None:
            if dispatch.exception is not None:
                _mark_error(span, dispatch.exception)
            span.end()
            context.detach(token)  # type: ignore[arg-type]

    def receiver_started(self, call: ReceiverCall) -> None:
        dispatch = call.dispatch
        if id(dispatch) not in self._traced:
            return
        if call.deferred is not None:
            return  # only scheduled: the span is made when it runs
        info = call.info
        attributes = self._dispatch_attributes(dispatch)
        name = call.qualname
        if info is not None:
            if info.module:
                name = f"{info.module}.{info.qualname}"
            if info.file is not None:
                attributes[CODE_FILE_PATH] = info.file
            if info.line is not None:
                attributes[CODE_LINE_NUMBER] = info.line
            attributes["tocsin.receiver.priority"] = info.priority
            if info.dispatch_uid is not None:
                attributes["tocsin.receiver.dispatch_uid"] = str(info.dispatch_uid)
        attributes[CODE_FUNCTION_NAME] = name
        send_span = self._traced[id(dispatch)][0]
        span = self.tracer.start_span(
            name,
            context=(
                trace.set_span_in_context(send_span)
                if send_span is not None
                else self._under_parent_call(dispatch)
            ),
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            links=None if self.dispatch_spans else self._links(dispatch),
        )
        # A synchronous receiver's span is the current one while it runs. Not
        # an async receiver's: the async receivers of a send share one context
        # (Django's semantics), and a span made current by one would be
        # current in the others while it waits.
        token = (
            None if call.is_async else context.attach(trace.set_span_in_context(span))
        )
        self._open[id(call)] = (span, token)

    def receiver_finished(self, call: ReceiverCall) -> None:
        if call.deferred is not None:
            if id(call.dispatch) in self._traced:
                where = trace.get_current_span().get_span_context()
                if where.is_valid:
                    with self._lock:
                        self._scheduled[call.dispatch] = where
            return
        entry = self._open.pop(id(call), None)
        if entry is None:
            return
        span, token = entry
        if call.exception is not None:
            _mark_error(span, call.exception)
        span.end()
        if token is not None:
            context.detach(token)  # type: ignore[arg-type]

    def _under_parent_call(self, dispatch: Dispatch) -> context.Context | None:
        """The span of the receiver that made this send, when it has one: an
        async receiver's span is not the current span (see receiver_started),
        so a send it makes is put under it explicitly."""
        parent = dispatch.parent
        entry = None if parent is None else self._open.get(id(parent))
        return None if entry is None else trace.set_span_in_context(entry[0])

    def _links(self, dispatch: Dispatch) -> list[Link] | None:
        where = self._link_for(dispatch)
        return None if where is None else [Link(where)]

    def _dispatch_attributes(self, dispatch: Dispatch) -> dict[str, Any]:
        signal = dispatch.signal
        sender = dispatch.sender
        cls = sender if isinstance(sender, type) else type(sender)
        attributes: dict[str, Any] = {
            "tocsin.signal.name": signal.name or repr(signal),
            "tocsin.sender": f"{cls.__module__}.{cls.__qualname__}",
            "tocsin.dispatch.mode": dispatch.mode,
        }
        kwargs = dispatch.kwargs
        for key in self.capture_kwargs:
            if key in kwargs:
                value = kwargs[key]
                if not isinstance(value, str | bool | int | float):
                    value = str(value)
                attributes[f"tocsin.kwargs.{key}"] = value
        return attributes


def _mark_error(span: trace.Span, error: BaseException) -> None:
    cls = type(error)
    span.record_exception(error)
    span.set_attribute(ERROR_TYPE, f"{cls.__module__}.{cls.__qualname__}")
    span.set_status(Status(StatusCode.ERROR, f"{cls.__name__}: {error}"))
