"""The sender's trace crosses the outbox: a durable receiver's span is its child.

A send stores the W3C ``traceparent`` of the current span in the outbox row;
the delivery step restores it, so the span ``TocsinInstrumentor`` makes for
the receiver (in the embedded worker's step here, in a real Celery worker
process below) has the sender's span as its remote parent.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import _app
import _spans
import pytest
import redis
from _celery_processes import (
    bound_here,
    celery_environment,
    nothing_open,
    start_celery_worker,
    stop_gracefully,
    wait_until,
)
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tocsin.durable import delivery, tracing
from tocsin.integrations.opentelemetry import TocsinInstrumentor

RECEIVER = "_app.record_item"


@pytest.fixture
def tracer() -> trace.Tracer:
    """A tracer of the SDK (not the global provider): the sender's spans."""
    return TracerProvider().get_tracer("tests")


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """tocsin's receivers traced in this process, into memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    TocsinInstrumentor().instrument(tracer_provider=provider)
    try:
        yield exporter
    finally:
        TocsinInstrumentor().uninstrument()


def save_item(engine: Engine, name: str) -> None:
    with Session(engine) as session:
        session.add(_app.Item(name=name))
        session.commit()


def stored_traceparents(engine: Engine) -> list[str | None]:
    column = _app.outbox.table.c.traceparent
    with engine.connect() as connection:
        return list(connection.execute(select(column)).scalars())


def traceparent_of(span: trace.Span) -> str:
    context = span.get_span_context()
    flags = int(context.trace_flags)
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags:02x}"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_send_under_a_span_stores_its_traceparent_and_none_outside_spans(
    engine: Engine, tracer: trace.Tracer
) -> None:
    with tracer.start_as_current_span("request") as span:
        save_item(engine, "traced")
    save_item(engine, "untraced")
    assert stored_traceparents(engine) == [traceparent_of(span), None]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_without_opentelemetry_the_column_stays_null_and_delivery_works(
    engine: Engine, tracer: trace.Tracer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tracer.start_as_current_span("request"):
        monkeypatch.setitem(sys.modules, "opentelemetry", None)  # not installed
        save_item(engine, "plain")
    assert stored_traceparents(engine) == [None]
    [row] = delivery.claim(_app.outbox, "w", lease=30)
    assert delivery.deliver(_app.outbox, row) == "done"


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_the_delivery_step_runs_the_receiver_in_the_senders_trace(
    engine: Engine, tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    with tracer.start_as_current_span("request") as sending:
        save_item(engine, "traced")
    # What the embedded worker (and the Celery task) does with the row.
    [row] = delivery.claim(_app.outbox, "w", lease=30)
    assert row.traceparent == traceparent_of(sending)
    assert delivery.deliver(_app.outbox, row) == "done"
    [span] = [s for s in exporter.get_finished_spans() if s.name == RECEIVER]
    sender = sending.get_span_context()
    assert span.context.trace_id == sender.trace_id
    assert span.parent is not None
    assert (span.parent.span_id, span.parent.is_remote) == (sender.span_id, True)
    assert span.attributes is not None
    assert span.attributes["tocsin.dispatch.mode"] == "durable"
    # The trace context was the delivery's only: nothing is left current.
    assert not trace.get_current_span().get_span_context().is_valid


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_delivery_without_a_stored_span_makes_no_span_under_a_required_parent(
    engine: Engine, exporter: InMemorySpanExporter
) -> None:
    save_item(engine, "untraced")
    [row] = delivery.claim(_app.outbox, "w", lease=30)
    assert delivery.deliver(_app.outbox, row) == "done"
    assert exporter.get_finished_spans() == ()


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # version
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",  # zero trace
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  # zero span
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",  # upper case
    ],
)
def test_a_missing_or_malformed_traceparent_restores_nothing(value: str | None) -> None:
    with tracing.restored(value):
        assert not trace.get_current_span().get_span_context().is_valid


def test_a_wellformed_traceparent_is_restored_as_a_remote_parent() -> None:
    value = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with tracing.restored(value):
        context = trace.get_current_span().get_span_context()
        assert context.is_remote
        assert tracing.current() == value
    assert tracing.current() is None


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_celery_worker_runs_the_receiver_in_the_senders_trace(
    engine: Engine,
    database_url: str,
    redis_url: str,
    tracer: trace.Tracer,
    tmp_path: Path,
) -> None:
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    client.close()
    spans_file = tmp_path / "spans.jsonl"
    env = celery_environment(redis_url, database_url, TOCSIN_TEST_SPANS=str(spans_file))
    worker = start_celery_worker(env)
    try:
        with bound_here(engine, redis_url, lease=5) as transport:
            with tracer.start_as_current_span("request") as sending:
                save_item(engine, "traced")
            save_item(engine, "untraced")
            assert transport.relay().run_once() == 2
            wait_until(lambda: nothing_open(engine), 60, "the events to be done")
    finally:
        stop_gracefully(worker)
    sender = sending.get_span_context()
    [span] = [s for s in _spans.read(spans_file) if s["name"] == RECEIVER]
    assert span["trace_id"] == f"{sender.trace_id:032x}"
    assert span["parent_span_id"] == f"{sender.span_id:016x}"
    assert span["parent_is_remote"] is True
    assert span["attributes"]["tocsin.dispatch.mode"] == "durable"  # type: ignore[index]
