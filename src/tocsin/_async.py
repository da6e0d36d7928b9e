"""Running async receivers: each in a task of its own, as Django 6.1 does.

Every async receiver of a send runs in an ``asyncio.Task`` of its own, so that
``asyncio.current_task()``, ``asyncio.timeout()``, ``TaskGroup`` and
cancellation inside a receiver act on the receiver, never on the sender. The
receivers of one send behave as the children of an ``asyncio.TaskGroup``
(Django 6.1, ticket #36714):

- they share one copy of the caller's context, start in receiver order, and
  each sees what the earlier ones set; what they set is copied back to the
  caller afterwards, also when a receiver failed or the caller was cancelled;
- a receiver's failure cancels the receivers still waiting; one failure is
  raised as itself, several (in the same pass) as an ``ExceptionGroup``;
- cancelling the caller cancels them all, waits for them, and propagates.

Where Python has eager tasks (3.12+) the tasks start eagerly: a receiver that
never waits runs to its end at once, with no loop iteration. This module
imports ``asyncio`` only when a send has async receivers to run.
"""

from __future__ import annotations

import contextvars
import functools
import sys
import types

TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable, Callable, Coroutine, Sequence
    from typing import Any

__all__: list[str] = []

_EAGER_TASKS = sys.version_info >= (3, 12)
_MISSING = object()
_CoroutineType = types.CoroutineType


def task_maker(
    loop: asyncio.AbstractEventLoop,
) -> Callable[..., asyncio.Task[Any]]:
    """How to make tasks on ``loop``: ``make(coroutine, context=context)``.

    Eager where Python has eager tasks, unless the loop has a task factory
    of its own (which is then respected, as ``TaskGroup`` respects it).
    """
    if _EAGER_TASKS and loop.get_task_factory() is None:
        import asyncio

        return functools.partial(asyncio.Task, loop=loop, eager_start=True)  # type: ignore[call-arg]
    return loop.create_task


def start_task(
    coroutine: Coroutine[Any, Any, Any],
    context: contextvars.Context,
    loop: asyncio.AbstractEventLoop,
) -> asyncio.Task[Any]:
    """A task for ``coroutine`` in ``context``, started eagerly where Python can."""
    return task_maker(loop)(coroutine, context=context)


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


class Caught:
    """The result of a receiver whose ``Exception`` was caught (see :func:`caught`)."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


async def caught(awaitable: Awaitable[Any]) -> Any:
    """Await ``awaitable``; an ``Exception`` it raises becomes a :class:`Caught`.

    For one robust receiver among receivers whose failures abort the send.
    """
    try:
        return await awaitable
    except Exception as error:
        return Caught(error)


class _Group:
    """The tasks of one send, watched as a ``TaskGroup`` watches its children."""

    __slots__ = ("errors", "pending", "robust", "tasks", "wake")

    def __init__(self, robust: bool) -> None:
        self.robust = robust
        self.tasks: list[asyncio.Task[Any]] = []
        self.errors: list[BaseException] = []
        self.pending = 0
        self.wake: asyncio.Future[None] | None = None

    def watch(self, task: asyncio.Task[Any]) -> None:
        self.pending += 1
        task.add_done_callback(self.done)

    def done(self, task: asyncio.Task[Any]) -> None:
        self.pending -= 1
        self.check(task)
        if self.pending == 0 and self.wake is not None and not self.wake.done():
            self.wake.set_result(None)

    def check(self, task: asyncio.Task[Any]) -> None:
        """Record a failure of a finished task, and abort the others."""
        if task.cancelled():
            return
        error = task.exception()
        if error is None or (self.robust and isinstance(error, Exception)):
            return
        self.errors.append(error)
        for other in self.tasks:
            other.cancel()

    def raise_errors(self) -> None:
        errors = self.errors
        for error in errors:
            if not isinstance(error, Exception):
                raise error  # KeyboardInterrupt or SystemExit, as TaskGroup does
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ExceptionGroup(
                "several async receivers failed in one send",
                [error for error in errors if isinstance(error, Exception)],
            )


async def run_all(
    awaitables: Sequence[Awaitable[Any]], robust: bool
) -> tuple[list[Any], list[int]]:
    """Await each awaitable in a task of its own, as the children of a TaskGroup.

    Args:
        awaitables: What the async receivers returned, in receiver order.
        robust: An ``Exception`` that a receiver raises is its result, instead
            of a failure of the whole send (``send_robust``, ``asend_robust``).

    Returns:
        The results in receiver order (``None`` for a receiver that was
        cancelled), and the indices of the results that are caught exceptions.

    Raises:
        Exception: The one failure; ``ExceptionGroup``: several failures.
        BaseException: ``KeyboardInterrupt`` or ``SystemExit`` from a
            receiver, or the caller's cancellation once every receiver ended.
    """
    import asyncio

    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    group = _Group(robust)
    tasks = group.tasks
    try:
        make = task_maker(loop)
        for index, awaitable in enumerate(awaitables):
            if type(awaitable) is not _CoroutineType:
                awaitable = _awaited(awaitable)
            try:
                tasks.append(make(awaitable, context=context))
            except BaseException as error:
                # KeyboardInterrupt or SystemExit from a receiver that started
                # eagerly: asyncio lets them out of the new task at once.
                # Abort as a TaskGroup does: the receivers after it never
                # start, those already started are cancelled and awaited.
                group.errors.append(error)
                for unstarted in awaitables[index + 1 :]:
                    getattr(unstarted, "close", _nothing)()
                for task in tasks:
                    task.cancel()
                break
        # Every receiver has started. Those that already finished are checked
        # in receiver order, as failures of one pass; the others are watched.
        for task in tasks:
            if task.done():
                group.check(task)
            else:
                group.watch(task)
        cancelled: BaseException | None = None
        while group.pending:
            group.wake = loop.create_future()
            try:
                await group.wake
            except asyncio.CancelledError as error:
                cancelled = error
                for task in tasks:
                    task.cancel()
        group.raise_errors()
        if cancelled is not None:
            raise cancelled
        return _results(tasks)
    finally:
        copy_back(context)


def close_all(awaitables: Sequence[Awaitable[Any]]) -> None:
    """Close coroutines that will never be awaited, so that none warns."""
    for awaitable in awaitables:
        close = getattr(awaitable, "close", None)
        if close is not None:
            close()


def _results(tasks: list[asyncio.Task[Any]]) -> tuple[list[Any], list[int]]:
    results: list[Any] = []
    failed: list[int] = []
    for index, task in enumerate(tasks):
        if task.cancelled():
            results.append(None)
            continue
        result = task.exception()  # a robust failure: raised errors are gone
        if result is None:
            result = task.result()
            if type(result) is not Caught:
                results.append(result)
                continue
            result = result.error
        results.append(result)
        failed.append(index)
    return results, failed


def _nothing() -> None:
    return None


def copy_back(context: contextvars.Context) -> None:
    """Set in the current context every variable whose value ``context`` changed.

    A variable that ``context`` does not hold (never set, or reset to unset)
    is left alone, as in Django.
    """
    for variable, value in context.items():
        if variable.get(_MISSING) is not value:
            variable.set(value)


# Synchronous code can run inside an event loop's task and still be able to
# await on that loop: SQLAlchemy's AsyncSession runs flushes (and so model
# signals) in a greenlet that way. An integration that knows such a context
# registers a bridge: a function that returns how to await there, or None
# elsewhere.
_bridges: list[Callable[[], Callable[[Any], Any] | None]] = []


def register_bridge(bridge: Callable[[], Callable[[Any], Any] | None]) -> None:
    """Let synchronous code that ``bridge`` recognises await on the running loop."""
    if bridge not in _bridges:
        _bridges.append(bridge)


class BlockingCallError(RuntimeError):
    """Synchronous code tried to await async receivers on a running loop's thread."""


def run_blocking(awaitable: Awaitable[Any], what: str) -> Any:
    """Run ``awaitable`` to its end from synchronous code, and return its result.

    Where a registered bridge can await on the running loop, it does.
    Otherwise, with no loop running in this thread, it runs on a new event
    loop, in a copy of the caller's context whose changes are copied back;
    tasks it leaves behind are cancelled (their cleanup runs) before the loop
    closes, as ``asyncio.run()`` does.

    Raises:
        BlockingCallError: This thread runs an event loop that no bridge can
            await on: waiting here would block every other task of that loop,
            so ``what`` (the caller's name, for the message) must be awaited.
    """
    coroutine = awaitable if type(awaitable) is _CoroutineType else _awaited(awaitable)
    for bridge in _bridges:
        await_here = bridge()
        if await_here is not None:
            return await_here(coroutine)
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        coroutine.close()
        raise BlockingCallError(
            f"{what} has async receivers to run, but it was called from a thread "
            "that is running an event loop: waiting for them here would block "
            "that loop. Await the async form instead (await signal.asend(...) "
            "or asend_robust), or run the synchronous code in a worker thread "
            "(asyncio.to_thread)."
        )
    context = contextvars.copy_context()
    loop = asyncio.new_event_loop()
    try:
        task = loop.create_task(coroutine, context=context)
        return loop.run_until_complete(task)
    finally:
        try:
            pending = asyncio.all_tasks(loop)
            for leftover in pending:
                leftover.cancel()
            if pending:
                loop.run_until_complete(
                    asyncio.gather(*pending, return_exceptions=True)
                )
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
            copy_back(context)
