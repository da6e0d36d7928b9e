"""OpenTelemetry spans for receivers, recorded by the real SDK (in-memory exporter)."""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.semconv.attributes.code_attributes import (
    CODE_FILE_PATH,
    CODE_FUNCTION_NAME,
    CODE_LINE_NUMBER,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin import Signal
from tocsin.integrations.opentelemetry import TocsinInstrumentor
from tocsin.signals import post_init
from tocsin.transaction import unit_of_work

order_paid = Signal(name="order_paid")
receipt_sent = Signal(name="receipt_sent")


class Order:
    """A sender class, recorded by its path."""


def send_receipt(sender: Any, **kwargs: Any) -> str:
    receipt_sent.send(sender, to="alice@example.com")
    return "sent"


def archive(sender: Any, **kwargs: Any) -> None:
    return None


def broken(sender: Any, **kwargs: Any) -> None:
    raise LookupError("no such order")


class Traced:
    """The SDK, an in-memory exporter, and a way to instrument tocsin with them."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("tests")

    def instrument(self, **options: Any) -> None:
        TocsinInstrumentor().instrument(tracer_provider=self.provider, **options)

    def spans(self) -> dict[str, ReadableSpan]:
        return {span.name: span for span in self.exporter.get_finished_spans()}

    def names(self) -> list[str]:
        return [span.name for span in self.exporter.get_finished_spans()]


@pytest.fixture
def traced() -> Iterator[Traced]:
    tracing = Traced()
    try:
        yield tracing
    finally:
        if TocsinInstrumentor().is_instrumented_by_opentelemetry:
            TocsinInstrumentor().uninstrument()


@pytest.fixture
def connected() -> Iterator[None]:
    order_paid.connect(send_receipt)
    receipt_sent.connect(archive)
    yield
    order_paid.disconnect(send_receipt)
    receipt_sent.disconnect(archive)


NAME = f"{__name__}.send_receipt"


def test_one_internal_span_per_receiver_with_the_code_attributes(
    traced: Traced, connected: None
) -> None:
    traced.instrument()
    with traced.tracer.start_as_current_span("request"):
        order_paid.send(Order, order_id=7)
    span = traced.spans()[NAME]
    assert span.kind is SpanKind.INTERNAL
    assert span.attributes is not None
    assert span.attributes[CODE_FUNCTION_NAME] == NAME
    assert span.attributes[CODE_FILE_PATH] == __file__
    assert span.attributes[CODE_LINE_NUMBER] == send_receipt.__code__.co_firstlineno
    assert span.attributes["tocsin.signal.name"] == "order_paid"
    assert span.attributes["tocsin.sender"] == f"{__name__}.Order"
    assert span.attributes["tocsin.dispatch.mode"] == "send"
    assert span.attributes["tocsin.receiver.priority"] == 0
    assert "tocsin.kwargs.order_id" not in span.attributes  # no values by default
    assert span.status.status_code is StatusCode.UNSET
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "tocsin.integrations.opentelemetry"


def test_a_nested_send_is_a_child_of_the_receiver_that_made_it(
    traced: Traced, connected: None
) -> None:
    traced.instrument()
    with traced.tracer.start_as_current_span("request"):
        order_paid.send(Order)
    spans = traced.spans()
    request, outer, inner = spans["request"], spans[NAME], spans[f"{__name__}.archive"]
    assert outer.parent is not None
    assert outer.parent.span_id == request.context.span_id
    assert inner.parent is not None
    assert inner.parent.span_id == outer.context.span_id
    assert inner.context.trace_id == request.context.trace_id


def test_a_query_in_a_receiver_is_a_child_of_its_span(
    traced: Traced, tmp_path: Path
) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    # Its declared range stops below SQLAlchemy 2.1, which it traces all the same.
    SQLAlchemyInstrumentor().instrument(
        engine=engine, tracer_provider=traced.provider, skip_dep_check=True
    )
    counted = Signal(name="counted")

    def count(sender: Any, **kwargs: Any) -> int:
        with Session(engine) as session:
            return int(session.scalar(text("SELECT 1 + 1")) or 0)

    counted.connect(count, weak=False)
    traced.instrument()
    try:
        with traced.tracer.start_as_current_span("request"):
            assert counted.send("shop") == [(count, 2)]
    finally:
        SQLAlchemyInstrumentor().uninstrument()
        engine.dispose()  # its SQLite connection, closed now rather than by gc
    receiver_span = next(
        s for s in traced.exporter.get_finished_spans() if s.name.endswith("count")
    )
    (query,) = [
        s for s in traced.exporter.get_finished_spans() if s.name.startswith("SELECT")
    ]
    assert query.parent is not None
    assert query.parent.span_id == receiver_span.context.span_id


def test_concurrent_asends_parent_each_span_under_its_own_receiver(
    traced: Traced,
) -> None:
    outer, inner = Signal(name="outer"), Signal(name="inner")

    async def relay(sender: Any, **kwargs: Any) -> None:
        for _ in range(2):
            await asyncio.sleep(0)  # the other send's receiver runs here
            await inner.asend(sender, who=sender)

    inner.connect(archive)
    outer.connect(relay, weak=False)
    traced.instrument(capture_kwargs=["who"])

    async def main() -> None:
        async def one(sender: str) -> None:
            with traced.tracer.start_as_current_span(f"request {sender}"):
                await outer.asend(sender)

        await asyncio.gather(one("left"), one("right"))

    asyncio.run(main())
    finished = traced.exporter.get_finished_spans()
    by_id = {span.context.span_id: span for span in finished}
    archives = [s for s in finished if s.name.endswith("archive")]
    assert len(archives) == 4
    for span in archives:
        assert span.parent is not None
        relay_span = by_id[span.parent.span_id]
        assert relay_span.name.endswith("relay")
        assert relay_span.parent is not None
        request = by_id[relay_span.parent.span_id]
        assert span.attributes is not None
        assert request.name == f"request {span.attributes['tocsin.kwargs.who']}"


def test_under_send_robust_only_the_failing_receivers_span_is_an_error(
    traced: Traced,
) -> None:
    signal = Signal(name="robust")
    signal.connect(broken)
    signal.connect(archive)
    traced.instrument(dispatch_spans=True)
    with traced.tracer.start_as_current_span("request"):
        signal.send_robust(Order)
    spans = traced.spans()
    failed = spans[f"{__name__}.broken"]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes is not None
    assert failed.attributes[ERROR_TYPE] == "builtins.LookupError"
    (event,) = failed.events
    assert event.name == "exception"
    assert event.attributes is not None
    assert event.attributes["exception.message"] == "no such order"
    assert spans[f"{__name__}.archive"].status.status_code is StatusCode.UNSET
    assert spans["send robust"].status.status_code is StatusCode.UNSET


def test_an_exception_that_ends_the_send_marks_the_dispatch_span_too(
    traced: Traced,
) -> None:
    signal = Signal(name="strict")
    signal.connect(broken)
    traced.instrument(dispatch_spans=True)
    with traced.tracer.start_as_current_span("request"), pytest.raises(LookupError):
        signal.send(Order)
    spans = traced.spans()
    dispatch, receiver = spans["send strict"], spans[f"{__name__}.broken"]
    assert receiver.parent is not None
    assert receiver.parent.span_id == dispatch.context.span_id
    assert dispatch.status.status_code is StatusCode.ERROR
    assert receiver.status.status_code is StatusCode.ERROR


def test_no_span_without_a_recording_parent_unless_asked(
    traced: Traced, connected: None
) -> None:
    traced.instrument()
    order_paid.send(Order)
    assert traced.names() == []
    TocsinInstrumentor().uninstrument()
    traced.instrument(require_parent=False)
    order_paid.send(Order)
    root = traced.spans()[NAME]
    assert root.parent is None


def test_suppressed_instrumentation_makes_no_span(
    traced: Traced, connected: None
) -> None:
    traced.instrument()
    with traced.tracer.start_as_current_span("request"), suppress_instrumentation():
        order_paid.send(Order)
    assert traced.names() == ["request"]


def test_excluded_and_per_row_signals_make_no_span_by_default(traced: Traced) -> None:
    quiet, loud = Signal(name="quiet"), Signal(name="loud")
    for signal in (quiet, loud):
        signal.connect(archive)

    def on_init(sender: Any, instance: Any, **kwargs: Any) -> None:
        return None

    post_init.connect(on_init, sender=Order, weak=False)
    try:
        traced.instrument(exclude_signals=[quiet, "loud"])
        with traced.tracer.start_as_current_span("request"):
            quiet.send(Order)
            loud.send(Order)
            post_init.send(Order, instance=Order())
        assert traced.names() == ["request"]
        TocsinInstrumentor().uninstrument()
        traced.instrument(all_signals=True)
        with traced.tracer.start_as_current_span("request"):
            post_init.send(Order, instance=Order())
        assert (
            f"{__name__}.test_excluded_and_per_row_signals_make_no_span_by_default.<locals>.on_init"
            in traced.names()
        )
    finally:
        post_init.disconnect(on_init, sender=Order)


def test_exclude_signals_rejects_what_is_not_a_signal(traced: Traced) -> None:
    with pytest.raises(
        TypeError, match="exclude_signals takes signals or signal names"
    ):
        traced.instrument(exclude_signals=[42])


def test_only_allow_listed_arguments_are_recorded(
    traced: Traced, connected: None
) -> None:
    traced.instrument(capture_kwargs=["order_id", "total"])
    with traced.tracer.start_as_current_span("request"):
        order_paid.send(Order, order_id=7, total=12.5, email="alice@example.com")
    attributes = traced.spans()[NAME].attributes
    assert attributes is not None
    assert attributes["tocsin.kwargs.order_id"] == 7
    assert attributes["tocsin.kwargs.total"] == 12.5
    assert "tocsin.kwargs.email" not in attributes


def test_uninstrument_stops_the_spans_and_instrument_twice_warns(
    traced: Traced, connected: None, caplog: pytest.LogCaptureFixture
) -> None:
    traced.instrument()
    with caplog.at_level(logging.WARNING):
        traced.instrument()
    assert "already instrumented" in caplog.text
    TocsinInstrumentor().uninstrument()
    with traced.tracer.start_as_current_span("request"):
        order_paid.send(Order)
    assert traced.names() == ["request"]
    assert not TocsinInstrumentor().is_instrumented_by_opentelemetry


def test_an_on_commit_receivers_span_links_to_where_it_was_scheduled(
    traced: Traced, engine: Engine, models: Any
) -> None:
    placed = Signal(name="placed")

    def notify(sender: Any, **kwargs: Any) -> None:
        return None

    placed.connect(notify, weak=False, on_commit=True)
    traced.instrument()
    with Session(engine) as session:
        session.add(models.User(name="a"))
        session.flush()
        with traced.tracer.start_as_current_span("request"), unit_of_work(session):
            placed.send(Order)
        assert traced.names() == ["request"]  # scheduled: no span yet
        session.commit()  # outside the request span: linked, not parented
    spans = traced.spans()
    run = spans[
        f"{__name__}.test_an_on_commit_receivers_span_links_to_where_it_was_scheduled.<locals>.notify"
    ]
    assert run.attributes is not None
    assert run.attributes["tocsin.dispatch.mode"] == "on_commit"
    (link,) = run.links
    assert link.context.span_id == spans["request"].context.span_id


def test_the_entry_point_names_the_instrumentor() -> None:
    (entry,) = [
        e
        for e in importlib.metadata.entry_points(group="opentelemetry_instrumentor")
        if e.name == "tocsin"
    ]
    assert entry.load() is TocsinInstrumentor
    assert TocsinInstrumentor().instrumentation_dependencies() == ("tocsin >= 0.1",)


AUTO = """
from tocsin.integrations.opentelemetry import TocsinInstrumentor
print(TocsinInstrumentor().is_instrumented_by_opentelemetry)
"""


@pytest.mark.parametrize(("disabled", "expected"), [("", "True"), ("tocsin", "False")])
def test_opentelemetry_instrument_loads_it_unless_disabled(
    disabled: str, expected: str
) -> None:
    command = Path(sys.executable).with_name("opentelemetry-instrument")
    env = {
        **os.environ,
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": disabled,
    }
    run = subprocess.run(
        [str(command), sys.executable, "-c", AUTO],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == expected


API_ONLY = """
import sys
sys.modules["opentelemetry.instrumentation"] = None  # as if not installed
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.context import attach, set_value
import tocsin
from tocsin.integrations.opentelemetry import TocsinInstrumentor

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
signal = tocsin.Signal(name="s")
def receiver(sender, **kwargs):
    return None
signal.connect(receiver)
TocsinInstrumentor().instrument(tracer_provider=provider, require_parent=False)
TocsinInstrumentor().instrument(tracer_provider=provider)  # warns
signal.send("shop")
attach(set_value("suppress_instrumentation", True))
signal.send("shop")
TocsinInstrumentor().uninstrument()
print(type(TocsinInstrumentor()).__mro__[1].__name__, len(exporter.get_finished_spans()))
"""


def test_with_the_api_alone_the_instrumentor_keeps_its_contract() -> None:
    run = subprocess.run(
        [sys.executable, "-c", API_ONLY], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["_ApiOnlyInstrumentor", "1"]
    assert "already instrumented" in run.stderr
