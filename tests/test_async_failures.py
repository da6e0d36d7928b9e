"""Failures of async receivers, and cancellation of the caller, as in Django 6.1.

Without ``_robust`` the receivers of one send behave as the children of an
``asyncio.TaskGroup``: the first failure cancels the receivers still waiting
and is raised as itself; several failures in the same pass are raised together
as an ``ExceptionGroup``. With ``_robust`` every ``Exception`` is that
receiver's response (and is logged) while other ``BaseException``\\ s
propagate. Cancelling the caller cancels every receiver and waits for them.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import markcoroutinefunction

from support import collect_garbage, deliver, run_then_cancel
from tocsin import Signal


class Abort(BaseException):
    """A BaseException that asyncio does not treat specially (unlike
    KeyboardInterrupt and SystemExit, which it re-raises out of the loop)."""


def connected(*receivers: Callable[..., Any]) -> Signal:
    signal = Signal()
    for receiver in receivers:
        signal.connect(receiver, weak=False)
    return signal


def waiter(outcome: list[str], name: str) -> Callable[..., Any]:
    """A receiver that waits long, and records how its wait ended."""

    async def waits(**kwargs: Any) -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            outcome.append(f"{name} cancelled")
            raise
        finally:
            outcome.append(f"{name} cleaned up")
        return name

    return waits


def failing(message: str, *, waits: bool) -> Callable[..., Any]:
    async def fails(**kwargs: Any) -> None:
        if waits:
            await asyncio.sleep(0)
        raise ValueError(message)

    fails.__qualname__ = f"fails_{message.replace(' ', '_')}"
    return fails


# -- without _robust ------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["send", "asend"])
@pytest.mark.parametrize("waits", [False, True], ids=["at once", "after a wait"])
def test_the_first_failure_cancels_the_receivers_still_waiting_and_is_raised_as_itself(
    mode: str, waits: bool
) -> None:
    outcome: list[str] = []
    signal = connected(
        waiter(outcome, "before"),
        failing("boom", waits=waits),
        waiter(outcome, "after"),
    )

    with pytest.raises(ValueError, match=r"^boom$") as raised:
        deliver(mode, signal)

    assert type(raised.value) is ValueError  # not wrapped in a group
    assert sorted(outcome) == [
        "after cancelled",
        "after cleaned up",
        "before cancelled",
        "before cleaned up",
    ]


@pytest.mark.parametrize("mode", ["send", "asend"])
def test_a_later_failure_is_not_reached_once_the_first_one_cancelled_it(
    mode: str,
) -> None:
    reached: list[str] = []

    async def fails_later(**kwargs: Any) -> None:
        await asyncio.sleep(0.05)
        reached.append("second failure")
        raise KeyError("later")

    signal = connected(fails_later, failing("first", waits=False))

    with pytest.raises(ValueError, match=r"^first$"):
        deliver(mode, signal)
    assert reached == []


@pytest.mark.parametrize("mode", ["send", "asend"])
@pytest.mark.parametrize("waits", [False, True], ids=["at once", "after one wait"])
def test_failures_in_the_same_pass_are_raised_together_in_receiver_order(
    mode: str, waits: bool
) -> None:
    outcome: list[str] = []
    signal = connected(
        failing("first", waits=waits),
        waiter(outcome, "waiting"),
        failing("second", waits=waits),
    )

    with pytest.raises(ExceptionGroup) as raised:
        deliver(mode, signal)

    assert raised.value.message == "several async receivers failed in one send"
    assert [str(error) for error in raised.value.exceptions] == ["first", "second"]
    assert all(type(error) is ValueError for error in raised.value.exceptions)
    assert outcome == ["waiting cancelled", "waiting cleaned up"]


# -- _robust ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["send_robust", "asend_robust"])
def test_robust_sends_answer_each_exception_as_its_receivers_response_and_log_it(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    def sync_fails(**kwargs: Any) -> None:
        raise RuntimeError("sync failed")

    async def slow_ok(**kwargs: Any) -> str:
        await asyncio.sleep(0.02)  # still waiting when the others fail
        return "slow ok"

    fails_at_once = failing("at once", waits=False)
    fails_after_wait = failing("after a wait", waits=True)
    signal = connected(sync_fails, fails_at_once, slow_ok, fails_after_wait)

    with caplog.at_level(logging.ERROR, logger="tocsin"):
        responses = deliver(mode, signal)

    assert [receiver for receiver, _ in responses] == [
        sync_fails,
        fails_at_once,
        slow_ok,
        fails_after_wait,
    ]
    errors = [response for _, response in responses]
    assert errors[2] == "slow ok"  # a failure cancels nobody in a robust send
    assert [(type(e), str(e)) for e in errors[:2] + errors[3:]] == [
        (RuntimeError, "sync failed"),
        (ValueError, "at once"),
        (ValueError, "after a wait"),
    ]
    assert all(e.__traceback__ is not None for e in errors[:2] + errors[3:])
    records = [r for r in caplog.records if r.name == "tocsin"]
    assert [r.levelno for r in records] == [logging.ERROR] * 3
    assert [r.exc_info[1] if r.exc_info else None for r in records] == [
        errors[0],
        errors[1],
        errors[3],
    ]
    assert "fails_at_once" in records[1].getMessage()
    assert "at once" in records[1].getMessage()


@pytest.mark.parametrize("mode", ["send", "send_robust", "asend", "asend_robust"])
def test_a_base_exception_of_an_async_receiver_propagates_unlogged_and_cancels_the_others(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    outcome: list[str] = []

    async def aborts(**kwargs: Any) -> None:
        await asyncio.sleep(0)
        raise Abort("abort")

    signal = connected(waiter(outcome, "waiting"), aborts)

    with pytest.raises(Abort):
        deliver(mode, signal)
    assert outcome == ["waiting cancelled", "waiting cleaned up"]
    assert [r for r in caplog.records if r.name == "tocsin"] == []  # not logged


@pytest.mark.parametrize("mode", ["send_robust", "asend_robust"])
def test_robust_sends_let_a_base_exception_of_a_sync_receiver_propagate(
    mode: str,
) -> None:
    called: list[str] = []

    def aborts(**kwargs: Any) -> None:
        raise Abort("abort")

    async def after(**kwargs: Any) -> None:
        called.append("after")

    signal = connected(aborts, after)

    with pytest.raises(Abort):
        deliver(mode, signal)
    assert called == []


def test_asend_robust_cancels_the_others_then_raises_a_receivers_keyboard_interrupt() -> (
    None
):
    outcome: list[str] = []

    async def interrupted(**kwargs: Any) -> None:
        await asyncio.sleep(0)
        raise KeyboardInterrupt

    signal = connected(waiter(outcome, "waiting"), interrupted)
    loop = asyncio.new_event_loop()
    try:
        sending = loop.create_task(signal.asend_robust(None))
        # asyncio itself lets a task's KeyboardInterrupt out of the loop at
        # once; the send has not seen it yet.
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(sending)
        assert not sending.done()
        assert outcome == []
        # Run on: the send cancels the others, waits for them, and raises it.
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(sending)
        assert isinstance(sending.exception(), KeyboardInterrupt)
    finally:
        loop.close()
    assert outcome == ["waiting cancelled", "waiting cleaned up"]


@pytest.mark.parametrize("later_returns", ["a coroutine", "another awaitable"])
@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit])
def test_a_receiver_interrupted_before_its_first_wait_aborts_the_send_as_a_task_group(
    error: type[BaseException], later_returns: str
) -> None:
    # On 3.12+ the receiver raises while its task starts eagerly, inside the
    # send: the receivers already started are cancelled and awaited before the
    # send raises, and those after it never start (no coroutine left unawaited).
    outcome: list[str] = []

    async def interrupted(**kwargs: Any) -> None:
        raise error

    async def later(**kwargs: Any) -> None:
        outcome.append("later ran")

    @markcoroutinefunction
    def later_pending(**kwargs: Any) -> Pending:
        return Pending(outcome)  # an awaitable with nothing to close

    signal = connected(
        waiter(outcome, "waiting"),
        interrupted,
        later if later_returns == "a coroutine" else later_pending,
    )

    async def caller() -> None:
        try:
            await signal.asend_robust(None)
        finally:
            outcome.append("caller saw it")

    with pytest.raises(error):
        asyncio.run(caller())
    collect_garbage()  # an unawaited coroutine would warn (an error here)
    assert outcome == ["waiting cancelled", "waiting cleaned up", "caller saw it"]


# -- cancelling the caller ----------------------------------------------------------------

marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker")


@pytest.mark.parametrize("mode", ["asend", "asend_robust"])
def test_cancelling_the_caller_cancels_every_receiver_and_waits_for_their_cleanup(
    mode: str,
) -> None:
    timeline: list[str] = []

    def slow_cleanup(name: str) -> Callable[..., Any]:
        async def receiver(**kwargs: Any) -> None:
            marker.set(name)
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                timeline.append(f"{name} cancelled")
                await asyncio.sleep(0.01)  # cleanup that itself waits
                timeline.append(f"{name} cleaned up")
                raise

        return receiver

    signal = connected(slow_cleanup("one"), slow_cleanup("two"))

    async def caller() -> None:
        try:
            await getattr(signal, mode)(None)
        except asyncio.CancelledError:
            timeline.append(f"caller cancelled, sees marker {marker.get('unset')}")
            raise

    run_then_cancel(caller())
    assert sorted(timeline[:4]) == [
        "one cancelled",
        "one cleaned up",
        "two cancelled",
        "two cleaned up",
    ]
    assert timeline[4:] == ["caller cancelled, sees marker two"]


def test_cancelling_the_caller_propagates_even_if_a_receiver_swallows_it() -> None:
    async def stubborn(**kwargs: Any) -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return "ignored the cancellation"
        return "slept"

    signal = connected(stubborn)
    finished: list[str] = []

    async def caller() -> None:
        await signal.asend(None)
        finished.append("asend returned")

    run_then_cancel(caller())
    assert finished == []


def test_wait_for_around_asend_times_out_and_cancels_its_receivers() -> None:
    outcome: list[str] = []
    signal = connected(waiter(outcome, "slow"))

    async def main() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(signal.asend(None), timeout=0.02)

    asyncio.run(main())
    assert outcome == ["slow cancelled", "slow cleaned up"]


@pytest.mark.parametrize("method", ["send", "asend"])
def test_plain_and_robust_sends_with_the_same_names_keep_their_own_error_handling(
    method: str,
) -> None:
    """Beside an async receiver, a failing plain receiver is answered by
    ``*_robust`` and raised by the plain send, whichever ran first with
    those keyword names."""

    def maybe_fails(fail: bool, **kwargs: Any) -> str:
        if fail:
            raise ValueError("plain receiver failed")
        return "ok"

    async def answers(**kwargs: Any) -> str:
        return "async"

    signal = connected(maybe_fails, answers)

    def send(robust: bool, fail: bool) -> Any:
        name = method + ("_robust" if robust else "")
        sent = getattr(signal, name)(None, fail=fail)
        return asyncio.run(sent) if method == "asend" else sent

    assert send(False, fail=False) == [(maybe_fails, "ok"), (answers, "async")]
    [(_, error), (_, response)] = send(True, fail=True)
    assert isinstance(error, ValueError)
    assert response == "async"
    with pytest.raises(ValueError, match="plain receiver failed"):
        send(False, fail=True)


def test_an_async_receiver_that_fails_when_called_raises_its_own_error() -> None:
    """A receiver marked async whose call raises before it returns an
    awaitable: the send raises that error, and closes the coroutines of the
    receivers already called, which never run."""
    from asgiref.sync import markcoroutinefunction

    outcome: list[str] = []

    def refuses(**kwargs: Any) -> Any:
        raise ValueError("refused before awaiting")

    signal = connected(waiter(outcome, "first"), markcoroutinefunction(refuses))

    with pytest.raises(ValueError, match="refused before awaiting"):
        signal.send(None)
    collect_garbage()
    assert outcome == []


class Pending:
    """An awaitable that is not a coroutine (no ``close()``), as a future is."""

    def __init__(self, ran: list[str]) -> None:
        self.ran = ran

    def __await__(self) -> Any:
        self.ran.append("pending")
        yield from asyncio.sleep(0).__await__()


@pytest.mark.parametrize("earlier_returns", ["a coroutine", "another awaitable"])
@pytest.mark.parametrize("mode", ["send", "asend"])
def test_a_receiver_that_cannot_be_called_closes_the_earlier_ones_unrun(
    mode: str, earlier_returns: str
) -> None:
    # Calling an async receiver with arguments it does not take raises before
    # any receiver runs: the coroutines already made for the earlier ones are
    # closed (not left to warn "never awaited"), and the error is the call's.
    ran: list[str] = []

    async def earlier(**kwargs: Any) -> None:
        ran.append("earlier")

    @markcoroutinefunction
    def earlier_pending(**kwargs: Any) -> Pending:
        return Pending(ran)

    async def needs_a_value(*, sender: Any, value: int, **kwargs: Any) -> None:
        ran.append("needs a value")

    first = earlier if earlier_returns == "a coroutine" else earlier_pending
    signal = connected(first, needs_a_value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(TypeError, match="value"):
            deliver(mode, signal)
        collect_garbage()

    assert ran == []
    assert [str(w.message) for w in caught] == []
