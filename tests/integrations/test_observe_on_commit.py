"""Observing on-commit receivers with real SQLAlchemy sessions: the scheduling,
then the run after the commit, and nothing after a rollback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from support import Recorder
from tocsin import Signal, observing
from tocsin.signals import post_save
from tocsin.transaction import unit_of_work


def test_an_on_commit_receiver_is_seen_scheduled_then_run_after_the_commit(
    engine: Engine, models: Any
) -> None:
    order_placed = Signal(name="order_placed")
    ran: list[str] = []

    def notify(sender: Any, order: str, **kwargs: Any) -> str:
        ran.append(order)
        return f"notified {order}"

    order_placed.connect(notify, weak=False, on_commit=True)
    with observing(Recorder()) as recorder, Session(engine) as session:
        session.add(models.User(name="a"))
        session.flush()
        with unit_of_work(session):
            order_placed.send(sender="shop", order="#1")
        (scheduling,) = recorder.dispatches()
        assert scheduling.mode == "send"
        (scheduled,) = scheduling.calls
        assert scheduled.deferred == "on_commit"
        assert scheduled.result is None
        assert scheduled.qualname.endswith("notify")
        assert ran == []
        session.commit()
    assert ran == ["#1"]
    scheduling, run = recorder.dispatches()
    assert run.mode == "on_commit"
    assert run.origin is scheduling
    assert (run.signal, run.sender, run.kwargs) == (
        order_placed,
        "shop",
        {"order": "#1"},
    )
    (call,) = run.calls
    assert call.deferred is None
    assert call.result == "notified #1"
    assert call.duration_ns is not None
    assert recorder.trail()[-4:] == [
        "send_started order_placed",
        "receiver_started notify",
        "receiver_finished notify",
        "send_finished order_placed",
    ]


def test_a_rolled_back_on_commit_receiver_is_seen_scheduled_and_never_run(
    engine: Engine, models: Any
) -> None:
    def welcome(sender: Any, instance: Any, **kwargs: Any) -> None:
        raise AssertionError("ran after a rollback")

    post_save.connect(welcome, sender=models.User, weak=False, on_commit=True)
    try:
        with observing(Recorder()) as recorder, Session(engine) as session:
            session.add(models.User(name="rolled back"))
            session.flush()
            session.rollback()
    finally:
        post_save.disconnect(welcome, sender=models.User)
    saves = [d for d in recorder.dispatches() if d.signal is post_save]
    assert [d.mode for d in saves] == ["send"]
    assert [c.deferred for c in saves[0].calls] == ["on_commit"]
    assert not [d for d in recorder.dispatches() if d.mode == "on_commit"]


def test_a_model_signal_on_commit_receiver_reports_its_run_and_its_failure(
    engine: Engine, models: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def flaky(sender: Any, instance: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"crm down for {instance.name}")

    post_save.connect(flaky, sender=models.User, weak=False, on_commit="robust")
    try:
        with observing(Recorder()) as recorder, Session(engine) as session:
            session.add(models.User(name="a"))
            session.commit()  # robust: logged, the commit stands
    finally:
        post_save.disconnect(flaky, sender=models.User)
    (run,) = [d for d in recorder.dispatches() if d.mode == "on_commit"]
    assert run.origin is not None
    assert run.origin.signal is post_save
    assert isinstance(run.calls[0].exception, RuntimeError)
    assert run.exception is run.calls[0].exception
    assert "crm down for a" in caplog.text
    assert "flaky" in caplog.text  # the transaction's log line names the receiver


def test_an_async_on_commit_receiver_reports_from_its_run(
    engine: Engine, models: Any
) -> None:
    order_placed = Signal(name="order_placed")

    async def push(sender: Any, order: str, **kwargs: Any) -> str:
        await asyncio.sleep(0)
        return f"pushed {order}"

    order_placed.connect(push, weak=False, on_commit=True)
    with observing(Recorder()) as recorder, Session(engine) as session:
        session.add(models.User(name="a"))
        session.flush()
        with unit_of_work(session):
            order_placed.send(sender="shop", order="#2")
        session.commit()
    scheduling, run = recorder.dispatches()
    assert scheduling.calls[0].deferred == "on_commit"
    assert scheduling.calls[0].is_async
    assert run.mode == "on_commit"
    assert run.calls[0].result == "pushed #2"
    assert run.end_ns is not None
    assert run.calls[0].end_ns is not None
    assert run.calls[0].end_ns <= run.end_ns
