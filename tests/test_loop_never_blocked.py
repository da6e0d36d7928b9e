"""From async code, tocsin never blocks the running event loop.

A heartbeat task ticks on the caller's loop while slow async receivers run:
had the send waited for them anywhere else (a helper thread, a fresh loop),
the heartbeat would stand still. Synchronous code on a thread that runs a
loop, with async receivers to run and no bridge, gets a clear error instead of
a silent block. (The SQLAlchemy and ASGI paths are in
``integrations/test_never_blocked_sqlalchemy_asgi.py``.)
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from typing import Any

import pytest

from support import SlowReceiver, collect_garbage, heartbeat
from tocsin import Signal
from tocsin.transaction import UnitOfWork, on_commit, unit_of_work


@pytest.mark.parametrize("mode", ["asend", "asend_robust"])
def test_the_loop_keeps_running_while_asend_awaits_slow_async_receivers(
    mode: str,
) -> None:
    async def main() -> None:
        async with heartbeat() as beating:
            slow = SlowReceiver(beating)
            signal = Signal()
            signal.connect(slow, weak=False)
            signal.connect(SlowReceiver(beating), weak=False)
            responses = await getattr(signal, mode)(None)
            assert [r for _, r in responses] == ["slow done", "slow done"]
            slow.check_ran_on(asyncio.get_running_loop())

    asyncio.run(main())


@pytest.mark.parametrize("on_commit_value", [True, "robust"])
@pytest.mark.parametrize("mode", ["asend", "asend_robust"])
def test_on_commit_async_receivers_outside_a_transaction_are_awaited_by_asend_on_its_loop(
    mode: str, on_commit_value: Any
) -> None:
    async def main() -> None:
        async with heartbeat() as beating:
            slow = SlowReceiver(beating)
            signal = Signal()
            signal.connect(slow, weak=False, on_commit=on_commit_value)
            responses = await getattr(signal, mode)(None)
            # Awaited by asend itself: done, with its response, when it returns.
            assert responses == [(slow, "slow done")]
            slow.check_ran_on(asyncio.get_running_loop())

    asyncio.run(main())


class AtOnce:
    """A unit of work with no transaction open: it runs callbacks at once,
    as a SQLAlchemy session does between transactions."""

    def defer(self, callback: Any) -> None:
        from tocsin.transaction import run_callbacks

        run_callbacks([callback])


@pytest.mark.parametrize("mode", ["asend", "asend_robust"])
def test_on_commit_async_receivers_in_a_unit_of_work_with_no_transaction_are_awaited_by_asend(
    mode: str,
) -> None:
    # "Send after commit" inside unit_of_work(session): no transaction is
    # open, so the receiver runs now, and asend awaits it on its own loop.
    unit: UnitOfWork = AtOnce()

    async def main() -> None:
        async with heartbeat() as beating:
            slow = SlowReceiver(beating)
            signal = Signal()
            signal.connect(slow, weak=False, on_commit=True)
            with unit_of_work(unit):
                responses = await getattr(signal, mode)(None)
            assert responses == [(slow, "slow done")]
            slow.check_ran_on(asyncio.get_running_loop())

    asyncio.run(main())


class Transaction:
    """A unit of work with a transaction open until :meth:`commit`."""

    def __init__(self) -> None:
        self.queue: list[Any] = []

    def defer(self, callback: Any) -> None:
        self.queue.append(callback)


def test_on_commit_async_receivers_inside_a_transaction_wait_for_the_commit() -> None:
    calls: list[str] = []

    async def deferred(**kwargs: Any) -> None:
        calls.append(f"ran with {kwargs['n']}")

    signal = Signal()
    signal.connect(deferred, weak=False, on_commit=True)
    unit = Transaction()

    async def main() -> None:
        with unit_of_work(unit):
            responses = await signal.asend(None, n=1)
        assert responses == [(deferred, None)]
        assert calls == []
        assert len(unit.queue) == 1  # queued, with the arguments of the send

    asyncio.run(main())
    assert calls == []


# -- synchronous sends on a loop's thread ----------------------------------------------------


async def async_receiver(**kwargs: Any) -> str:
    await asyncio.sleep(0)
    return "async"


def sync_receiver(**kwargs: Any) -> str:
    return "sync"


@pytest.mark.parametrize("mode", ["send", "send_robust"])
def test_a_sync_send_on_a_thread_running_a_loop_refuses_and_says_to_use_asend(
    mode: str,
) -> None:
    called: list[str] = []

    def sync_first(**kwargs: Any) -> None:
        called.append("sync")

    signal = Signal()
    signal.connect(sync_first, weak=False)
    signal.connect(async_receiver)

    async def main() -> None:
        async with heartbeat() as beating:
            before = beating.ticks
            with pytest.raises(RuntimeError, match=r"would block.*asend\(") as raised:
                getattr(signal, mode)(None)  # sync code called from a coroutine
            await asyncio.sleep(0.01)
            assert beating.ticks > before  # nothing was left holding the loop
            collect_garbage()  # a coroutine left unclosed would warn here
        # The whole message: what went wrong, and both ways out.
        assert str(raised.value) == (
            f"Signal.{mode}() has async receivers to run, but it was called from "
            "a thread that is running an event loop: waiting for them here would "
            "block that loop. Await the async form instead (await "
            "signal.asend(...) or asend_robust), or run the synchronous code in "
            "a worker thread (asyncio.to_thread)."
        )

    asyncio.run(main())
    # The sync receivers ran, as they do before async ones in any send; the
    # error comes before any async receiver starts, so none is half-run.
    assert called == ["sync"]


def test_a_robust_send_does_not_turn_the_blocking_error_into_a_response() -> None:
    signal = Signal()
    signal.connect(async_receiver)

    async def main() -> None:
        signal.send_robust(None)

    with pytest.raises(RuntimeError, match="asend"):
        asyncio.run(main())


def test_a_sync_send_on_a_thread_running_a_loop_in_another_thread_is_refused_too() -> (
    None
):
    # Any thread that runs a loop, not only the main one.
    signal = Signal()
    signal.connect(async_receiver)
    errors: list[BaseException] = []

    def in_thread() -> None:
        async def main() -> None:
            try:
                signal.send(None)
            except RuntimeError as error:
                errors.append(error)

        asyncio.run(main())

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(10)
    assert len(errors) == 1
    assert "asend" in str(errors[0])


def test_a_sync_send_from_a_worker_thread_of_the_loop_runs_the_async_receivers() -> (
    None
):
    # The way out that the error names: asyncio.to_thread.
    signal = Signal()
    signal.connect(async_receiver)

    async def main() -> Any:
        return await asyncio.to_thread(signal.send, None)

    assert asyncio.run(main()) == [(async_receiver, "async")]


def test_on_commit_of_an_async_function_outside_a_transaction_on_a_loop_thread_refuses() -> (
    None
):
    ran: list[str] = []

    async def callback() -> None:
        ran.append("ran")

    async def main() -> None:
        async with heartbeat() as beating:
            before = beating.ticks
            with pytest.raises(RuntimeError, match=r"would block.*asend\("):
                on_commit(callback)
            await asyncio.sleep(0.01)
            assert beating.ticks > before

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(main())
        collect_garbage()
    assert ran == []  # closed, never half-run
    assert [str(w.message) for w in caught] == []  # so no "never awaited" warning


def test_on_commit_of_an_async_function_outside_a_transaction_from_sync_code_runs_it() -> (
    None
):
    ran: list[str] = []

    async def callback() -> None:
        await asyncio.sleep(0)
        ran.append("ran")

    on_commit(callback)

    assert ran == ["ran"]
