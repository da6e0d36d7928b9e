"""Run code after the current transaction commits, whatever the database layer.

>>> from tocsin.transaction import on_commit
>>> on_commit(lambda: print("no transaction: runs at once"))
no transaction: runs at once

A *unit of work* is whatever owns a transaction: a SQLAlchemy ``Session``
once :func:`tocsin.integrations.sqlalchemy.install` has run, or any object
with a ``defer(callback)`` method (see :class:`UnitOfWork`). :func:`on_commit` finds
it in this order:

1. the ``using=`` argument;
2. the unit of work of the enclosing :func:`unit_of_work` block (the SQLAlchemy
   integration opens one around every model signal that it sends, so receivers
   and the custom signals they send find their session without being told);
3. none: the function runs at once, as Django's ``on_commit`` does outside a
   transaction.

Receivers connected with ``on_commit=True`` (or ``on_commit="robust"``) are
deferred the same way: the send queues them, and they run with the arguments
of that send once the outermost transaction commits. A rolled-back
transaction, or a rolled-back savepoint, drops what was queued inside it.

This module needs only the standard library.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

from . import _async, _options, _refs
from ._signal import Signal

__all__ = [
    "Callback",
    "UnitOfWork",
    "as_unit_of_work",
    "captured_on_commit",
    "current_unit_of_work",
    "on_commit",
    "register_unit_of_work_adapter",
    "run_callbacks",
    "unit_of_work",
]

logger = logging.getLogger("tocsin")


class Callback:
    """One function waiting for a commit, with its error handling.

    Calling it calls the function. :func:`captured_on_commit` yields these.

    .. versionadded:: 0.1
    """

    __slots__ = ("func", "robust")

    def __init__(self, func: Callable[[], Any], robust: bool = False) -> None:
        self.func = func
        self.robust = robust
        """``True``: an exception is logged and the next callback still runs."""

    def __call__(self) -> Any:
        return self.func()

    def __repr__(self) -> str:
        mode = " robust" if self.robust else ""
        return f"<tocsin.transaction.Callback{mode} {_describe(self.func)}>"


@runtime_checkable
class UnitOfWork(Protocol):
    """What :func:`on_commit` needs from the owner of a transaction.

    Implement it to give on-commit behaviour to another database layer: queue
    the callback on the innermost open transaction or savepoint; hand the
    queue of a released savepoint to its parent; drop the queue of a
    rolled-back transaction or savepoint; once the outermost transaction
    commits, pass its queue to :func:`run_callbacks`. With no transaction
    open, run the callback at once (``run_callbacks([callback])``).

    .. versionadded:: 0.1
    """

    def defer(self, callback: Callback) -> None:
        """Queue ``callback`` until the outermost transaction commits."""


_current: contextvars.ContextVar[UnitOfWork | None] = contextvars.ContextVar(
    "tocsin_unit_of_work", default=None
)
_adapters: list[tuple[type, Callable[[Any], UnitOfWork]]] = []
# The list of the innermost captured_on_commit() block of this context. A
# context variable, not a global: the capture belongs to the code that opened
# it (and the tasks it starts), never to another thread's real commit.
_capture: contextvars.ContextVar[list[Callback] | None] = contextvars.ContextVar(
    "tocsin_captured_on_commit", default=None
)


def register_unit_of_work_adapter(
    cls: type, adapter: Callable[[Any], UnitOfWork]
) -> Callable[[], None]:
    """Let :func:`on_commit` and :func:`unit_of_work` accept instances of ``cls``.

    This is how a database layer plugs into this module: the SQLAlchemy
    integration's ``install()`` registers ``Session`` and ``AsyncSession``,
    and while it sends model signals it makes the session the current unit
    of work with :func:`unit_of_work`.

    Returns:
        A function that removes this adapter again (calling it twice does
        nothing); the SQLAlchemy integration's ``uninstall()`` calls it.

    .. versionadded:: 0.1
    .. versionchanged:: 0.1 returns the function that unregisters it.
    """
    entry = (cls, adapter)
    _adapters.append(entry)

    def unregister() -> None:
        if entry in _adapters:
            _adapters.remove(entry)

    return unregister


def as_unit_of_work(scope: object) -> UnitOfWork:
    """Turn ``scope`` (a session, or a :class:`UnitOfWork`) into a unit of work.

    Raises:
        TypeError: Nothing knows how to find a transaction in ``scope``.

    .. versionadded:: 0.1
    """
    for cls, adapter in reversed(_adapters):
        if isinstance(scope, cls):
            unit: UnitOfWork = adapter(scope)
            return unit
    if isinstance(scope, UnitOfWork):
        return scope
    if isinstance(scope, str):
        raise TypeError(
            f"on_commit(using={scope!r}): tocsin has no database aliases. Pass "
            "the session (or unit of work) whose transaction the function waits for."
        )
    raise TypeError(
        f"Cannot find a transaction in {scope!r}. Pass a SQLAlchemy Session or "
        "AsyncSession (once tocsin.integrations.sqlalchemy.install() has run), or "
        "an object with a defer(callback) method (see tocsin.transaction.UnitOfWork)."
    )


def current_unit_of_work() -> UnitOfWork | None:
    """The unit of work of the enclosing :func:`unit_of_work` block, if any.

    .. versionadded:: 0.1
    """
    return _current.get()


@contextmanager
def unit_of_work(scope: object) -> Iterator[UnitOfWork]:
    """Make ``scope`` the transaction that :func:`on_commit` waits for, in the block.

    Use it around code that sends custom signals whose receivers are
    connected with ``on_commit=True``::

        with unit_of_work(session):
            order_placed.send(sender=Order, order=order)
        session.commit()   # the deferred receivers run here

    The SQLAlchemy integration does this itself while it sends model signals.
    Blocks nest; the innermost wins.

    Args:
        scope: A SQLAlchemy ``Session`` or ``AsyncSession`` (once
            :func:`tocsin.integrations.sqlalchemy.install` has run), or a
            :class:`UnitOfWork`.

    Raises:
        TypeError: ``scope`` is neither.

    .. versionadded:: 0.1
    """
    unit = as_unit_of_work(scope)
    token = _current.set(unit)
    try:
        yield unit
    finally:
        _current.reset(token)


def on_commit(
    func: Callable[[], Any], using: object = None, robust: bool = False
) -> None:
    """Call ``func()`` once the outermost transaction commits.

    Callbacks run in the order they were registered. A rollback, of the whole
    transaction or of the savepoint that was innermost when ``func`` was
    registered, drops ``func``; releasing a savepoint hands its callbacks to the
    enclosing transaction, and nothing runs before the outermost commit. With
    no transaction, ``func`` runs at once. An ``async`` function is awaited:
    on the session's event loop when an ``AsyncSession`` commits, otherwise to
    completion on a fresh event loop. With no transaction, on a thread that is
    running an event loop, an ``async`` function raises ``RuntimeError``:
    waiting for it there would block that loop (await it instead).

    Args:
        func: A callable that takes no arguments (use ``functools.partial``).
        using: The session (or :class:`UnitOfWork`) whose transaction to wait
            for; by default the one of the enclosing :func:`unit_of_work`
            block, such as the session of the model signal being handled.
        robust: If ``func`` raises, log the error to the ``tocsin`` logger and
            go on with the next callback. Otherwise the exception propagates
            out of the ``commit()`` call (the data is committed already) and
            the remaining callbacks of that commit are dropped, as in Django.

    Raises:
        TypeError: ``func`` is not callable, or ``using`` is not a session.
        RuntimeError: ``func`` is async, runs at once, and this thread runs an
            event loop.

    .. versionadded:: 0.1
    """
    if not callable(func):
        raise TypeError(f"on_commit() needs a callable, not {func!r}.")
    callback = Callback(func, robust)
    captured = _capture.get()
    if captured is not None:
        captured.append(callback)
        return
    unit = _current.get() if using is None else as_unit_of_work(using)
    if unit is None:
        run_callbacks([callback])
    else:
        unit.defer(callback)


def run_callbacks(callbacks: Iterable[Callback]) -> None:
    """Run committed callbacks in order; for units of work to call.

    The awaitable that an ``async`` callback returns is awaited to completion:
    on the session's own event loop inside an ``AsyncSession`` (the SQLAlchemy
    integration arranges it), otherwise on a fresh event loop.

    Args:
        callbacks: What was queued on the committed transaction.

    Raises:
        Exception: The first exception of a callback that is not robust; the
            callbacks after it do not run.

    .. versionadded:: 0.1
    """
    for callback in callbacks:
        try:
            result = callback.func()
            if inspect.isawaitable(result):
                _async.run_blocking(result, "An on_commit callback")
        except Exception as error:
            if not callback.robust:
                raise
            logger.error(
                "Error calling %s in an on_commit callback (%s)",
                _describe(callback.func),
                error,
                exc_info=error,
            )


@contextmanager
def captured_on_commit(*, execute: bool = False) -> Iterator[list[Callback]]:
    """Collect, instead of deferring, every on-commit callback registered in the block.

    Tests that run inside an outer transaction never see a real commit (or,
    with a session joined through ``join_transaction_mode="create_savepoint"``,
    see ``session.commit()`` run callbacks although the outer rollback then
    discards the data). In this block, :func:`on_commit` and receivers
    connected with ``on_commit=True`` append a :class:`Callback` to the
    yielded list instead, whatever the transaction does, so that the test can
    inspect them and call them.

    The capture belongs to the context that opens the block: the asyncio
    tasks started inside it are captured too, while other threads (a server
    or worker thread committing for real meanwhile) keep running their
    callbacks on commit, as Django's capture belongs to one connection. A
    ``threading.Thread`` started inside the block starts with a context of
    its own, so it is not captured either (``asyncio.to_thread`` copies the
    context, so it is). Nested blocks collect into the innermost one.

    Args:
        execute: Run the collected callbacks, in order, when the block exits
            without an exception, including those that they register in turn
            (as Django's ``captureOnCommitCallbacks(execute=True)``).

    .. versionadded:: 0.1
    """
    captured: list[Callback] = []
    token = _capture.set(captured)
    try:
        yield captured
        if execute:
            done = 0
            while done < len(captured):
                run_callbacks([captured[done]])
                done += 1
    finally:
        _capture.reset(token)


# -- the connect option ---------------------------------------------------------


class _OnCommitOption(_options.ConnectOption):
    """``connect(..., on_commit=True)``: defer the receiver until the commit."""

    name = "on_commit"

    def validate(
        self,
        value: Any,
        receiver: Callable[..., Any],
        *,
        signal: Signal,
        dispatch_uid: Hashable | None,
    ) -> Any:
        if value is False or value is None:
            return None
        if value is True or (isinstance(value, str) and value == "robust"):
            return value
        raise ValueError(
            f"on_commit must be True, False or 'robust', not {value!r}: True "
            "defers the receiver until the transaction commits, 'robust' also "
            "logs its exceptions instead of raising them."
        )

    def deliver(
        self,
        value: Any,
        receiver: Callable[..., Any],
        signal: Signal,
        sender: Any,
        named: dict[str, Any],
        robust: bool,
    ) -> str:
        robust = robust or value == "robust"
        if _capture.get() is not None or _current.get() is not None:
            deferred = _ReceiverCall(receiver, signal=signal, sender=sender, **named)
            deferred.probing = True
            try:
                on_commit(deferred, robust=robust)
            finally:
                deferred.probing = False
            if not deferred.ran_at_once:
                return _options.DEFERRED
            # The unit of work has no transaction open (a session between
            # transactions): it would run the receiver at once, from sync
            # code, which cannot await an async receiver on a running loop.
        # No transaction: the receiver runs now, where the send runs the
        # others (an async one on the caller's loop, under asend).
        return _options.NOW_ROBUST if robust else _options.NOW


class _ReceiverCall(functools.partial[Any]):
    """A deferred call of a receiver, which notices when its unit of work runs
    it at once instead of deferring it (see ``_OnCommitOption.deliver``)."""

    probing = False
    ran_at_once = False

    def __call__(self, /, *args: Any, **keywords: Any) -> Any:
        if self.probing:
            self.ran_at_once = True
            return None
        return super().__call__(*args, **keywords)


def _describe(func: Callable[..., Any]) -> str:
    if isinstance(func, functools.partial):
        return _refs.describe(func.func)
    return _refs.describe(func)


_options.register(_OnCommitOption())
