"""Start awaitables eagerly: run them at once, and give a task only to those that wait.

Most async receivers finish without ever waiting for anything. Wrapping each in
a task, as ``asyncio.gather`` does, costs several microseconds per receiver for
nothing; awaiting them one after another, as blinker does, gives up
concurrency. tocsin runs the receivers at once, in order, like the eager tasks
of Python 3.12, and only a receiver that suspends is resumed later, in a task,
concurrently with the others.

:func:`start_all` awaits the receivers one after another inside a single
generator (``yield from``, so finishing a receiver costs no exception). When
one suspends, the generator is set aside to be resumed, and a new generator
carries on with the receivers after it. :func:`resume` drives a suspended
generator to its end exactly as a task would: it waits for the future that was
yielded, then resumes the generator so that the receiver itself reads the
future's result; if the task running :func:`resume` is cancelled, the
cancellation is passed on to the receiver.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import contextvars
    from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable
    from typing import Any

    Steps = Generator[Any, None, Any]

__all__: list[str] = []


def start_all(
    receivers: Iterable[tuple[int, Callable[..., Awaitable[Any]]]],
    kwargs: dict[str, Any],
    results: list[Any],
    context: contextvars.Context,
) -> tuple[list[tuple[int, Coroutine[Any, Any, Any]]], list[tuple[int, Exception]]]:
    """Call each receiver with ``kwargs``, in order, and run what it returns
    until it finishes or waits.

    A finished receiver's result is stored at its index in ``results``, now
    or, for one that waits, when it finishes later.

    Returns:
        ``waiting``: ``(index, rest)`` for each receiver that waits, where
        ``rest`` is a coroutine that finishes it (await it, or make it a
        task); and ``failures``: ``(index, exception)`` for each that raised.
    """
    remaining = iter(receivers)
    current = [-1]

    def one_after_another() -> Steps:
        for index, receiver in remaining:
            current[0] = index
            results[index] = yield from receiver(**kwargs).__await__()

    waiting: list[tuple[int, Coroutine[Any, Any, Any]]] = []
    failures: list[tuple[int, Exception]] = []
    while True:
        steps = one_after_another()
        try:
            waiting_for = context.run(steps.send, None)
        except StopIteration:
            return waiting, failures
        except Exception as error:
            failures.append((current[0], error))
        else:
            waiting.append((current[0], resume(steps, waiting_for, context)))


async def resume(steps: Steps, waiting_for: Any, context: contextvars.Context) -> Any:
    """Drive ``steps``, suspended on ``waiting_for``, to its end, as a task would."""
    import asyncio

    while True:
        thrown: BaseException | None = None
        try:
            if waiting_for is None:  # a bare yield, as in asyncio.sleep(0)
                await asyncio.sleep(0)
            else:
                # Acknowledge the future as a task does (it was yielded with
                # this flag set), then wait for it in this coroutine's task.
                waiting_for._asyncio_future_blocking = False
                await waiting_for
        except BaseException as error:
            # A future that failed is for the awaitable to read. Anything
            # else was thrown into this coroutine (a cancellation): pass it on.
            if waiting_for is None or not waiting_for.done():
                thrown = error
        try:
            if thrown is None:
                waiting_for = context.run(steps.send, None)
            else:
                waiting_for = context.run(steps.throw, thrown)
        except StopIteration as done:
            return done.value


def start(awaitable: Awaitable[Any], context: contextvars.Context) -> tuple[bool, Any]:
    """Run ``awaitable`` until it finishes or waits.

    Returns:
        ``(True, result)`` if it finished, or ``(False, rest)`` where ``rest``
        is a coroutine that finishes it.

    Raises:
        Exception: whatever the awaitable raised.
    """
    results: list[Any] = [None]
    waiting, failures = start_all([(0, lambda: awaitable)], {}, results, context)
    if failures:
        raise failures[0][1]
    if waiting:
        return False, waiting[0][1]
    return True, results[0]
