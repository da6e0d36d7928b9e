"""The observation hook: what was sent, which receivers ran, and how long they took.

An :class:`Observer` added with :func:`observe` hears four callbacks for every
dispatch in the process: ``send_started``, then ``receiver_started`` and
``receiver_finished`` around each receiver, then ``send_finished``. They get
read-only records: a :class:`Dispatch` per send and a :class:`ReceiverCall`
per receiver.

How it is built, for a reader of this file:

- With no observer, a send pays for one truthiness test: ``Signal`` keeps a
  module global that mirrors :data:`_observers` (rebound here on every change,
  through :func:`mirror`) and tests it before anything else, so that a send
  that nobody listens to is still seen when observed. When it is true, the
  send takes the functions of this module instead of its own: a separate,
  slower path that calls one receiver at a time between the callbacks. The
  unobserved path is untouched.
- Observers are kept in a tuple replaced on every change (copy-on-write). A
  dispatch takes the tuple once, when it starts, and reports to those
  observers to its end: an observer removed in the middle of a send still
  hears the end of what it saw begin; one added then hears the next send.
- The current receiver call is known only on the observed path, so that a
  send made by a receiver knows its ``parent`` and ``depth``: a context
  variable for a synchronous call (nothing else runs while it does), and a
  map from task to call for an async one. The async receivers of a send share
  one context (Django's semantics, which observing must not change), so a
  context variable set by one would be seen by the others while it waits.
- A receiver deferred by a connect option (``on_commit=True``) is reported
  twice: when the send schedules it (a call whose ``deferred`` names the
  option) and when it runs (a dispatch of its own whose ``mode`` names the
  option and whose ``origin`` is the scheduling dispatch). The option is
  handed a stand-in for the receiver that reports its run. A durable
  receiver's run, in a worker process, is a dispatch of its own whose
  ``mode`` is ``"durable"``, without an origin (:func:`run_elsewhere`).
- An exception raised by an observer is logged to ``tocsin.observe`` at
  WARNING and dropped: observing never changes what a send does.
- A record holds a weakly connected receiver only through its weak
  reference, so observing never keeps a receiver alive.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import threading
import time

from . import _async, _dispatch, _options, _refs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    from typing import Any

    from ._dispatch import Responses
    from ._refs import Record
    from ._signal import ReceiverInfo, Signal

    Calls = list[tuple["Record", Callable[..., Any], bool]]

__all__ = ["Dispatch", "Observer", "ReceiverCall", "observe", "observing"]

_observers: tuple[Observer, ...] = ()
_lock = threading.Lock()
_mirrors: list[Callable[[tuple[Observer, ...]], None]] = []
_current: contextvars.ContextVar[ReceiverCall | None] = contextvars.ContextVar(
    "tocsin_current_receiver_call", default=None
)
_next_id = itertools.count(1).__next__
_clock = time.perf_counter_ns
_CALLBACKS = ("send_started", "receiver_started", "receiver_finished", "send_finished")


class Observer:
    """Subclass it and override the callbacks you need; the others do nothing.

    The callbacks run in the thread (and, for async receivers, the task) that
    runs the receiver, synchronously: keep them short. An exception they raise
    is logged to ``tocsin.observe`` and never reaches the sender.

    .. versionadded:: 0.1
    """

    def send_started(self, dispatch: Dispatch) -> None:
        """A send began, before its first receiver (also when it has none)."""

    def receiver_started(self, call: ReceiverCall) -> None:
        """A receiver is about to be called (or scheduled, see ``call.deferred``)."""

    def receiver_finished(self, call: ReceiverCall) -> None:
        """A receiver returned or raised: ``call.result`` or ``call.exception``."""

    def send_finished(self, dispatch: Dispatch) -> None:
        """The send ended, after its last receiver (``dispatch.exception`` if it
        ended by an exception)."""


def _read(name: str) -> Any:
    """A read-only property for the slot ``name``."""

    def get(self: Any) -> Any:
        return getattr(self, name)

    return property(get)


class Dispatch:
    """One send, as observers see it.

    Attributes (read-only):
        id: A number unique in this process, increasing.
        signal: The :class:`~tocsin.Signal` sent.
        sender: The sender.
        kwargs: The named arguments of the send (a dict: do not change it).
        names: Their names, a tuple.
        mode: ``"send"``, ``"send_robust"``, ``"asend"``, ``"asend_robust"``,
            or the connect option that deferred the receiver this dispatch
            runs (``"on_commit"``, or ``"durable"`` in a durable receiver's
            worker).
        parent: The :class:`ReceiverCall` during which this send was made,
            or ``None`` for a send made outside any observed receiver.
        depth: 0 for a send made outside any receiver; ``parent.depth + 1``.
        origin: For a deferred receiver's run, the dispatch that scheduled it.
        start_ns, end_ns, duration_ns: From ``time.perf_counter_ns()``;
            ``end_ns`` and ``duration_ns`` are ``None`` until the send ends.
        calls: The receiver calls made so far, in the order they started.
        exception: What ended the send, if it did not return.

    .. versionadded:: 0.1
    """

    __slots__ = (
        "__weakref__",
        "_calls",
        "_depth",
        "_end_ns",
        "_exception",
        "_id",
        "_kwargs",
        "_mode",
        "_origin",
        "_parent",
        "_sender",
        "_signal",
        "_start_ns",
    )

    id: int = _read("_id")
    signal: Signal = _read("_signal")
    sender: Any = _read("_sender")
    kwargs: dict[str, Any] = _read("_kwargs")
    mode: str = _read("_mode")
    parent: ReceiverCall | None = _read("_parent")
    depth: int = _read("_depth")
    origin: Dispatch | None = _read("_origin")
    start_ns: int = _read("_start_ns")
    end_ns: int | None = _read("_end_ns")
    calls: list[ReceiverCall] = _read("_calls")
    exception: BaseException | None = _read("_exception")

    def __init__(
        self,
        signal: Signal,
        sender: Any,
        kwargs: dict[str, Any],
        mode: str,
        origin: Dispatch | None = None,
    ) -> None:
        parent = _current_call()
        self._id = _next_id()
        self._signal = signal
        self._sender = sender
        self._kwargs = kwargs
        self._mode = mode
        self._parent = parent
        self._depth: int = 0 if parent is None else parent.depth + 1
        self._origin = origin
        self._calls: list[ReceiverCall] = []
        self._exception: BaseException | None = None
        self._end_ns: int | None = None
        self._start_ns = _clock()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._kwargs)

    @property
    def duration_ns(self) -> int | None:
        end = self._end_ns
        return None if end is None else end - self._start_ns

    def __repr__(self) -> str:
        name = self._signal.name or "signal"
        return f"<tocsin.Dispatch #{self._id} {self._mode} {name} depth={self._depth}>"


class ReceiverCall:
    """One receiver called (or scheduled) by a send, as observers see it.

    Attributes (read-only):
        dispatch: The :class:`Dispatch` it belongs to.
        qualname: The receiver's qualified name.
        receiver: The receiver, or ``None`` once a weakly connected receiver
            has been garbage collected (the record never keeps it alive).
        info: Its :class:`~tocsin.ReceiverInfo` (built when read; ``None``
            once the receiver is gone).
        is_async: Whether it is an ``async`` receiver.
        deferred: ``None`` for a call; the option's name (``"on_commit"``)
            when the send only scheduled it. Its run is a dispatch of its own.
        depth: Its dispatch's depth.
        start_ns, end_ns, duration_ns: As in :class:`Dispatch`.
        result: What it returned.
        exception: What it raised (also under ``send_robust``), else ``None``.

    .. versionadded:: 0.1
    """

    __slots__ = (
        "__weakref__",
        "_deferred",
        "_dispatch",
        "_end_ns",
        "_exception",
        "_is_async",
        "_qualname",
        "_record",
        "_result",
        "_start_ns",
    )

    dispatch: Dispatch = _read("_dispatch")
    qualname: str = _read("_qualname")
    is_async: bool = _read("_is_async")
    deferred: str | None = _read("_deferred")
    start_ns: int = _read("_start_ns")
    end_ns: int | None = _read("_end_ns")
    result: Any = _read("_result")
    exception: BaseException | None = _read("_exception")

    def __init__(self, dispatch: Dispatch, record: Record, qualname: str) -> None:
        self._dispatch = dispatch
        self._record = record
        self._qualname = qualname
        self._is_async = record.is_async
        self._deferred: str | None = None
        self._result: Any = None
        self._exception: BaseException | None = None
        self._end_ns: int | None = None
        self._start_ns = _clock()
        dispatch._calls.append(self)

    @property
    def receiver(self) -> Callable[..., Any] | None:
        return self._record()

    @property
    def info(self) -> ReceiverInfo | None:
        return self._dispatch._signal._info(self._record)

    @property
    def depth(self) -> int:
        return self._dispatch._depth

    @property
    def duration_ns(self) -> int | None:
        end = self._end_ns
        return None if end is None else end - self._start_ns

    def __repr__(self) -> str:
        state = f" deferred={self._deferred}" if self._deferred else ""
        return f"<tocsin.ReceiverCall {self._qualname}{state} depth={self.depth}>"


# -- adding and removing observers ------------------------------------------------


def observe(observer: Observer) -> Callable[[], None]:
    """Report every dispatch of every signal to ``observer``, from now on.

    Returns:
        A function that removes it again (calling it twice does nothing).
        Adding the same observer twice reports to it twice.

    Raises:
        TypeError: ``observer`` lacks one of the four callbacks.

    .. versionadded:: 0.1
    """
    missing = [
        name for name in _CALLBACKS if not callable(getattr(observer, name, None))
    ]
    if missing:
        raise TypeError(
            f"{observer!r} is not an observer: it has no {', '.join(missing)} "
            "method. Subclass tocsin.Observer and override the callbacks you need."
        )
    with _lock:
        _publish((*_observers, observer))
    undone = False

    def undo() -> None:
        nonlocal undone
        with _lock:
            if undone:
                return
            undone = True
            kept = list(_observers)
            for index, item in enumerate(kept):
                if item is observer:
                    del kept[index]
                    break
            _publish(tuple(kept))

    return undo


@contextlib.contextmanager
def observing(observer: Observer) -> Iterator[Observer]:
    """Observe in a ``with`` block only (handy in tests); yields ``observer``.

    .. versionadded:: 0.1
    """
    undo = observe(observer)
    try:
        yield observer
    finally:
        undo()


def observers() -> tuple[Observer, ...]:
    """The observers now added, oldest first."""
    return _observers


def mirror(setter: Callable[[tuple[Observer, ...]], None]) -> None:
    """Have ``setter`` called with the new observers on every change (and now)."""
    _mirrors.append(setter)
    setter(_observers)


class _Hooks:
    """The callbacks of some observers, as bound methods, by callback.

    Built once per change of the observers, so that a send calls no method
    that an observer left as :class:`Observer`'s no-op.
    """

    __slots__ = _CALLBACKS

    def __init__(self, observers: tuple[Observer, ...]) -> None:
        for name in _CALLBACKS:
            noop = getattr(Observer, name)
            # A method bound from Observer's no-op is left out; an override, or
            # a function set on the instance (no __func__), is kept.
            methods = tuple(
                method
                for method in (getattr(observer, name) for observer in observers)
                if getattr(method, "__func__", None) is not noop
            )
            setattr(self, name, methods)

    send_started: tuple[Callable[[Dispatch], object], ...]
    receiver_started: tuple[Callable[[ReceiverCall], object], ...]
    receiver_finished: tuple[Callable[[ReceiverCall], object], ...]
    send_finished: tuple[Callable[[Dispatch], object], ...]


_hooks = _Hooks(())


def _publish(new: tuple[Observer, ...]) -> None:
    global _observers, _hooks
    _hooks = _Hooks(new)
    _observers = new
    for setter in _mirrors:
        setter(new)


def _notify(hooks: _Hooks, callback: str, record: object) -> None:
    """Call ``callback`` of each observer in ``hooks`` with ``record``; log what
    an observer raises (the name picks the methods and names them in the log)."""
    methods: tuple[Callable[[Any], object], ...] = getattr(hooks, callback)
    for method in methods:
        try:
            method(record)
        except Exception as error:
            import logging

            logging.getLogger("tocsin.observe").warning(
                "The observer %r raised %s in %s(); the send went on.",
                getattr(method, "__self__", method),
                type(error).__name__,
                callback,
                exc_info=error,
            )


# -- the observed send path ----------------------------------------------------------


def send(signal: Signal, sender: Any, named: dict[str, Any], robust: bool) -> Responses:
    """``Signal.send`` or ``send_robust`` while observed."""
    observers = _hooks
    dispatch = Dispatch(signal, sender, named, "send_robust" if robust else "send")
    _notify(observers, "send_started", dispatch)
    try:
        plan = signal._plan(sender) if signal._by_sender else ()
        if not plan:
            return []
        responses, calls = _start(observers, dispatch, *plan, robust)
        if calls:
            what = "Signal.send_robust()" if robust else "Signal.send()"
            responses += _async.run_blocking(
                _run_async(observers, dispatch, calls, robust), what
            )
        return responses
    except BaseException as error:
        dispatch._exception = error
        raise
    finally:
        dispatch._end_ns = _clock()
        _notify(observers, "send_finished", dispatch)


async def asend(
    signal: Signal, sender: Any, named: dict[str, Any], robust: bool
) -> Responses:
    """``Signal.asend`` or ``asend_robust`` while observed."""
    observers = _hooks
    dispatch = Dispatch(signal, sender, named, "asend_robust" if robust else "asend")
    _notify(observers, "send_started", dispatch)
    try:
        plan = signal._plan(sender) if signal._by_sender else ()
        if not plan:
            return []
        responses, calls = _start(observers, dispatch, *plan, robust)
        if calls:
            responses += await _run_async(observers, dispatch, calls, robust)
        return responses
    except BaseException as error:
        dispatch._exception = error
        raise
    finally:
        dispatch._end_ns = _clock()
        _notify(observers, "send_finished", dispatch)


def _start(
    observers: _Hooks,
    dispatch: Dispatch,
    plain: tuple[Record, ...],
    special: tuple[Record, ...],
    robust: bool,
) -> tuple[Responses, Calls]:
    """``Signal._start``, one observed receiver at a time."""
    # Every weak reference resolved before any receiver runs, as unobserved.
    now = [(record, record()) for record in plain]
    later = [(record, record()) for record in special]
    _dispatch.check_names(dispatch._kwargs)
    responses: Responses = []
    for record, receiver in now:
        if receiver is not None:
            response = _call(observers, dispatch, record, receiver, robust)
            responses.append((receiver, response))
    calls: Calls = []
    for record, receiver in later:
        if receiver is None:
            continue
        how = _options.NOW_ROBUST if robust else _options.NOW
        if record.options:
            how = _deliver(observers, dispatch, record, receiver, robust)
            if how == _options.DEFERRED:
                responses.append((receiver, None))
                continue
        robust_one = how == _options.NOW_ROBUST
        if record.is_async:
            calls.append((record, receiver, robust_one))
        else:
            response = _call(observers, dispatch, record, receiver, robust_one)
            responses.append((receiver, response))
    return responses, calls


def _call(
    observers: _Hooks,
    dispatch: Dispatch,
    record: Record,
    receiver: Callable[..., Any],
    robust: bool,
) -> Any:
    """Call one synchronous receiver between its two callbacks."""
    signal = dispatch._signal
    call = ReceiverCall(dispatch, record, _refs.describe(receiver))
    token = _current.set(call)
    try:
        if observers.receiver_started:
            _notify(observers, "receiver_started", call)
        call._start_ns = _clock()
        try:
            call._result = response = receiver(
                signal=signal, sender=dispatch._sender, **dispatch._kwargs
            )
        except BaseException as error:
            call._end_ns = _clock()
            call._exception = error
            if not (robust and isinstance(error, Exception)):
                raise
            signal._log_robust_failure(receiver, error)
            return error
        call._end_ns = _clock()
        return response
    finally:
        if observers.receiver_finished:
            _notify(observers, "receiver_finished", call)
        _current.reset(token)


# The call of the async receiver that each task runs (see the module docstring).
_task_calls: dict[Any, ReceiverCall] = {}


def _current_call() -> ReceiverCall | None:
    """The innermost receiver call running here: a synchronous one, or the
    async receiver of the current task, whichever is nested deeper."""
    call = _current.get()
    if _task_calls:
        import asyncio

        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running loop in this thread
            return call
        in_task = _task_calls.get(task)
        if in_task is not None and (call is None or in_task.depth > call.depth):
            return in_task
    return call


async def _observed(
    observers: _Hooks,
    dispatch: Dispatch,
    record: Record,
    qualname: str,
    awaitable: Awaitable[Any],
) -> Any:
    """Await an async receiver between its two callbacks, in its own task."""
    import asyncio

    call = ReceiverCall(dispatch, record, qualname)
    task = asyncio.current_task()
    # A deferred receiver's run can be awaited in the task of the receiver
    # that commits: that call is current again once this one ends.
    outer = _task_calls.get(task)
    _task_calls[task] = call
    try:
        if observers.receiver_started:
            _notify(observers, "receiver_started", call)
        call._start_ns = _clock()
        try:
            call._result = result = await awaitable
        except BaseException as error:
            call._end_ns = _clock()
            call._exception = error
            raise
        call._end_ns = _clock()
        return result
    finally:
        if observers.receiver_finished:
            _notify(observers, "receiver_finished", call)
        if outer is None:
            del _task_calls[task]
        else:
            _task_calls[task] = outer


async def _run_async(
    observers: _Hooks, dispatch: Dispatch, calls: Calls, robust: bool
) -> Responses:
    """``Signal._run_async``, each receiver wrapped so that it reports from its task."""
    signal = dispatch._signal
    receivers = [receiver for _, receiver, _ in calls]
    # Every receiver called before any is wrapped: if one raises (a missing
    # argument), the coroutines made so far are closed, never left unawaited.
    started: list[Awaitable[Any]] = []
    try:
        for receiver in receivers:
            started.append(
                receiver(signal=signal, sender=dispatch._sender, **dispatch._kwargs)
            )
    except BaseException:
        _async.close_all(started)
        raise
    awaitables: list[Awaitable[Any]] = []
    for index, (record, receiver, robust_one) in enumerate(calls):
        awaitable = _observed(
            observers, dispatch, record, _refs.describe(receiver), started[index]
        )
        if robust_one and not robust:
            awaitable = _async.caught(awaitable)
        awaitables.append(awaitable)
    results, failed = await _async.run_all(awaitables, robust)
    for index in failed:
        signal._log_robust_failure(receivers[index], results[index])
    return list(zip(receivers, results, strict=True))


# -- deferred receivers: the scheduling, then the run ------------------------------------


def _deliver(
    observers: _Hooks,
    dispatch: Dispatch,
    record: Record,
    receiver: Callable[..., Any],
    robust: bool,
) -> str:
    """Ask the receiver's options how to deliver; report a deferral as a call."""
    assert record.options is not None
    call = ReceiverCall(dispatch, record, _refs.describe(receiver))
    stand_in = _stand_in(record, receiver, call)
    try:
        how, option = _options.deliver_by(
            record.options, stand_in, dispatch._signal, dispatch._sender,
            dispatch._kwargs, robust,
        )  # fmt: skip
    except BaseException as error:
        call._exception = error
        call._end_ns = _clock()
        _notify(observers, "receiver_started", call)
        _notify(observers, "receiver_finished", call)
        raise
    if how != _options.DEFERRED:
        dispatch._calls.remove(call)  # called now: reported as an ordinary call
        return how
    call._deferred = option
    call._end_ns = _clock()
    _notify(observers, "receiver_started", call)
    _notify(observers, "receiver_finished", call)
    return how


def _stand_in(
    record: Record, receiver: Callable[..., Any], scheduled: ReceiverCall
) -> Callable[..., Any]:
    """What a deferring option queues instead of ``receiver``: it reports the run.

    It holds the receiver strongly, as the queued call would anyway, and
    carries the receiver's names for the option's own log lines; an option
    that needs the receiver itself (to store its import path, say) finds it
    as ``__wrapped__`` (``inspect.unwrap``).
    """

    def run(**arguments: Any) -> Any:
        if not _observers:
            return receiver(**arguments)
        named = dict(arguments)
        signal = named.pop("signal")
        sender = named.pop("sender")
        origin = scheduled._dispatch
        mode = scheduled._deferred or "deferred"
        dispatch = Dispatch(signal, sender, named, mode, origin=origin)
        return _run_deferred(_hooks, dispatch, record, receiver)

    run.__qualname__ = scheduled._qualname
    run.__name__ = getattr(receiver, "__name__", scheduled._qualname)
    run.__module__ = getattr(receiver, "__module__", None) or __name__
    run.__wrapped__ = receiver  # type: ignore[attr-defined]
    return run


def run_elsewhere(
    signal: Signal,
    sender: Any,
    named: dict[str, Any],
    receiver: Callable[..., Any],
    mode: str,
) -> Any:
    """Run ``receiver``, connected to ``signal``, for a send made in another
    process: a durable receiver's event in its worker.

    Observed, it is a dispatch of its own whose ``mode`` is ``mode``
    (``"durable"``), without an ``origin`` (the send was elsewhere). Returns
    what the receiver returns (an awaitable for an async receiver).
    """
    record = None
    if _observers:
        record = next((one for one in signal.receivers if one() is receiver), None)
    if record is None:  # unobserved, or no longer connected here
        return receiver(signal=signal, sender=sender, **named)
    dispatch = Dispatch(signal, sender, named, mode)
    return _run_deferred(_hooks, dispatch, record, receiver)


def _run_deferred(
    observers: _Hooks, dispatch: Dispatch, record: Record, receiver: Callable[..., Any]
) -> Any:
    """Run a deferred receiver as ``dispatch``, between its callbacks."""
    if record.is_async:
        return _run_deferred_async(observers, dispatch, record, receiver)
    _notify(observers, "send_started", dispatch)
    try:
        return _call(observers, dispatch, record, receiver, False)
    except BaseException as error:
        dispatch._exception = error
        raise
    finally:
        dispatch._end_ns = _clock()
        _notify(observers, "send_finished", dispatch)


async def _run_deferred_async(
    observers: _Hooks,
    dispatch: Dispatch,
    record: Record,
    receiver: Callable[..., Any],
) -> Any:
    _notify(observers, "send_started", dispatch)
    try:
        awaitable = receiver(
            signal=dispatch._signal, sender=dispatch._sender, **dispatch._kwargs
        )
        return await _observed(
            observers, dispatch, record, _refs.describe(receiver), awaitable
        )
    except BaseException as error:
        dispatch._exception = error
        raise
    finally:
        dispatch._end_ns = _clock()
        _notify(observers, "send_finished", dispatch)
