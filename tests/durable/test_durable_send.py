"""Connecting durable receivers, and the outbox rows that a send writes."""

from __future__ import annotations

import json
from typing import Any

import _app
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

import tocsin
from tocsin.durable import DurableError, PayloadError, Policy
from tocsin.transaction import unit_of_work

other_signal = tocsin.Signal(name="other")


def rows(engine: Engine) -> list[Any]:
    table = _app.outbox.table
    with engine.connect() as connection:
        return list(connection.execute(select(table).order_by(table.c.id)))


def module_level(sender: Any, **kwargs: Any) -> None:
    pass


class Mailer:
    def send(self, sender: Any, **kwargs: Any) -> None:
        pass


def test_a_lambda_is_refused_at_connect_with_the_reason() -> None:
    with pytest.raises(DurableError, match="a lambda has no name to import it by"):
        other_signal.connect(lambda sender, **kw: None, durable=True)
    assert not other_signal.has_listeners()


def test_a_local_function_is_refused_at_connect_with_the_reason() -> None:
    def local(sender: Any, **kwargs: Any) -> None:
        pass

    with pytest.raises(DurableError, match="defined inside another function"):
        other_signal.connect(local, durable=True)


def test_a_bound_method_is_refused_at_connect_with_the_reason() -> None:
    with pytest.raises(DurableError, match="a bound method needs its object"):
        other_signal.connect(Mailer().send, durable=True)


def test_a_dispatch_uid_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(DurableError, match="must be a string"):
        other_signal.connect(module_level, dispatch_uid=("a", 1), durable=True)


def test_durable_takes_true_false_or_a_policy() -> None:
    with pytest.raises(TypeError, match="durable must be True, False or a"):
        other_signal.connect(module_level, durable="yes")
    other_signal.connect(module_level, durable=False, dispatch_uid="not durable")
    try:
        (info,) = other_signal.receivers_info()
        assert info.options == {}
    finally:
        other_signal.disconnect(dispatch_uid="not durable")


def test_a_policy_checks_its_settings() -> None:
    with pytest.raises(ValueError, match="at least 1 attempt"):
        Policy(max_attempts=0)
    with pytest.raises(ValueError, match="a queue is a name"):
        Policy(queue="")
    with pytest.raises(TypeError, match="must be a Backoff or a function"):
        Policy(backoff=3)  # type: ignore[arg-type]


def test_one_name_for_receivers_of_two_signals_is_refused() -> None:
    with pytest.raises(
        DurableError, match=r"Two durable receivers are named 'orders\.ship'"
    ):
        other_signal.connect(module_level, dispatch_uid="orders.ship", durable=True)


def test_the_receivers_info_shows_the_outbox_name_and_queue() -> None:
    infos = [i for i in _app.order_placed.receivers_info() if i.dispatch_uid]
    assert [repr(i.options["durable"]) for i in infos] == [
        "durable('orders.ship', queue='orders')"
    ]


def test_a_committed_save_writes_one_pending_row_per_durable_receiver(
    engine: Engine,
) -> None:
    with Session(engine) as session:
        session.add(_app.Item(name="kept"))
        session.commit()
    (row,) = rows(engine)
    assert (row.receiver, row.queue, row.state, row.attempts) == (
        "_app:record_item",
        "default",
        "pending",
        0,
    )
    assert row.max_attempts == _app.QUICK.max_attempts
    data = json.loads(row.payload)
    assert data["sender"] == {"$class": "_app:Item"}
    assert data["args"]["instance"] == {"$model": "_app:Item", "pk": [1]}
    assert data["args"]["session"] == {"$session": None}


def test_a_rolled_back_transaction_leaves_no_event(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(_app.Item(name="dropped"))
        session.flush()
        assert len(rows_in(session)) == 1  # written, in the transaction
        session.rollback()
    assert rows(engine) == []


def rows_in(session: Session) -> list[Any]:
    return list(session.execute(select(_app.outbox.table)))


def test_a_rolled_back_savepoint_drops_its_events_only(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(_app.Item(name="outer"))
        session.flush()
        savepoint = session.begin_nested()
        session.add(_app.Item(name="inner"))
        session.flush()
        savepoint.rollback()
        session.commit()
    with engine.connect() as connection:
        names = connection.execute(select(_app.Item.name)).scalars().all()
    assert names == ["outer"]
    assert len(rows(engine)) == 1


def test_receivers_of_one_send_share_the_event_id_and_get_a_row_each(
    engine: Engine,
) -> None:
    with Session(engine) as session:
        item = _app.Item(name="x")
        session.add(item)
        session.commit()
        session.delete(item)
        session.commit()
    saved, deleted = rows(engine)
    assert saved.receiver == "_app:record_item"
    assert deleted.receiver == "items.deleted"  # dispatch_uid names it
    assert saved.event_id != deleted.event_id  # two sends


def test_a_custom_signal_writes_in_the_session_of_the_unit_of_work(
    engine: Engine,
) -> None:
    with Session(engine) as session:
        with unit_of_work(session):
            _app.order_placed.send(sender="shop", order_id=7)
        assert rows(engine) == []  # not committed yet
        session.commit()
    (row,) = rows(engine)
    assert (row.receiver, row.queue) == ("orders.ship", "orders")
    assert json.loads(row.payload)["args"] == {"order_id": 7}


def test_a_send_outside_a_transaction_is_an_error_not_a_loss(engine: Engine) -> None:
    with pytest.raises(DurableError, match=r"outside a transaction.*unit_of_work"):
        _app.order_placed.send(sender="shop", order_id=1)
    with pytest.raises(DurableError, match="outside a transaction"):
        _app.order_placed.send_robust(sender="shop", order_id=1)
    assert rows(engine) == []


def test_an_unserializable_argument_fails_the_send_and_names_it(engine: Engine) -> None:
    with Session(engine) as session, unit_of_work(session):
        with pytest.raises(
            PayloadError, match=r"Cannot send order_id=<object .*orders\.ship.*JSON"
        ):
            _app.order_placed.send(sender="shop", order_id=object())
        assert rows_in(session) == []


def test_an_unserializable_sender_is_refused(engine: Engine) -> None:
    with (
        Session(engine) as session,
        unit_of_work(session),
        pytest.raises(PayloadError, match="sender must be None, a string"),
    ):
        _app.order_placed.send(sender=object(), order_id=1)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (float("nan"), "JSON has no NaN"),
        ({1: "a"}, "keys are strings"),
        ([1, {2}, Mailer()], "a Mailer object has no JSON form"),
    ],
)
def test_values_without_a_json_form_are_refused_with_the_reason(
    engine: Engine, value: Any, reason: str
) -> None:
    with (
        Session(engine) as session,
        unit_of_work(session),
        pytest.raises(PayloadError, match=reason),
    ):
        _app.order_placed.send(sender="shop", order_id=value)


def test_an_unflushed_instance_is_refused(engine: Engine) -> None:
    with (
        Session(engine) as session,
        unit_of_work(session),
        pytest.raises(PayloadError, match="no primary key yet"),
    ):
        _app.order_placed.send(sender="shop", order_id=_app.Item(name="new"))


def audit_saves(sender: Any, **kwargs: Any) -> None:
    pass


def test_a_receiver_connected_for_two_matching_senders_gets_one_event_per_send(
    engine: Engine,
) -> None:
    from tocsin.signals import post_save

    post_save.connect(audit_saves, sender=_app.Item, durable=True)
    post_save.connect(audit_saves, durable=True)
    try:
        with Session(engine) as session:
            session.add(_app.Item(name="once"))
            session.commit()
    finally:
        post_save.disconnect(audit_saves, sender=_app.Item)
        post_save.disconnect(audit_saves)
    assert sorted(row.receiver for row in rows(engine)) == [
        "_app:record_item",
        "test_durable_send:audit_saves",
    ]


def test_an_async_session_writes_the_event_in_its_transaction(
    engine: Engine, database_url: str
) -> None:
    import asyncio

    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    async def save(name: str, commit: bool) -> None:
        url = database_url.replace("sqlite://", "sqlite+aiosqlite://")
        async_engine = create_async_engine(url)
        try:
            async with AsyncSession(async_engine) as session:
                session.add(_app.Item(name=name))
                await session.flush()
                await (session.commit() if commit else session.rollback())
        finally:
            await async_engine.dispose()

    asyncio.run(save("kept", commit=True))
    asyncio.run(save("dropped", commit=False))
    (row,) = rows(engine)
    assert row.receiver == "_app:record_item"
    assert json.loads(row.payload)["args"]["instance"] == {
        "$model": "_app:Item",
        "pk": [1],
    }
