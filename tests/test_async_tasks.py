"""Every async receiver runs in an asyncio task of its own.

So ``current_task()``, ``timeout()``, ``TaskGroup``, ``wait_for`` and
cancellation inside a receiver act on that receiver, never on the sender or on
the other receivers, whichever of the four sends delivers it. On Python 3.12+
the tasks start eagerly: a receiver that never waits is done before the send
first yields to the loop.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from support import deliver
from tocsin import Signal

MODES = ["send", "send_robust", "asend", "asend_robust"]
EAGER = sys.version_info >= (3, 12)


def signal_with(*receivers: Callable[..., Coroutine[Any, Any, Any]]) -> Signal:
    signal = Signal()
    for receiver in receivers:
        signal.connect(receiver, weak=False)
    return signal


async def sibling(**kwargs: Any) -> str:
    """A receiver that outlives the others' timeouts: nothing may cancel it."""
    await asyncio.sleep(0.05)
    return "sibling finished"


# -- current_task() ------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_each_async_receiver_runs_in_a_task_of_its_own_that_runs_its_coroutine(
    mode: str,
) -> None:
    tasks: list[asyncio.Task[Any]] = []
    codes: list[Any] = []

    async def first(**kwargs: Any) -> str:
        task = asyncio.current_task()
        assert task is not None
        tasks.append(task)
        codes.append(task.get_coro().cr_code)  # type: ignore[union-attr]
        await asyncio.sleep(0)
        return "first"

    async def second(**kwargs: Any) -> str:
        task = asyncio.current_task()
        assert task is not None
        tasks.append(task)
        codes.append(task.get_coro().cr_code)  # type: ignore[union-attr]
        return "second"

    signal = signal_with(first, second)
    callers: list[asyncio.Task[Any] | None] = []

    def record_caller(**kwargs: Any) -> None:
        # A sync receiver runs in the sender's own frame: under asend, in the
        # sender's task.
        try:
            callers.append(asyncio.current_task())
        except RuntimeError:  # no loop: send() from sync code
            callers.append(None)

    signal.connect(record_caller, weak=False)

    responses = deliver(mode, signal)

    assert [response for _, response in responses] == [None, "first", "second"]
    assert len(set(tasks)) == 2
    # Each task is the receiver's own coroutine, not a wrapper or the sender.
    assert codes == [first.__code__, second.__code__]
    assert all(task.done() for task in tasks)
    if mode.startswith("a"):
        assert callers[0] is not None
        assert callers[0] not in tasks
    else:
        assert callers == [None]


# -- asyncio.timeout() ------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_timeout_inside_a_receiver_times_out_only_that_receiver(mode: str) -> None:
    async def impatient(**kwargs: Any) -> str:
        try:
            async with asyncio.timeout(0.01):
                await asyncio.sleep(10)
        except TimeoutError:
            return "timed out"
        return "slept"

    signal = signal_with(impatient, sibling)

    responses = deliver(mode, signal)

    assert responses == [(impatient, "timed out"), (sibling, "sibling finished")]


@pytest.mark.parametrize("mode", MODES)
def test_a_timeout_that_expires_before_a_receiver_first_waits_is_the_receivers(
    mode: str,
) -> None:
    # timeout(0) expires at the receiver's first wait, which on 3.12+ happens
    # while the task is starting eagerly, inside the sender's send call.
    async def expired(**kwargs: Any) -> str:
        try:
            async with asyncio.timeout(0):
                await asyncio.sleep(0)
        except TimeoutError:
            return "timed out"
        return "not timed out"

    signal = signal_with(expired, sibling)

    assert deliver(mode, signal) == [
        (expired, "timed out"),
        (sibling, "sibling finished"),
    ]


@pytest.mark.parametrize("mode", MODES)
def test_an_uncaught_timeout_in_a_receiver_is_that_receivers_error(mode: str) -> None:
    async def times_out(**kwargs: Any) -> None:
        async with asyncio.timeout(0.01):
            await asyncio.sleep(10)

    signal = signal_with(times_out)

    if mode.endswith("robust"):
        [(_, response)] = deliver(mode, signal)
        assert isinstance(response, TimeoutError)
    else:
        with pytest.raises(TimeoutError):
            deliver(mode, signal)


# -- asyncio.wait_for() ----------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_wait_for_inside_a_receiver_times_out_only_that_receiver(mode: str) -> None:
    async def waits(**kwargs: Any) -> tuple[str, str]:
        quick = await asyncio.wait_for(asyncio.sleep(0, "in time"), timeout=5)
        try:
            await asyncio.wait_for(asyncio.sleep(10), timeout=0.01)
        except TimeoutError:
            return quick, "timed out"
        return quick, "slept"

    signal = signal_with(waits, sibling)

    assert deliver(mode, signal) == [
        (waits, ("in time", "timed out")),
        (sibling, "sibling finished"),
    ]


# -- asyncio.TaskGroup() ---------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_task_group_whose_child_fails_gives_the_receiver_an_exception_group(
    mode: str,
) -> None:
    cleanups: list[str] = []

    async def child_fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("child failed")

    async def child_waits() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            cleanups.append("other child cleaned up")

    async def grouping(**kwargs: Any) -> list[str]:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(child_waits())
                group.create_task(child_fails())
        except ExceptionGroup as caught:
            return [str(error) for error in caught.exceptions]
        return []

    signal = signal_with(grouping, sibling)

    responses = deliver(mode, signal)

    assert responses == [(grouping, ["child failed"]), (sibling, "sibling finished")]
    assert cleanups == ["other child cleaned up"]


# -- cancellation scopes --------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_receiver_that_cancels_its_own_task_cancels_only_itself(mode: str) -> None:
    cleanups: list[str] = []

    async def cancels_itself(**kwargs: Any) -> str:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        try:
            await asyncio.sleep(0)
        finally:
            cleanups.append("cancelled receiver cleaned up")
        return "not cancelled"

    signal = signal_with(cancels_itself, sibling)

    responses = deliver(mode, signal)

    # A cancelled receiver has no response, as a cancelled TaskGroup child.
    assert responses == [(cancels_itself, None), (sibling, "sibling finished")]
    assert cleanups == ["cancelled receiver cleaned up"]


@pytest.mark.parametrize("mode", MODES)
def test_a_receiver_can_uncancel_and_carry_on(mode: str) -> None:
    async def shrugs(**kwargs: Any) -> str:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            task.uncancel()
        await asyncio.sleep(0)
        return "carried on"

    signal = signal_with(shrugs, sibling)

    assert deliver(mode, signal) == [
        (shrugs, "carried on"),
        (sibling, "sibling finished"),
    ]


# -- eager start (3.12+) and plain tasks (3.11) ------------------------------------------


def interleaving_of_a_send(mode: str) -> list[str]:
    """What ran, in order, when a task sends while another task is ready to run."""
    events: list[str] = []

    async def never_waits(**kwargs: Any) -> str:
        task = asyncio.current_task()
        assert task is not None
        events.append(f"receiver {kwargs['n']}")
        return "done"

    signal = Signal()
    signal.connect(never_waits, weak=False)
    signal.connect(never_waits, weak=False, dispatch_uid="twice")

    async def other() -> None:
        events.append("other task")

    async def caller() -> None:
        ready = asyncio.create_task(other())  # ready to run at the next yield
        responses = await getattr(signal, mode)(None, n=1)
        events.append("send returned")
        assert [response for _, response in responses] == ["done", "done"]
        await ready

    asyncio.run(caller())
    return events


@pytest.mark.skipif(not EAGER, reason="eager tasks exist from Python 3.12")
@pytest.mark.parametrize("mode", ["asend", "asend_robust"])
def test_on_eager_pythons_receivers_that_never_wait_finish_before_the_send_yields(
    mode: str,
) -> None:
    # The other task was ready before the send began: had the send yielded to
    # the loop even once, it would have run before "send returned".
    assert interleaving_of_a_send(mode) == [
        "receiver 1",
        "receiver 1",
        "send returned",
        "other task",
    ]


@pytest.mark.skipif(EAGER, reason="Python 3.11 has no eager tasks")
@pytest.mark.parametrize("mode", ["asend", "asend_robust"])
def test_on_python_3_11_receivers_run_as_plain_tasks_scheduled_after_ready_ones(
    mode: str,
) -> None:
    assert interleaving_of_a_send(mode) == [
        "other task",
        "receiver 1",
        "receiver 1",
        "send returned",
    ]


def test_a_receiver_starts_eagerly_on_3_12_and_later_and_runs_only_to_its_first_wait() -> (
    None
):
    events: list[str] = []

    async def waits_once(**kwargs: Any) -> None:
        events.append("receiver before its wait")
        await asyncio.sleep(0)
        events.append("receiver after its wait")

    signal = signal_with(waits_once)

    async def other() -> None:
        events.append("other task")

    async def caller() -> None:
        ready = asyncio.create_task(other())
        await signal.asend(None)
        events.append("send returned")
        await ready

    asyncio.run(caller())
    if EAGER:
        expected = ["receiver before its wait", "other task"]
    else:
        expected = ["other task", "receiver before its wait"]
    assert events == [*expected, "receiver after its wait", "send returned"]


@pytest.mark.parametrize("mode", ["asend", "asend_robust"])
def test_a_loop_with_a_task_factory_gets_its_receivers_tasks_from_it(
    mode: str,
) -> None:
    made: list[Any] = []

    def factory(
        loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any
    ) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop, **kwargs)
        made.append(task)
        return task

    async def records_task(**kwargs: Any) -> asyncio.Task[Any] | None:
        await asyncio.sleep(0)
        return asyncio.current_task()

    signal = signal_with(records_task)

    async def caller() -> Any:
        asyncio.get_running_loop().set_task_factory(factory)
        return await getattr(signal, mode)(None)

    [(_, task)] = asyncio.run(caller())
    assert task in made
