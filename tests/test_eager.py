"""Async receivers start at once; only those that wait are resumed in tasks.

These tests pin down that eager start behaves as a task would: the receiver
reads the outcome of what it awaited, cancellation reaches it, and its
context is its own.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

from tocsin import Signal

colour: contextvars.ContextVar[str] = contextvars.ContextVar("colour", default="none")


def connect_all(*receivers: Any) -> Signal:
    signal = Signal()
    for receiver in receivers:
        signal.connect(receiver, weak=False)
    return signal


def test_receivers_that_never_wait_run_inside_the_callers_task() -> None:
    tasks_seen: list[asyncio.Task[Any] | None] = []

    async def quick(**kwargs: Any) -> str:
        tasks_seen.append(asyncio.current_task())
        return "quick"

    async def also_quick(**kwargs: Any) -> str:
        return await quick()

    async def main() -> tuple[Any, asyncio.Task[Any] | None]:
        signal = connect_all(quick, also_quick)
        return await signal.asend(None), asyncio.current_task()

    responses, caller = asyncio.run(main())
    assert [response for _, response in responses] == ["quick", "quick"]
    assert tasks_seen == [caller, caller]


def test_a_receiver_that_waits_reads_the_outcome_of_what_it_awaited() -> None:
    async def main() -> Any:
        loop = asyncio.get_running_loop()
        failing: asyncio.Future[str] = loop.create_future()
        succeeding: asyncio.Future[str] = loop.create_future()
        loop.call_later(0.01, failing.set_exception, KeyError("gone"))
        loop.call_later(0.02, succeeding.set_result, "value")

        async def reads_failure(**kwargs: Any) -> str:
            try:
                await failing
            except KeyError as error:
                return f"caught {error}"
            return "not caught"

        async def reads_result(**kwargs: Any) -> str:
            return await succeeding

        return await connect_all(reads_failure, reads_result).asend(None)

    responses = asyncio.run(main())
    assert [response for _, response in responses] == ["caught 'gone'", "value"]


def test_bare_yields_are_resumed_until_the_receiver_finishes() -> None:
    async def yields_three_times(**kwargs: Any) -> int:
        for _ in range(3):
            await asyncio.sleep(0)
        return 3

    async def main() -> Any:
        return await connect_all(yields_three_times).asend(None)

    assert [response for _, response in asyncio.run(main())] == [3]


def test_cancelling_asend_cancels_the_receivers_that_wait() -> None:
    cleaned_up: list[str] = []

    def waiter(name: str) -> Any:
        async def receiver(**kwargs: Any) -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cleaned_up.append(name)
                raise

        return receiver

    async def main() -> None:
        signal = connect_all(waiter("first"), waiter("second"))
        sending = asyncio.ensure_future(signal.asend(None))
        await asyncio.sleep(0.01)
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending

    asyncio.run(main())
    assert sorted(cleaned_up) == ["first", "second"]


def test_a_failure_propagates_after_every_async_receiver_has_finished() -> None:
    finished: list[str] = []

    async def fails_at_once(**kwargs: Any) -> None:
        raise LookupError("first")

    async def finishes_later(**kwargs: Any) -> None:
        await asyncio.sleep(0.01)
        finished.append("later")

    async def main() -> None:
        await connect_all(fails_at_once, finishes_later).asend(None)

    with pytest.raises(LookupError, match="first"):
        asyncio.run(main())
    assert finished == ["later"]


def test_async_receivers_set_context_variables_in_a_copy_not_in_the_senders() -> None:
    seen: list[str] = []

    async def paints_red(**kwargs: Any) -> None:
        seen.append(colour.get())
        colour.set("red")
        await asyncio.sleep(0)
        seen.append(colour.get())

    async def main() -> str:
        colour.set("blue")
        await connect_all(paints_red).asend(None)
        return colour.get()

    assert asyncio.run(main()) == "blue"
    assert seen == ["blue", "red"]


def test_a_robust_receiver_that_returns_an_exception_is_not_a_failure() -> None:
    returned = ValueError("a value, not a failure")

    async def returns_an_exception(**kwargs: Any) -> ValueError:
        await asyncio.sleep(0)
        return returned

    async def main() -> Any:
        return await connect_all(returns_an_exception).asend(None)

    assert asyncio.run(main())[0][1] is returned


def test_cancelling_reaches_a_receiver_that_only_yields() -> None:
    cancelled: list[bool] = []

    def spinner() -> Any:
        async def spins(**kwargs: Any) -> None:
            try:
                while True:
                    await asyncio.sleep(0)
            except asyncio.CancelledError:
                cancelled.append(True)
                raise

        return spins

    async def main() -> None:
        signal = connect_all(spinner(), spinner())
        sending = asyncio.ensure_future(signal.asend(None))
        for _ in range(5):
            await asyncio.sleep(0)
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending

    asyncio.run(main())
    assert cancelled == [True, True]


def test_start_raises_what_the_awaitable_raised_and_returns_what_it_returned() -> None:
    from tocsin import _eager

    async def fails() -> None:
        raise OSError("disk")

    async def returns() -> str:
        return "done"

    with pytest.raises(OSError, match="disk"):
        _eager.start(fails(), contextvars.copy_context())
    assert _eager.start(returns(), contextvars.copy_context()) == (True, "done")
