"""Helpers for tests: see what was sent, silence receivers, connect for a block.

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
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from ._signal import Signal
from .transaction import captured_on_commit

__all__ = ["Sent", "capture", "captured_on_commit", "connected_to", "muted"]

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
