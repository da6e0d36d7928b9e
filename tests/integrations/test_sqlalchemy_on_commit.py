"""on_commit with SQLAlchemy sessions: commits, savepoints, rollbacks."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from tocsin import Signal
from tocsin.signals import post_save
from tocsin.testing import connected_to
from tocsin.transaction import captured_on_commit, on_commit, unit_of_work


def test_runs_after_the_commit_in_registration_order(
    engine: Engine, models: Any
) -> None:
    calls: list[str] = []
    with Session(engine) as session:
        session.add(models.User(name="a"))
        session.flush()
        on_commit(lambda: calls.append("first"), using=session)
        on_commit(lambda: calls.append("second"), using=session)
        assert calls == []
        session.commit()
        assert calls == ["first", "second"]
        session.commit()
    assert calls == ["first", "second"]


def test_a_callback_may_query_the_committed_data(engine: Engine, models: Any) -> None:
    seen = []
    with Session(engine) as session:
        session.add(models.User(name="a"))
        session.flush()
        on_commit(
            lambda: seen.append(session.scalar(select(func.count(models.User.id)))),
            using=session,
        )
        session.commit()
    assert seen == [1]


def test_nothing_runs_without_a_commit(engine: Engine, models: Any) -> None:
    calls: list[str] = []
    with Session(engine) as session:
        session.add(models.User(name="a"))
        session.flush()
        on_commit(lambda: calls.append("rolled back"), using=session)
        session.rollback()
        session.add(models.User(name="b"))
        session.flush()
        on_commit(lambda: calls.append("closed"), using=session)
    with Session(engine) as session:
        session.begin()
        session.commit()
    assert calls == []


def test_outside_a_transaction_the_callback_runs_at_once(engine: Engine) -> None:
    calls: list[str] = []
    with Session(engine) as session:
        assert not session.in_transaction()
        on_commit(lambda: calls.append("now"), using=session)
        assert calls == ["now"]


def test_a_rolled_back_savepoint_drops_its_callbacks(
    engine: Engine, models: Any
) -> None:
    calls: list[str] = []
    with Session(engine) as session:
        session.begin()
        on_commit(lambda: calls.append("outer"), using=session)
        savepoint = session.begin_nested()
        on_commit(lambda: calls.append("inner"), using=session)
        savepoint.rollback()
        session.commit()
    assert calls == ["outer"]


def test_a_released_savepoint_hands_its_callbacks_to_the_outer_commit(
    engine: Engine, models: Any
) -> None:
    calls: list[str] = []
    with Session(engine) as session:
        session.begin()
        on_commit(lambda: calls.append("before"), using=session)
        with session.begin_nested():
            on_commit(lambda: calls.append("inner"), using=session)
        assert calls == []  # nothing runs at RELEASE SAVEPOINT
        on_commit(lambda: calls.append("after"), using=session)
        session.commit()
    assert calls == ["before", "inner", "after"]


def test_a_released_savepoint_inside_a_rolled_back_one_is_dropped(
    engine: Engine,
) -> None:
    calls: list[str] = []
    with Session(engine) as session:
        session.begin()
        outer = session.begin_nested()
        with session.begin_nested():
            on_commit(lambda: calls.append("inner"), using=session)
        outer.rollback()
        session.commit()
    assert calls == []


def test_savepoint_rollback_really_discards_rows_on_this_engine(
    engine: Engine, models: Any
) -> None:
    # Guards the SQLite savepoint recipe that the engine fixture applies.
    with Session(engine) as session:
        session.add(models.Tag(name="kept"))
        savepoint = session.begin_nested()
        session.add(models.Tag(name="dropped"))
        session.flush()
        savepoint.rollback()
        session.commit()
    with Session(engine) as session:
        assert session.scalars(select(models.Tag.name)).all() == ["kept"]


def test_a_failed_flush_and_its_rollback_drop_the_callbacks(
    engine: Engine, models: Any
) -> None:
    calls: list[str] = []

    def register(sender: Any, instance: Any, session: Session, **kwargs: Any) -> None:
        on_commit(lambda: calls.append(instance.name))
        if instance.name == "bad":
            raise ValueError("bad user")

    with (
        connected_to(register, post_save, sender=models.User),
        Session(engine) as session,
    ):
        session.add(models.User(name="bad"))
        with pytest.raises(ValueError, match="bad user"):
            session.commit()
        session.rollback()
        session.add(models.User(name="good"))
        session.commit()
    assert calls == ["good"]


def test_on_commit_receiver_runs_after_commit_with_the_signal_arguments(
    engine: Engine, models: Any
) -> None:
    calls: list[tuple[Any, ...]] = []

    def welcome(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
        calls.append((sender, instance.name, created, kwargs["signal"]))

    post_save.connect(welcome, sender=models.User, weak=False, on_commit=True)
    try:
        with Session(engine) as session:
            session.add(models.User(name="a"))
            session.flush()
            assert calls == []
            session.commit()
            assert calls == [(models.User, "a", True, post_save)]
            session.add(models.User(name="rolled back"))
            session.flush()
            session.rollback()
    finally:
        post_save.disconnect(welcome, sender=models.User)
    assert len(calls) == 1


def test_on_commit_robust_logs_and_continues(
    engine: Engine, models: Any, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def fails(**kwargs: Any) -> None:
        raise RuntimeError("mail server down")

    post_save.connect(fails, sender=models.User, weak=False, on_commit="robust")
    try:
        with Session(engine) as session:
            session.add(models.User(name="a"))
            session.flush()
            on_commit(lambda: calls.append("next"), using=session)
            with caplog.at_level(logging.ERROR, logger="tocsin"):
                session.commit()
    finally:
        post_save.disconnect(fails, sender=models.User)
    assert calls == ["next"]
    assert "mail server down" in caplog.text
    assert caplog.records[0].exc_info is not None


def test_a_failing_callback_raises_from_commit_after_the_data_is_committed(
    engine: Engine, models: Any
) -> None:
    calls: list[str] = []

    def fails() -> None:
        raise RuntimeError("callback failed")

    with Session(engine) as session:
        session.add(models.User(name="a"))
        session.flush()
        on_commit(fails, using=session)
        on_commit(lambda: calls.append("dropped"), using=session)
        with pytest.raises(RuntimeError, match="callback failed"):
            session.commit()
        assert not session.in_transaction()
    with Session(engine) as session:
        assert session.scalar(select(func.count(models.User.id))) == 1
    assert calls == []


def test_custom_signals_find_the_session_inside_unit_of_work(
    engine: Engine, models: Any
) -> None:
    order_placed = Signal()
    calls: list[str] = []

    def notify(sender: Any, order: str, **kwargs: Any) -> None:
        calls.append(order)

    order_placed.connect(notify, weak=False, on_commit=True)
    with Session(engine) as session:
        session.add(models.User(name="a"))
        session.flush()
        with unit_of_work(session):
            order_placed.send(sender="shop", order="#1")
        assert calls == []
        session.commit()
    assert calls == ["#1"]


def test_custom_signals_sent_by_model_receivers_find_the_session(
    engine: Engine, models: Any
) -> None:
    user_joined = Signal()
    calls: list[str] = []

    def announce(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
        if created:
            user_joined.send(sender=sender, name=instance.name)

    def greet(sender: Any, name: str, **kwargs: Any) -> None:
        calls.append(name)

    user_joined.connect(greet, weak=False, on_commit=True)
    with (
        connected_to(announce, post_save, sender=models.User),
        Session(engine) as session,
    ):
        session.add(models.User(name="a"))
        session.flush()
        assert calls == []
        session.commit()
    assert calls == ["a"]


def test_sessionmaker_and_scoped_session_are_covered(
    engine: Engine, models: Any
) -> None:
    calls: list[str] = []

    def welcome(sender: Any, instance: Any, **kwargs: Any) -> None:
        calls.append(instance.name)

    factory = sessionmaker(engine)
    scoped = scoped_session(factory)
    with connected_to(welcome, post_save, sender=models.User, on_commit=True):
        with factory() as session:
            session.add(models.User(name="maker"))
            session.commit()
        scoped.add(models.User(name="scoped"))
        scoped.flush()
        on_commit(lambda: calls.append("via scoped"), using=scoped)
        scoped.commit()
        scoped.remove()
    assert calls == ["maker", "scoped", "via scoped"]


def test_outer_test_transaction_pitfall_and_the_capture_helper(
    engine: Engine, models: Any
) -> None:
    calls: list[str] = []
    connection = engine.connect()
    outer = connection.begin()
    try:
        session = Session(bind=connection, join_transaction_mode="create_savepoint")
        # The pitfall: the session's commit only releases a savepoint of the
        # test's transaction, yet it is the session's outermost commit, so the
        # callback runs although the data will be rolled back.
        session.add(models.User(name="a"))
        session.flush()
        on_commit(lambda: calls.append("ran"), using=session)
        session.commit()
        assert calls == ["ran"]
        # The fix: capture the callbacks and decide what to do with them.
        with captured_on_commit() as callbacks:
            session.add(models.User(name="b"))
            session.flush()
            on_commit(lambda: calls.append("captured"), using=session)
            session.commit()
        assert calls == ["ran"]
        assert len(callbacks) == 1
        callbacks[0]()
        assert calls == ["ran", "captured"]
        session.close()
    finally:
        outer.rollback()
        connection.close()
    with Session(engine) as session:
        assert session.scalar(select(func.count(models.User.id))) == 0


def test_captured_on_commit_execute_runs_them_at_the_end_of_the_block(
    engine: Engine, models: Any
) -> None:
    calls: list[str] = []

    def welcome(sender: Any, instance: Any, **kwargs: Any) -> None:
        calls.append(instance.name)

    with (
        connected_to(welcome, post_save, sender=models.User, on_commit=True),
        Session(engine) as session,
    ):
        with captured_on_commit(execute=True) as callbacks:
            session.add(models.User(name="a"))
            session.flush()
            assert calls == []
            assert len(callbacks) == 1
            session.rollback()  # captured: the rollback does not drop them
        assert calls == ["a"]


def test_after_commit_listeners_see_nothing_run_at_release(
    engine: Engine, models: Any
) -> None:
    # The callback must not run at RELEASE SAVEPOINT, which also fires
    # SQLAlchemy's after_commit event.
    timeline: list[str] = []
    with Session(engine) as session:
        event.listen(session, "after_commit", lambda s: timeline.append("after_commit"))
        session.begin()
        with session.begin_nested():
            on_commit(lambda: timeline.append("callback"), using=session)
        timeline.append("released")
        session.commit()
    assert timeline == ["after_commit", "released", "after_commit", "callback"]


def test_captured_on_commit_leaves_another_threads_real_commit_alone(
    engine: Engine, models: Any
) -> None:
    # A test thread inside the block must not swallow the callbacks of a
    # real commit that a server or worker thread makes meanwhile.
    calls: list[str] = []
    errors: list[BaseException] = []

    def welcome(sender: Any, instance: Any, **kwargs: Any) -> None:
        calls.append(f"welcome {instance.name}")

    def worker() -> None:
        try:
            with Session(engine) as session:
                session.add(models.User(name="from the worker"))
                session.flush()
                on_commit(lambda: calls.append("worker on_commit"), using=session)
                session.commit()
        except BaseException as error:  # reported to the main thread
            errors.append(error)

    with (
        connected_to(welcome, post_save, sender=models.User, on_commit=True),
        captured_on_commit() as callbacks,
    ):
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(timeout=30)
        on_commit(lambda: calls.append("main thread"))
    assert errors == []
    assert calls == ["welcome from the worker", "worker on_commit"]
    assert len(callbacks) == 1
    callbacks[0]()
    assert calls[-1] == "main thread"
