"""Delivering events in a worker: the receiver's arguments, retries, dead events, fencing."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import _app
import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from tocsin import durable
from tocsin.durable import Event, Policy, Settings, Worker, delivery
from tocsin.transaction import unit_of_work


def effects(engine: Engine) -> list[tuple[str, str, str]]:
    with Session(engine) as session:
        found = session.execute(
            select(
                _app.Effect.event_id, _app.Effect.receiver, _app.Effect.note
            ).order_by(_app.Effect.id)
        )
        return [tuple(row) for row in found]  # type: ignore[misc]


def outbox_rows(engine: Engine) -> list[Any]:
    table = _app.outbox.table
    with engine.connect() as connection:
        return list(connection.execute(select(table).order_by(table.c.id)))


def save_item(engine: Engine, name: str = "a") -> int:
    with Session(engine) as session:
        item = _app.Item(name=name)
        session.add(item)
        session.commit()
        return item.id


def run_worker() -> int:
    return Worker(_app.outbox).run_once()


def test_the_worker_gives_the_receiver_its_arguments_and_an_event(
    engine: Engine,
) -> None:
    seen: list[dict[str, Any]] = []
    _app.hook = lambda event, **named: seen.append(
        {
            "event": event,
            "item_id": named["instance"].id,
            "in_worker_session": named["instance"] in event.session,
            **named,
        }
    )
    item_id = save_item(engine, "first")
    assert run_worker() == 1
    (call,) = seen
    event: Event = call["event"]
    (row,) = outbox_rows(engine)
    assert (event.id, event.row, event.receiver, event.attempt) == (
        row.event_id,
        row.id,
        "_app:record_item",
        1,
    )
    assert event.queue == "default"
    assert event.created_at == pytest.approx(row.created_at)
    assert call["item_id"] == item_id  # fetched again, in the worker's session
    assert call["in_worker_session"]
    assert call["session"] is event.session
    assert call["created"] is True
    assert call["update_fields"] is None
    assert call["signal"] is not None
    assert row.state == "done"
    assert row.done_at is not None
    assert effects(engine) == [(row.event_id, "record_item", "first")]


def test_an_instance_deleted_before_delivery_arrives_as_none(engine: Engine) -> None:
    item_id = save_item(engine)
    with engine.begin() as connection:
        connection.execute(_app.Item.__table__.delete())
    run_worker()
    assert [
        note for _, receiver, note in effects(engine) if receiver == "record_item"
    ] == ["gone"]
    assert item_id == 1


def test_post_delete_carries_a_snapshot_of_the_columns(engine: Engine) -> None:
    with Session(engine) as session:
        item = _app.Item(name="doomed")
        session.add(item)
        session.commit()
        session.delete(item)
        session.commit()
    run_worker()
    assert [
        note for _, receiver, note in effects(engine) if receiver == "items.deleted"
    ] == ["1:doomed"]


def test_custom_signal_arguments_round_trip_through_json(engine: Engine) -> None:
    import datetime as dt
    import decimal
    import uuid

    seen: list[Any] = []
    _app.hook = lambda event, order_id, **named: seen.append(order_id)
    value = {
        "when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "day": dt.date(2026, 1, 2),
        "at": dt.time(3, 4),
        "price": decimal.Decimal("4.20"),
        "id": uuid.UUID(int=5),
        "pair": (1, "a"),
        "tags": {"x"},
        "$odd": {"$model": "not a model"},
        "nested": [None, True, 1.5, "s"],
    }
    with Session(engine) as session:
        with unit_of_work(session):
            _app.order_placed.send(sender="shop", order_id=value)
        session.commit()
    worker = Worker(_app.outbox, Settings(queues=("orders",)))
    assert worker.run_once() == 1
    assert seen == [{**value, "tags": frozenset({"x"})}]


def test_the_worker_serves_only_its_queues(engine: Engine) -> None:
    with Session(engine) as session:
        with unit_of_work(session):
            _app.order_placed.send(sender="shop", order_id=1)
        session.commit()
    assert Worker(_app.outbox, Settings(queues=("default",))).run_once() == 0
    assert Worker(_app.outbox, Settings(queues=("orders",))).run_once() == 1


def test_a_failing_receiver_is_retried_after_its_backoff_then_done(
    engine: Engine,
) -> None:
    attempts: list[tuple[int, str]] = []

    def flaky(event: Event, **named: Any) -> None:
        attempts.append((event.attempt, event.idempotency_key))
        if event.attempt < 3:
            raise RuntimeError(f"attempt {event.attempt} failed")

    _app.hook = flaky
    save_item(engine)
    run_worker()
    (row,) = outbox_rows(engine)
    assert (row.state, row.attempts) == ("pending", 1)
    assert "RuntimeError: attempt 1 failed" in row.last_error
    assert row.available_at > row.created_at  # the backoff
    assert durable.status(_app.outbox).retrying == 1
    time.sleep(0.06)
    run_worker()
    time.sleep(0.06)
    run_worker()
    (row,) = outbox_rows(engine)
    assert (row.state, row.attempts) == ("done", 3)
    assert [a for a, _ in attempts] == [1, 2, 3]
    assert len({key for _, key in attempts}) == 1  # the same key on every attempt
    # Only the successful attempt's writes through event.session were kept.
    assert len(effects(engine)) == 1


def test_an_event_out_of_attempts_is_dead_and_replay_brings_it_back(
    engine: Engine,
) -> None:
    def fail(event: Event, **named: Any) -> None:
        raise ValueError("the mail server said no")

    _app.hook = fail
    with Session(engine) as session:
        with unit_of_work(session):
            _app.order_placed.send(sender="shop", order_id=1)
        session.commit()
    worker = Worker(_app.outbox, Settings(queues=("orders",)))
    for _ in range(3):  # Policy(max_attempts=3); the default backoff is 1 s, 2 s
        worker.run_once()
        with engine.begin() as connection:
            connection.execute(update(_app.outbox.table).values(available_at=0))
    (dead,) = durable.dead(_app.outbox)
    assert (dead.receiver, dead.attempts) == ("orders.ship", 3)
    assert dead.last_error.endswith("ValueError: the mail server said no")
    assert durable.status(_app.outbox).dead == 1
    assert worker.run_once() == 0  # dead stays dead
    _app.hook = None
    assert durable.replay(_app.outbox, [dead.row]) == 1
    assert worker.run_once() == 1
    (row,) = outbox_rows(engine)
    assert (row.state, row.attempts) == ("done", 1)


def test_replay_of_a_row_that_is_not_dead_is_an_error(engine: Engine) -> None:
    save_item(engine)
    with pytest.raises(LookupError, match="No dead event with row id 1, 5"):
        durable.replay(_app.outbox, [1, 5])


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            {"receiver": "_app:removed_receiver"},
            "no durable receiver named '_app:removed_receiver' is connected in this "
            "worker: it was removed or renamed since the event was written. "
            "('_app' has no 'removed_receiver')",
        ),
        (
            {"receiver": "_app:make_engine_like"},
            "cannot import",
        ),
        (
            {"payload": json.dumps({"v": 2, "sender": None, "args": {}})},
            "format version 2 but this worker reads version 1",
        ),
        (
            {
                "payload": json.dumps(
                    {"v": 1, "sender": {"$class": "_app:Removed"}, "args": {}}
                )
            },
            "the class _app:Removed no longer exists",
        ),
    ],
)
def test_an_event_that_cannot_be_delivered_is_dead_at_once_with_the_reason(
    engine: Engine, change: dict[str, str], error: str
) -> None:
    save_item(engine)
    with engine.begin() as connection:
        connection.execute(update(_app.outbox.table).values(**change))
    if change.get("receiver") == "_app:make_engine_like":
        with engine.begin() as connection:
            connection.execute(
                update(_app.outbox.table).values(receiver="no_such_module:f")
            )
        error = "cannot import module 'no_such_module'"
    run_worker()
    (dead,) = durable.dead(_app.outbox)
    assert dead.attempts == 1
    assert error in dead.last_error


def test_a_connected_function_that_is_not_durable_in_the_worker_is_named(
    engine: Engine,
) -> None:
    save_item(engine)
    with engine.begin() as connection:
        connection.execute(
            update(_app.outbox.table).values(receiver="_app:make_engine")
        )
    with engine.begin() as connection:
        connection.execute(
            update(_app.outbox.table).values(receiver="_app:_kill_myself")
        )
    run_worker()
    (dead,) = durable.dead(_app.outbox)
    assert "is not connected with durable=True in this worker" in dead.last_error


def test_a_late_finisher_whose_lease_lapsed_cannot_mark_the_row(engine: Engine) -> None:
    """Fencing: the slow first worker's writes are rolled back; the event counts once."""
    release = threading.Event()
    started = threading.Event()

    def slow_on_first_attempt(event: Event, **named: Any) -> None:
        if event.attempt == 1:
            started.set()
            release.wait(10)

    _app.hook = slow_on_first_attempt
    save_item(engine)
    (first,) = delivery.claim(_app.outbox, "worker-a", lease=0.2)
    outcome: list[str] = []
    slow = threading.Thread(
        target=lambda: outcome.append(delivery.deliver(_app.outbox, first))
    )
    slow.start()
    assert started.wait(10)
    time.sleep(0.3)  # the lease lapses while the receiver still runs
    (second,) = delivery.claim(_app.outbox, "worker-b", lease=30)
    assert second.attempts == 2
    assert delivery.deliver(_app.outbox, second) == "done"
    release.set()
    slow.join(10)
    assert outcome == ["lost"]
    (row,) = outbox_rows(engine)
    assert (row.state, row.attempts) == ("done", 2)
    assert len(effects(engine)) == 1


def test_a_lease_that_lapsed_on_the_last_attempt_makes_the_event_dead(
    engine: Engine,
) -> None:
    save_item(engine)
    with engine.begin() as connection:
        connection.execute(update(_app.outbox.table).values(max_attempts=1))
    (row,) = delivery.claim(_app.outbox, "killed-worker", lease=0.01)
    time.sleep(0.02)
    assert delivery.claim(_app.outbox, "another", lease=30) == []
    assert delivery.retire_expired(_app.outbox) == 1
    (dead,) = durable.dead(_app.outbox)
    assert "stopped before it finished" in dead.last_error
    assert row.id == dead.row


def test_the_worker_threads_deliver_what_commits_while_they_run(engine: Engine) -> None:
    with Worker(_app.outbox, Settings(concurrency=2, poll_interval=0.02)) as worker:
        for n in range(10):
            save_item(engine, f"n{n}")
        deadline = time.monotonic() + 20
        while durable.status(_app.outbox).done < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert worker.stop(timeout=10)
    assert sorted(note for _, _, note in effects(engine)) == sorted(
        f"n{n}" for n in range(10)
    )
    status = durable.status(_app.outbox)
    assert (status.done, status.pending, status.running, status.dead) == (10, 0, 0, 0)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgresql_wakes_an_idle_worker_at_the_commit_not_at_the_next_poll(
    engine: Engine,
) -> None:
    with Worker(_app.outbox, Settings(poll_interval=60)) as worker:
        assert worker.listening.wait(10)
        time.sleep(0.1)  # the delivering thread has looked once, and sleeps
        save_item(engine, "woken")
        deadline = time.monotonic() + 20
        while durable.status(_app.outbox).done < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert worker.stop(timeout=10)
    assert [note for _, _, note in effects(engine)] == ["woken"]


async def greet_later(sender: Any, order_id: int, event: Event, **kwargs: Any) -> None:
    await asyncio.sleep(0)
    event.session.add(_app.Effect(event_id=event.id, receiver="async", note="awaited"))


def test_an_async_durable_receiver_is_awaited_by_the_worker(engine: Engine) -> None:
    _app.order_placed.connect(greet_later, durable=Policy(queue="async"))
    try:
        with Session(engine) as session:
            with unit_of_work(session):
                _app.order_placed.send(sender="shop", order_id=3)
            session.commit()
        assert Worker(_app.outbox, Settings(queues=("async",))).run_once() == 1
    finally:
        _app.order_placed.disconnect(greet_later)
    assert [(r, n) for _, r, n in effects(engine)] == [("async", "awaited")]


def test_claimed_rows_that_were_not_started_can_be_given_back(engine: Engine) -> None:
    for n in range(3):
        save_item(engine, f"r{n}")
    rows = delivery.claim(_app.outbox, "worker-a", lease=30, limit=3)
    assert len(rows) == 3
    assert delivery.release(_app.outbox, rows[1:]) == 2
    assert [(r.state, r.attempts) for r in outbox_rows(engine)] == [
        ("running", 1),
        ("pending", 0),
        ("pending", 0),
    ]
    assert [
        r.id for r in delivery.claim(_app.outbox, "worker-b", lease=30, limit=5)
    ] == [
        rows[1].id,
        rows[2].id,
    ]


def test_a_stopping_worker_gives_back_the_prefetched_events_it_did_not_start(
    engine: Engine,
) -> None:
    for n in range(3):
        save_item(engine, f"p{n}")
    worker = Worker(_app.outbox, Settings(prefetch=3, poll_interval=0.05))
    stopping: list[threading.Thread] = []

    def stop_during_the_first(event: Event, **named: Any) -> None:
        if not stopping:
            stopper = threading.Thread(target=worker.stop)
            stopper.start()
            stopping.append(stopper)
            time.sleep(0.1)  # stop() has set the flag

    _app.hook = stop_during_the_first
    worker.start()
    deadline = time.monotonic() + 20
    while not stopping and time.monotonic() < deadline:
        time.sleep(0.01)
    stopping[0].join(20)
    assert [(r.state, r.attempts) for r in outbox_rows(engine)] == [
        ("done", 1),
        ("pending", 0),
        ("pending", 0),
    ]


def test_a_prefetched_event_whose_lease_lapsed_in_hand_is_left_to_the_next_claim(
    engine: Engine,
) -> None:
    save_item(engine, "slow")
    save_item(engine, "waited")

    def slow_first(event: Event, instance: Any = None, **named: Any) -> None:
        if instance is not None and instance.name == "slow":
            time.sleep(0.35)

    _app.hook = slow_first
    with Worker(_app.outbox, Settings(prefetch=2, lease=0.3, poll_interval=0.05)):
        deadline = time.monotonic() + 20
        while durable.status(_app.outbox).done < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    # "waited" was not run in the hand where its lease lapsed: the next claim
    # took it, as attempt 2, and it ran once.
    assert [(r.state, r.attempts) for r in outbox_rows(engine)] == [
        ("done", 1),
        ("done", 2),
    ]
    assert sorted(note for _, _, note in effects(engine)) == ["slow", "waited"]
