"""tocsin.transaction without any database: the protocol, the option, the helper."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from tocsin import Signal, receiver
from tocsin.transaction import (
    Callback,
    UnitOfWork,
    captured_on_commit,
    current_unit_of_work,
    on_commit,
    run_callbacks,
    unit_of_work,
)


class Transactions:
    """A minimal savepoint-aware unit of work, as a backend would write one."""

    def __init__(self) -> None:
        self.stack: list[list[Callback]] = []

    def defer(self, callback: Callback) -> None:
        if not self.stack:
            run_callbacks([callback])
        else:
            self.stack[-1].append(callback)

    def begin(self) -> None:
        self.stack.append([])

    def commit(self) -> None:
        callbacks = self.stack.pop()
        if self.stack:
            self.stack[-1].extend(callbacks)
        else:
            run_callbacks(callbacks)

    def rollback(self) -> None:
        self.stack.pop()


def test_the_test_backend_satisfies_the_protocol() -> None:
    assert isinstance(Transactions(), UnitOfWork)


def test_without_a_unit_of_work_the_function_runs_at_once() -> None:
    calls: list[str] = []
    assert current_unit_of_work() is None
    on_commit(lambda: calls.append("now"))
    assert calls == ["now"]


def test_the_unit_of_work_block_defers_until_its_commit() -> None:
    calls: list[str] = []
    db = Transactions()
    db.begin()
    with unit_of_work(db) as unit:
        assert unit is db
        assert current_unit_of_work() is db
        on_commit(lambda: calls.append("a"))
        db.begin()
        on_commit(lambda: calls.append("dropped"))
        db.rollback()
        on_commit(lambda: calls.append("b"))
    assert current_unit_of_work() is None
    assert calls == []
    db.commit()
    assert calls == ["a", "b"]


def test_using_wins_over_the_enclosing_block() -> None:
    calls: list[str] = []
    outer, explicit = Transactions(), Transactions()
    outer.begin()
    explicit.begin()
    with unit_of_work(outer):
        on_commit(lambda: calls.append("explicit"), using=explicit)
    outer.commit()
    assert calls == []
    explicit.commit()
    assert calls == ["explicit"]


def test_unit_of_work_blocks_nest() -> None:
    first, second = Transactions(), Transactions()
    with unit_of_work(first):
        with unit_of_work(second):
            assert current_unit_of_work() is second
        assert current_unit_of_work() is first


@pytest.mark.parametrize(
    ("using", "message"),
    [("default", "no database aliases"), (object(), "Cannot find a transaction")],
)
def test_a_bad_using_is_a_clear_error(using: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        on_commit(lambda: None, using=using)
    with pytest.raises(TypeError, match=message), unit_of_work(using):
        pass


def test_on_commit_needs_a_callable() -> None:
    with pytest.raises(TypeError, match="needs a callable"):
        on_commit("send_email")  # type: ignore[arg-type]


def test_a_failing_callback_stops_the_others_unless_robust(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    def boom() -> None:
        raise RuntimeError("boom")

    db = Transactions()
    db.begin()
    on_commit(boom, using=db, robust=True)
    on_commit(lambda: calls.append("after robust"), using=db)
    on_commit(boom, using=db)
    on_commit(lambda: calls.append("never"), using=db)
    with (
        caplog.at_level(logging.ERROR, logger="tocsin"),
        pytest.raises(RuntimeError, match="boom"),
    ):
        db.commit()
    assert calls == ["after robust"]
    assert len(caplog.records) == 1
    assert "boom" in caplog.records[0].getMessage()


def test_an_async_callback_is_awaited() -> None:
    calls: list[str] = []

    async def later() -> None:
        await asyncio.sleep(0)
        calls.append("awaited")

    on_commit(later)
    assert calls == ["awaited"]


def test_a_callback_returning_an_awaitable_that_is_not_a_coroutine_is_awaited() -> None:
    calls: list[str] = []

    class Later:
        """An awaitable object, as a library's future or handle can be."""

        def __await__(self) -> Any:
            yield from asyncio.sleep(0).__await__()
            calls.append("awaited")
            return "done"

    on_commit(Later)
    assert calls == ["awaited"]


def test_receivers_connected_with_on_commit_wait_for_the_commit() -> None:
    signal = Signal()
    calls: list[tuple[Any, ...]] = []

    def deferred(sender: Any, value: int, **kwargs: Any) -> str:
        calls.append((sender, value, kwargs["signal"]))
        return "ignored"

    def immediate(sender: Any, **kwargs: Any) -> str:
        return "now"

    signal.connect(deferred, weak=False, on_commit=True)
    signal.connect(immediate, weak=False)
    db = Transactions()
    db.begin()
    with unit_of_work(db):
        responses = signal.send(sender="s", value=1)
    assert responses == [(immediate, "now"), (deferred, None)]
    assert calls == []
    db.commit()
    assert calls == [("s", 1, signal)]


def test_on_commit_false_is_a_plain_receiver() -> None:
    signal = Signal()
    signal.connect(lambda **kwargs: "plain", weak=False, on_commit=False)
    assert signal.send(sender=None)[0][1] == "plain"
    assert signal.receivers_info()[0].options == {}


def test_the_option_is_listed_by_receivers_info() -> None:
    signal = Signal()

    @receiver(signal, weak=False, on_commit="robust")
    def handler(**kwargs: Any) -> None:
        pass

    assert signal.receivers_info()[0].options == {"on_commit": "robust"}


@pytest.mark.parametrize("value", [1, "yes", "ROBUST", object()])
def test_a_bad_on_commit_value_is_a_clear_error(value: Any) -> None:
    signal = Signal()
    with pytest.raises(ValueError, match="on_commit must be True, False or 'robust'"):
        signal.connect(lambda **kwargs: None, weak=False, on_commit=value)


def test_robust_receivers_and_send_robust_log_instead_of_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signal = Signal()
    calls: list[str] = []

    def fails(**kwargs: Any) -> None:
        raise ValueError("deferred failure")

    signal.connect(fails, weak=False, on_commit="robust")
    signal.connect(lambda **kwargs: calls.append("next"), weak=False, on_commit=True)
    with caplog.at_level(logging.ERROR, logger="tocsin"):
        signal.send(sender=None)  # no transaction: they run at once
    assert calls == ["next"]
    assert "deferred failure" in caplog.text

    signal.disconnect(fails)
    strict = Signal()
    strict.connect(fails, weak=False, on_commit=True)
    with pytest.raises(ValueError, match="deferred failure"):
        strict.send(sender=None)
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="tocsin"):
        strict.send_robust(sender=None)
    assert "deferred failure" in caplog.text


def test_a_robust_async_receiver_run_at_once_returns_its_exception_from_send(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Outside a transaction an on_commit="robust" receiver runs at once; even
    # from a plain send(), its exception is its response, and logged.
    signal = Signal()
    error = ValueError("async failure")

    async def fails(**kwargs: Any) -> None:
        await asyncio.sleep(0)
        raise error

    async def succeeds(**kwargs: Any) -> str:
        await asyncio.sleep(0)
        return "ok"

    signal.connect(fails, weak=False, on_commit="robust")
    signal.connect(succeeds, weak=False)
    with caplog.at_level(logging.ERROR, logger="tocsin"):
        responses = signal.send(sender=None)

    assert responses == [(fails, error), (succeeds, "ok")]
    [record] = caplog.records
    assert record.exc_info is not None
    assert record.exc_info[1] is error


def test_async_receivers_can_be_deferred() -> None:
    signal = Signal()
    calls: list[int] = []

    async def deferred(sender: Any, value: int, **kwargs: Any) -> None:
        await asyncio.sleep(0)
        calls.append(value)

    signal.connect(deferred, weak=False, on_commit=True)
    db = Transactions()
    db.begin()
    with unit_of_work(db):
        signal.send(sender=None, value=7)
    assert calls == []
    db.commit()
    assert calls == [7]


def test_captured_on_commit_collects_instead_of_running() -> None:
    calls: list[str] = []
    db = Transactions()
    db.begin()
    with captured_on_commit() as callbacks:
        on_commit(lambda: calls.append("a"), using=db)
        on_commit(lambda: calls.append("b"))  # would have run at once
    db.commit()
    assert calls == []
    assert [type(c) for c in callbacks] == [Callback, Callback]
    for callback in callbacks:
        callback()
    assert calls == ["a", "b"]
    on_commit(lambda: calls.append("after the block"))
    assert calls[-1] == "after the block"


def test_captured_on_commit_execute_runs_them_and_those_they_register() -> None:
    calls: list[str] = []

    def first() -> None:
        calls.append("first")
        on_commit(lambda: calls.append("registered by first"))

    with captured_on_commit(execute=True) as callbacks:
        on_commit(first)
        assert calls == []
    assert calls == ["first", "registered by first"]
    assert len(callbacks) == 2


def test_captured_on_commit_execute_does_not_run_after_an_exception() -> None:
    calls: list[str] = []

    def register_then_fail() -> None:
        with captured_on_commit(execute=True):
            on_commit(lambda: calls.append("x"))
            raise KeyError("test")

    with pytest.raises(KeyError):
        register_then_fail()
    assert calls == []


def test_nested_captures_collect_into_the_innermost_only() -> None:
    with captured_on_commit() as outer:
        on_commit(lambda: None)
        with captured_on_commit() as inner:
            on_commit(lambda: None)
            on_commit(lambda: None)
        on_commit(lambda: None)
    assert (len(outer), len(inner)) == (2, 2)


def test_tasks_started_inside_the_capture_are_captured_too() -> None:
    calls: list[str] = []

    async def handler() -> None:
        await asyncio.sleep(0)
        on_commit(lambda: calls.append("from the task"))

    async def main() -> list[Callback]:
        with captured_on_commit() as callbacks:
            await asyncio.create_task(handler())
        return callbacks

    callbacks = asyncio.run(main())
    assert calls == []
    assert len(callbacks) == 1


def test_work_sent_to_a_thread_with_to_thread_is_captured() -> None:
    calls: list[str] = []

    async def main() -> list[Callback]:
        with captured_on_commit() as callbacks:
            await asyncio.to_thread(on_commit, lambda: calls.append("worker"))
        return callbacks

    assert len(asyncio.run(main())) == 1
    assert calls == []


def test_a_thread_outside_the_capture_runs_its_callbacks_at_once() -> None:
    # The capture belongs to the context that opened it, as Django's belongs
    # to one connection: another thread keeps its own on-commit behaviour.
    calls: list[str] = []
    inside = threading.Event()
    done = threading.Event()

    def other_thread() -> None:
        inside.wait(timeout=10)
        on_commit(lambda: calls.append("other thread"))
        done.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    with captured_on_commit() as callbacks:
        inside.set()
        assert done.wait(timeout=10)
        on_commit(lambda: calls.append("captured"))
    thread.join()
    assert calls == ["other thread"]
    assert len(callbacks) == 1


def test_callback_repr_names_the_function() -> None:
    def send_welcome() -> None:
        pass

    assert "send_welcome" in repr(Callback(send_welcome, robust=True))
    assert "robust" in repr(Callback(send_welcome, robust=True))
