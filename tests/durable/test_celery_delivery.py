"""Durable events delivered by real Celery workers on a real Redis.

The relay publishes committed outbox rows; ``celery -A _celery_app worker``
processes run the receivers; the database says what was handled.
"""

from __future__ import annotations

import base64
import json
import time

import _app
import pytest
import redis
from _celery_processes import (
    bound_here,
    celery_environment,
    effects_by_event,
    nothing_open,
    start_celery_worker,
    start_relay,
    stop_gracefully,
    wait_until,
)
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tocsin.durable import Event, delivery
from tocsin.transaction import unit_of_work


@pytest.fixture
def broker(redis_url: str) -> str:
    """The session's Redis, emptied."""
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    client.close()
    return redis_url


def save_items(engine: Engine, names: list[str], *, roll_back: set[str]) -> None:
    for name in names:
        with Session(engine) as session:
            session.add(_app.Item(name=name))
            session.flush()
            if name in roll_back:
                session.rollback()
            else:
                session.commit()


def event_ids(engine: Engine) -> dict[str, str]:
    """Outbox event id -> the saved item's name (post_save rows only)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(_app.outbox.table.c.event_id, _app.outbox.table.c.payload)
        ).all()
    return {row.event_id: row.payload for row in rows}


def test_celery_workers_deliver_each_committed_event_once_and_no_rolled_back_one(
    engine: Engine, database_url: str, broker: str
) -> None:
    names = [f"item{n}" for n in range(20)]
    rolled_back = {"item3", "item11"}
    worker = start_celery_worker(celery_environment(broker, database_url))
    try:
        with bound_here(engine, broker, lease=5) as transport:
            relay = transport.relay(poll_interval=0.05)
            relay.start()
            try:
                save_items(engine, names, roll_back=rolled_back)
                wait_until(lambda: nothing_open(engine), 30, "the events to be done")
            finally:
                relay.stop()
    finally:
        stop_gracefully(worker)
    with Session(engine) as session:
        handled = sorted(session.scalars(select(_app.Effect.note)))
    assert handled == sorted(set(names) - rolled_back)
    assert set(effects_by_event(engine).values()) == {1}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_message_for_a_row_under_a_live_lease_comes_back_when_the_lease_lapses(
    engine: Engine, database_url: str, broker: str
) -> None:
    """As after a pool child is killed mid-task: Celery redelivers the message
    at once, while the dead child's lease still holds the row."""
    worker = start_celery_worker(celery_environment(broker, database_url))
    try:
        with bound_here(engine, broker, republish_after=600) as transport:
            save_items(engine, ["held"], roll_back=set())
            # A worker that died holding the row for 1.5 s.
            [held] = delivery.claim(_app.outbox, "dead-child", lease=1.5)
            published = time.monotonic()
            assert transport.relay().run_once() == 0  # not open: nothing to publish
            transport.task.apply_async((held.id, held.event_id))
            wait_until(lambda: nothing_open(engine), 30, "the event to be done")
            took = time.monotonic() - published
    finally:
        stop_gracefully(worker)
    assert took >= 1.4  # not before the lease lapsed
    assert took < 30  # and not waiting for the relay's 600 s
    assert effects_by_event(engine) == {held.event_id: 1}
    with engine.connect() as connection:
        attempts = connection.execute(select(_app.outbox.table.c.attempts)).scalar()
    assert attempts == 2


def test_the_message_carries_the_row_and_event_ids_to_the_queue_of_its_policy(
    engine: Engine, broker: str
) -> None:
    with bound_here(engine, broker) as transport:
        with Session(engine) as session:
            with unit_of_work(session):
                _app.order_placed.send(sender="shop", order_id=4242424242)
            session.commit()
        assert transport.relay().run_once() == 1
    table = _app.outbox.table
    with engine.connect() as connection:
        [row] = connection.execute(
            select(table.c.id, table.c.event_id, table.c.payload)
        )
    assert "4242424242" in row.payload
    client = redis.Redis.from_url(broker)
    # Policy(queue="orders") goes to the Celery queue of the same name.
    assert client.llen("celery") == 0
    [raw] = client.lrange("orders", 0, -1)
    client.close()
    message = json.loads(raw)
    assert message["headers"]["task"] == "tocsin.deliver"
    assert message["content-type"] == "application/json"
    assert b"4242424242" not in raw
    assert b"4242424242" not in base64.b64decode(message["body"])
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert (args, kwargs) == ([row.id, row.event_id], {})


def test_a_message_delivered_twice_applies_the_receiver_once(
    engine: Engine, broker: str
) -> None:
    ran: list[Event] = []
    _app.hook = lambda event, **kwargs: ran.append(event)
    with bound_here(engine, broker) as transport:
        save_items(engine, ["twice"], roll_back=set())
        [(event_id, _)] = event_ids(engine).items()
        row = _app.outbox.table.c.id
        with engine.connect() as connection:
            [row_id] = connection.execute(select(row)).scalars().all()
        # What the task does with each copy of the message.
        assert transport.run(row_id, event_id) == "done"
        assert transport.run(row_id, event_id) == "skipped"
    assert len(ran) == 1
    assert effects_by_event(engine) == {event_id: 1}


def test_a_message_naming_another_event_leaves_the_row_untouched(
    engine: Engine, broker: str
) -> None:
    with bound_here(engine, broker) as transport:
        save_items(engine, ["mismatch"], roll_back=set())
        row = _app.outbox.table.c.id
        with engine.connect() as connection:
            [row_id] = connection.execute(select(row)).scalars().all()
        assert (
            transport.run(row_id, "00000000-0000-0000-0000-000000000000") == "skipped"
        )
        assert not nothing_open(engine)
        assert effects_by_event(engine) == {}


def test_a_lost_message_is_published_again_after_the_bound_and_not_before(
    engine: Engine, broker: str
) -> None:
    client = redis.Redis.from_url(broker)
    with bound_here(engine, broker, lease=0.4, republish_after=0.5) as transport:
        relay = transport.relay()
        save_items(engine, ["lost"], roll_back=set())
        assert relay.run_once() == 1
        client.flushall()  # the broker loses the message
        assert relay.run_once() == 0  # published recently: not yet
        time.sleep(0.6)
        assert relay.run_once() == 1
        assert client.llen("celery") == 1
    client.close()


def test_a_failed_attempt_is_published_again_when_its_backoff_ends(
    engine: Engine, broker: str
) -> None:
    attempts: list[int] = []

    def fail_first(event: Event, **kwargs: object) -> None:
        attempts.append(event.attempt)
        if event.attempt == 1:
            raise ConnectionError("the mail server is down")

    _app.hook = fail_first
    with bound_here(engine, broker, republish_after=60) as transport:
        relay = transport.relay()
        save_items(engine, ["retried"], roll_back=set())
        [(event_id, _)] = event_ids(engine).items()
        row = _app.outbox.table.c.id
        with engine.connect() as connection:
            [row_id] = connection.execute(select(row)).scalars().all()
        assert relay.run_once() == 1
        assert transport.run(row_id, event_id) == "retry"
        wait_until(lambda: relay.run_once() == 1, 5, "the retry to be published")
        assert transport.run(row_id, event_id) == "done"
    assert attempts == [1, 2]
    assert nothing_open(engine)


def send_order(engine: Engine, order_id: int) -> None:
    with Session(engine) as session:
        with unit_of_work(session):
            _app.order_placed.send(sender="shop", order_id=order_id)
        session.commit()


def test_a_relay_given_queues_publishes_the_rows_of_those_queues_only(
    engine: Engine, broker: str
) -> None:
    client = redis.Redis.from_url(broker)
    with bound_here(engine, broker) as transport:
        save_items(engine, ["in default"], roll_back=set())
        send_order(engine, 7)
        assert transport.relay(queues=["orders"]).run_once() == 1
        assert (client.llen("orders"), client.llen("celery")) == (1, 0)
        assert transport.relay(queues=["default"]).run_once() == 1
        assert (client.llen("orders"), client.llen("celery")) == (1, 1)
        assert transport.relay().run_once() == 0
        with pytest.raises(ValueError, match="a list of outbox queue names"):
            transport.relay(queues="orders")
    client.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_tocsin_relay_dash_q_publishes_the_named_queues_only(
    engine: Engine, database_url: str, broker: str
) -> None:
    client = redis.Redis.from_url(broker)
    save_items(engine, ["in default"], roll_back=set())
    send_order(engine, 8)
    relay = start_relay(celery_environment(broker, database_url), "-Q", "orders")
    try:
        wait_until(lambda: client.llen("orders") == 1, 30, "the order's message")
        time.sleep(0.3)  # six more passes of the relay
        assert client.llen("celery") == 0
    finally:
        stop_gracefully(relay)
        client.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_worker_quicker_than_the_relay_finds_the_row_committed_and_unlocked(
    engine: Engine, broker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message may be handled before the relay's next statement: the row
    must not still be locked by the relay's transaction, which the worker's
    claim (SKIP LOCKED) would skip, leaving the event to the reconciler."""
    outcomes: list[str] = []
    with bound_here(engine, broker, republish_after=600) as transport:
        publish = transport.task.apply_async

        def publish_and_deliver_at_once(
            args: tuple[int, str], **options: object
        ) -> object:
            sent = publish(args, **options)
            outcomes.append(transport.run(*args))  # the quickest worker
            return sent

        monkeypatch.setattr(transport.task, "apply_async", publish_and_deliver_at_once)
        save_items(engine, ["quick"], roll_back=set())
        assert transport.relay().run_once() == 1
    assert outcomes == ["done"]
    assert nothing_open(engine)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_rows_the_broker_did_not_take_are_published_again_by_the_next_pass(
    engine: Engine,
) -> None:
    down = "redis://127.0.0.1:1/0"  # nothing listens there
    with bound_here(engine, down, republish_after=600) as transport:
        transport.app.conf.update(task_publish_retry=False)
        save_items(engine, ["unsent"], roll_back=set())
        with pytest.raises(Exception, match=r"(?i)connect"):
            transport.relay().run_once()
        with engine.connect() as connection:
            published = connection.execute(
                select(_app.outbox.table.c.published_at)
            ).scalar()
    assert published is None  # not left for the reconciler's 600 s
