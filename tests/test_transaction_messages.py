"""tocsin.transaction: what a user reads (errors, log lines, reprs) and the edges
of adapters, captures and robustness that the other transaction tests leave out."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest

from tocsin import Signal
from tocsin._async import BlockingCallError
from tocsin.transaction import (
    Callback,
    captured_on_commit,
    on_commit,
    register_unit_of_work_adapter,
    run_callbacks,
    unit_of_work,
)


class Queue:
    """A unit of work that holds its callbacks until ``commit()``."""

    def __init__(self) -> None:
        self.callbacks: list[Callback] = []

    def defer(self, callback: Callback) -> None:
        self.callbacks.append(callback)

    def commit(self) -> None:
        callbacks, self.callbacks = self.callbacks, []
        run_callbacks(callbacks)


class Connection:
    """Something that is not a unit of work until an adapter says how."""

    def __init__(self) -> None:
        self.queue = Queue()


def send_welcome() -> None:
    raise RuntimeError("mail server down")


def test_a_callback_is_not_robust_unless_asked() -> None:
    callback = Callback(send_welcome)
    assert callback.robust is False
    with pytest.raises(RuntimeError, match="mail server down"):
        run_callbacks([callback])


def test_callback_repr_says_robust_only_for_robust_callbacks() -> None:
    assert repr(Callback(send_welcome)) == "<tocsin.transaction.Callback send_welcome>"
    assert (
        repr(Callback(send_welcome, robust=True))
        == "<tocsin.transaction.Callback robust send_welcome>"
    )


def test_an_unregistered_adapter_no_longer_finds_a_transaction() -> None:
    unregister = register_unit_of_work_adapter(Connection, lambda c: c.queue)
    connection = Connection()
    on_commit(lambda: None, using=connection)
    assert len(connection.queue.callbacks) == 1

    unregister()
    with pytest.raises(TypeError, match="Cannot find a transaction"):
        on_commit(lambda: None, using=connection)
    unregister()  # a second call does nothing


def test_a_string_using_says_there_are_no_aliases_and_what_to_pass() -> None:
    expected = (
        "on_commit(using='default'): tocsin has no database aliases. Pass the "
        "session (or unit of work) whose transaction the function waits for."
    )
    with pytest.raises(TypeError, match=f"^{re.escape(expected)}$"):
        on_commit(lambda: None, using="default")


def test_an_unknown_using_names_what_would_be_accepted() -> None:
    expected = (
        "Cannot find a transaction in 42. Pass a SQLAlchemy Session or "
        "AsyncSession (once tocsin.integrations.sqlalchemy.install() has run), or "
        "an object with a defer(callback) method (see tocsin.transaction.UnitOfWork)."
    )
    with pytest.raises(TypeError, match=f"^{re.escape(expected)}$"):
        on_commit(lambda: None, using=42)


def test_a_bad_on_commit_value_says_what_each_good_value_does() -> None:
    expected = (
        "on_commit must be True, False or 'robust', not 'later': True defers the "
        "receiver until the transaction commits, 'robust' also logs its "
        "exceptions instead of raising them."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        Signal().connect(lambda **kwargs: None, weak=False, on_commit="later")


def test_an_async_callback_run_inside_a_running_loop_names_the_callback() -> None:
    async def notify() -> None:
        pass

    async def main() -> None:
        on_commit(notify)  # no transaction: it would have to run now

    with pytest.raises(BlockingCallError, match=r"^An on_commit callback has"):
        asyncio.run(main())


def test_a_robust_callbacks_failure_is_logged_with_its_name_and_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="tocsin"):
        run_callbacks([Callback(send_welcome, robust=True)])
    [record] = caplog.records
    assert record.getMessage() == (
        "Error calling send_welcome in an on_commit callback (mail server down)"
    )
    assert record.exc_info is not None
    assert record.exc_info[1] is not None
    assert str(record.exc_info[1]) == "mail server down"


def test_a_deferred_robust_receivers_failure_is_logged_under_the_receivers_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signal = Signal()

    def notify_warehouse(**kwargs: Any) -> None:
        raise LookupError("no such warehouse")

    signal.connect(notify_warehouse, weak=False, on_commit="robust")
    queue = Queue()
    with unit_of_work(queue):
        signal.send(sender=None)
    with caplog.at_level(logging.ERROR, logger="tocsin"):
        queue.commit()
    [record] = caplog.records
    assert "Error calling " in record.getMessage()
    assert "notify_warehouse in an on_commit callback (no such warehouse)" in (
        record.getMessage()
    )


def test_on_commit_receivers_are_captured_outside_any_transaction() -> None:
    signal = Signal()
    calls: list[int] = []
    signal.connect(
        lambda sender, value, **kwargs: calls.append(value), weak=False, on_commit=True
    )
    with captured_on_commit() as callbacks:
        signal.send(sender=None, value=1)
        assert calls == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert calls == [1]


def test_send_robust_makes_a_deferred_receiver_robust_at_commit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signal = Signal()
    calls: list[str] = []

    def fails(**kwargs: Any) -> None:
        raise ValueError("deferred failure")

    signal.connect(fails, weak=False, on_commit=True)
    signal.connect(lambda **kwargs: calls.append("next"), weak=False, on_commit=True)
    queue = Queue()
    with unit_of_work(queue):
        signal.send_robust(sender=None)
    with caplog.at_level(logging.ERROR, logger="tocsin"):
        queue.commit()  # logged, not raised: the send was robust
    assert calls == ["next"]
    assert "deferred failure" in caplog.text
