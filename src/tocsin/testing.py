"""Helpers for tests: see what was sent, silence receivers, connect for a block.

Also a pytest plugin (:mod:`tocsin.pytest_plugin`) with fixtures built on
these helpers; this module itself never imports pytest.

>>> from tocsin import Signal
>>> from tocsin.testing import capture, muted
>>> order_completed = Signal()
>>> with capture(order_completed) as sent:
...     _ = order_completed.send(sender="shop", order="#1")
>>> sent[0].sender, sent[0].kwargs
('shop', {'order': '#1'})
>>> with muted(order_completed):
...     order_completed.send(sender="shop", order="#2")
[]

:func:`captured_on_commit` (from :mod:`tocsin.transaction`) collects the
callbacks that would wait for a commit, for tests that never really commit.

``capture`` and ``muted`` work by shadowing the sending methods of the given signal objects for the
duration of the block, so signals that are neither captured nor muted pay
nothing for them. They nest, and everything is restored on exit, even when
the block raises.
"""

from __future__ import annotations

import threading
import types
import warnings
import weakref
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from . import _refs
from ._signal import ReceiverInfo, Signal, WeakReceiverWarning
from .transaction import captured_on_commit

__all__ = [
    "Sent",
    "capture",
    "captured_on_commit",
    "connected_to",
    "isolated_connections",
    "muted",
]

_MODES = ("send", "send_robust", "asend", "asend_robust")


class Sent(NamedTuple):
    """One send seen by :func:`capture`.

    .. versionadded:: 0.1
    """

    signal: Signal
    sender: Any
    kwargs: dict[str, Any]
    mode: str
    """``"send"``, ``"send_robust"``, ``"asend"`` or ``"asend_robust"``."""


class _Watch:
    """The test state of one signal: its active captures and mutes."""

    def __init__(self, signal: Signal) -> None:
        self.signal = signal
        self.captures: list[_Capture] = []
        self.mutes = 0

    def install(self) -> None:
        signal = self.signal
        for mode in _MODES:
            original = getattr(type(signal), mode)
            is_async = mode.startswith("a")
            setattr(signal, mode, self._wrap(original, mode, is_async))
        signal.has_listeners = self._has_listeners  # type: ignore[method-assign]

    def uninstall(self) -> None:
        for name in (*_MODES, "has_listeners"):
            self.signal.__dict__.pop(name, None)

    def _record(self, mode: str, sender: Any, named: dict[str, Any]) -> None:
        for entry in self.captures:
            if entry.hears(sender):
                entry.sent.append(Sent(self.signal, sender, dict(named), mode))

    def _wrap(self, original: Callable[..., Any], mode: str, is_async: bool) -> Any:
        signal = self.signal
        if is_async:

            async def send_async(sender: Any, **named: Any) -> Any:
                self._record(mode, sender, named)
                if self.mutes:
                    return []
                return await original(signal, sender, **named)

            return send_async

        def send(sender: Any, **named: Any) -> Any:
            self._record(mode, sender, named)
            if self.mutes:
                return []
            return original(signal, sender, **named)

        return send

    def _has_listeners(self, sender: object = None) -> bool:
        # An emitter that skips work when nobody listens must still send
        # while a capture is watching.
        if self.captures:
            return True
        if self.mutes:
            return False
        return Signal.has_listeners(self.signal, sender)


class _Capture:
    """One :func:`capture` block: its list, and which senders it records.

    A capture filtered on a sender records what a receiver connected with
    that ``sender=`` would hear, so the decision is left to the core: a
    private signal holds such a receiver, and a send from the same sender
    on it tells whether that receiver is called. (Comparing senders here
    would drift from the core's rules: ``True`` is not the sender ``1``, an
    equal but distinct object is not the sender, and ``__eq__`` is never
    called.)
    """

    __slots__ = ("probe", "sent")

    def __init__(self, sender: object) -> None:
        self.sent: list[Sent] = []
        self.probe: Signal | None = None
        if sender is not None:
            self.probe = Signal(name="tocsin.testing.capture")
            self.probe.connect(_heard, sender=sender, weak=False)

    def hears(self, sender: object) -> bool:
        return self.probe is None or bool(self.probe.send(sender))


def _heard(**kwargs: Any) -> bool:
    return True


_watches: dict[int, _Watch] = {}
_watches_lock = threading.Lock()


@contextmanager
def _watching(
    signals: tuple[Signal, ...],
    join: Callable[[_Watch], None],
    leave: Callable[[_Watch], None],
) -> Iterator[None]:
    """Apply ``join`` to the watch of each signal for the block, ``leave`` after.

    Both run under the lock, so that a block ending in one thread cannot
    uninstall a watch that a block starting in another has just joined.
    """
    if not signals:
        raise TypeError("Name at least one signal.")
    for signal in signals:
        if not isinstance(signal, Signal):
            raise TypeError(f"Expected a tocsin Signal, got {signal!r}.")
    watches = []
    with _watches_lock:
        for signal in signals:
            watch = _watches.get(id(signal))
            if watch is None:
                watch = _watches[id(signal)] = _Watch(signal)
                watch.install()
            join(watch)
            watches.append(watch)
    try:
        yield
    finally:
        with _watches_lock:
            for watch in watches:
                leave(watch)
                if not watch.captures and not watch.mutes:
                    watch.uninstall()
                    _watches.pop(id(watch.signal), None)


@contextmanager
def capture(*signals: Signal, sender: object = None) -> Iterator[list[Sent]]:
    """Record every send of the given signals during the block.

    Receivers still run (combine with :func:`muted` to silence them). The
    list grows as sends happen, in order, across all the given signals: a
    send is recorded when it starts, before its receivers run, so a send
    made by a receiver comes after the send that called it.

    Args:
        sender: Record only the sends that a receiver connected with this
            ``sender=`` would hear: the same object, or for strings and
            integers the same value (``True`` is not ``1``). ``None``, the
            default, records every sender, as it connects to every sender.

    .. versionadded:: 0.1
    """
    entry = _Capture(sender)
    with _watching(
        signals,
        join=lambda watch: watch.captures.append(entry),
        leave=lambda watch: watch.captures.remove(entry),
    ):
        yield entry.sent


@contextmanager
def muted(*signals: Signal) -> Iterator[None]:
    """Call no receiver of the given signals during the block.

    Sends return ``[]``, and ``has_listeners()`` is ``False`` unless a
    :func:`capture` is watching. Connections are left untouched, so their
    order and any connections made during the block are kept.

    .. versionadded:: 0.1
    """
    with _watching(signals, join=_mute, leave=_unmute):
        yield


def _mute(watch: _Watch) -> None:
    watch.mutes += 1


def _unmute(watch: _Watch) -> None:
    watch.mutes -= 1


@contextmanager
def connected_to(
    receiver: Callable[..., Any],
    signal: Signal,
    sender: object = None,
    dispatch_uid: Hashable | None = None,
    **connect_options: Any,
) -> Iterator[Callable[..., Any]]:
    """Connect ``receiver`` (strongly) for the duration of the block.

    If that connection already existed, it is left as it was, and still
    there after the block.

    .. versionadded:: 0.1
    """
    if signal._is_connected(receiver, sender, dispatch_uid):
        yield receiver
        return
    signal.connect(
        receiver,
        sender=sender,
        weak=False,
        dispatch_uid=dispatch_uid,
        **connect_options,
    )
    try:
        yield receiver
    finally:
        signal.disconnect(receiver, sender=sender, dispatch_uid=dispatch_uid)


# -- isolated_connections() --------------------------------------------------------


@contextmanager
def isolated_connections(*signals: Signal | types.ModuleType) -> Iterator[None]:
    """Undo, when the block ends, every change it made to signal connections.

    Watches the signals of the catalog (:mod:`tocsin.signals`) and the given
    ones; a module stands for every signal defined in it, such as your
    project's ``signals`` module. When the block ends, even by an exception,
    each connection made to them in the block is disconnected, and each
    connection that the block removed (or replaced with another priority or
    options) is made again. The block keeps nothing alive: a weakly
    connected receiver, or a sender, that is garbage collected during the
    block stays gone.

    Two limits: a restored connection runs after the receivers of the same
    priority that stayed connected (its place among them is not kept), and
    a connection to a lazy ``"app_label.ModelName"`` sender that is still
    waiting for its model lives in the app registry, which this does not
    watch.

    Args:
        signals: More signals to watch, or modules whose signals to watch.

    Raises:
        TypeError: an argument is neither a signal nor a module.

    .. versionadded:: 0.1
    """
    watched = _signals_to_isolate(signals)
    snapshots = [(signal, _snapshot(signal)) for signal in watched]
    try:
        yield
    finally:
        for signal, snapshot in snapshots:
            _restore(signal, snapshot)


def _signals_to_isolate(extra: Iterable[Signal | types.ModuleType]) -> list[Signal]:
    from . import signals as catalog

    found: dict[int, Signal] = {}
    for item in (catalog, *extra):
        if isinstance(item, Signal):
            found[id(item)] = item
        elif isinstance(item, types.ModuleType):
            for value in vars(item).values():
                if isinstance(value, Signal):
                    found[id(value)] = value
        else:
            raise TypeError(
                "isolated_connections() takes signals, or modules that define "
                f"them, not {item!r}."
            )
    return list(found.values())


class _Connection:
    """One connection as it was when the block began, held as the core holds it."""

    __slots__ = ("dispatch_uid", "options", "priority", "receiver", "sender", "weak")

    def __init__(self, info: ReceiverInfo) -> None:
        self.receiver = _hold(info.receiver, weak=info.weak)
        self.sender = _hold(info.sender, weak=True)
        self.dispatch_uid = info.dispatch_uid
        self.priority = info.priority
        self.weak = info.weak
        self.options = info.options

    def matches(self, info: ReceiverInfo) -> bool:
        """Whether ``info`` is still this very connection."""
        return (
            _same(self.receiver(), info.receiver)
            and _same(self.sender(), info.sender)
            and self.dispatch_uid == info.dispatch_uid
            and self.priority == info.priority
            and self.weak == info.weak
            and self.options == info.options
        )

    def reconnect(self, signal: Signal) -> None:
        receiver, sender = self.receiver(), self.sender()
        if receiver is None or (sender is None and self.sender is not _NO_SENDER):
            return  # collected during the block: the core would have dropped it
        with warnings.catch_warnings():
            # It was warned about when first connected.
            warnings.simplefilter("ignore", WeakReceiverWarning)
            signal.connect(
                receiver,
                sender=sender,
                weak=self.weak,
                dispatch_uid=self.dispatch_uid,
                priority=self.priority,
                **self.options,
            )


def _no_sender() -> None:
    return None


_NO_SENDER: Callable[[], Any] = _no_sender


def _hold(value: Any, weak: bool) -> Callable[[], Any]:
    if value is None:
        return _NO_SENDER
    if weak:
        try:
            if isinstance(value, types.MethodType):
                return weakref.WeakMethod(value)
            return weakref.ref(value)
        except TypeError:
            pass  # the core holds these strongly too
    return lambda: value


def _same(a: object, b: object) -> bool:
    if isinstance(a, types.MethodType) and isinstance(b, types.MethodType):
        return a.__self__ is b.__self__ and a.__func__ is b.__func__
    return a is b or (isinstance(a, str | int) and type(a) is type(b) and a == b)


def _key(signal: Signal, info: ReceiverInfo) -> Hashable:
    # The core's own identity of a connection, so that "the same connection"
    # means here what it means to connect() and disconnect().
    return _refs.connection_keys(info.receiver, info.sender, info.dispatch_uid)


def _snapshot(signal: Signal) -> dict[Hashable, _Connection]:
    return {_key(signal, info): _Connection(info) for info in signal.receivers_info()}


def _restore(signal: Signal, snapshot: dict[Hashable, _Connection]) -> None:
    current = {_key(signal, info): info for info in signal.receivers_info()}
    for key, info in current.items():
        before = snapshot.get(key)
        if before is None or not before.matches(info):
            # Signal's own disconnect: info.sender is the real sender, never a
            # model signal's lazy "app_label.ModelName".
            Signal.disconnect(
                signal,
                info.receiver,
                sender=info.sender,
                dispatch_uid=info.dispatch_uid,
            )
    for key, before in snapshot.items():
        now = current.get(key)
        if now is None or not before.matches(now):
            before.reconnect(signal)
