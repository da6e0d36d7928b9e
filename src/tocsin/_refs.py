"""Receiver records: how a connected receiver is held, keyed and classified.

A record is the object that ``Signal`` stores for each connection. Calling a
record returns the live receiver, or ``None`` once a weakly held receiver has
been garbage collected, so the dispatch loop treats weak and strong receivers
alike. Weak records *are* weak references (subclasses of ``weakref.ref`` and
``weakref.WeakMethod``), which keeps the memory cost of a connection to one
object.
"""

from __future__ import annotations

import functools
import sys
import types
import weakref

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Hashable
    from typing import Any

__all__: list[str] = []

_CO_VARKEYWORDS = 0x08
_CO_COROUTINE = 0x80
_CO_ITERABLE_COROUTINE = 0x100

#: Senders compared by value, not identity: equal strings or integers are the
#: same sender even when they are different objects (as in blinker).
_VALUE_SENDER_TYPES = (str, int)

#: The sender key of receivers connected with ``sender=None``: they hear everyone.
ANY_SENDER: Hashable = id(None)


class _Record:
    """The fields every record carries, whatever holds the receiver."""

    __slots__ = ()
    key: Hashable
    sender_key: Hashable
    priority: float
    order: int
    is_async: bool
    options: dict[str, Any] | None
    weak: bool


class StrongRecord(_Record):
    __slots__ = (
        "is_async",
        "key",
        "options",
        "order",
        "priority",
        "receiver",
        "sender_key",
    )
    weak = False

    def __init__(self, receiver: Callable[..., Any]) -> None:
        self.receiver = receiver

    def __call__(self) -> Callable[..., Any]:
        return self.receiver


class WeakRecord(weakref.ref, _Record):  # type: ignore[type-arg]
    __slots__ = ("is_async", "key", "options", "order", "priority", "sender_key")
    weak = True


class WeakMethodRecord(weakref.WeakMethod, _Record):  # type: ignore[type-arg]
    __slots__ = ("is_async", "key", "options", "order", "priority", "sender_key")
    weak = True


Record = StrongRecord | WeakRecord | WeakMethodRecord


class UidKey(tuple):  # type: ignore[type-arg]
    """The key of a connection made with a ``dispatch_uid``: ``(uid,)``.

    A one-item tuple, so it can never equal a receiver's key (an ``int`` or a
    pair of them), and it tells the uid back for :meth:`Signal.receivers_info`.
    """

    __slots__ = ()

    @property
    def uid(self) -> Hashable:
        uid: Hashable = self[0]
        return uid


def connection_keys(
    receiver: Callable[..., Any] | None,
    sender: object,
    dispatch_uid: Hashable | None,
) -> tuple[Hashable, Hashable]:
    """Identify a connection: ``(receiver key or uid key, sender key)``.

    ``dispatch_uid``, when given, names the connection whatever the receiver;
    ``sender=None`` (every sender) has the key of ``None``.
    """
    if dispatch_uid is not None:
        key: Hashable = UidKey((dispatch_uid,))
    elif type(receiver) is types.MethodType:
        # A new object at each attribute access: keyed by instance and function.
        key = (id(receiver.__self__), id(receiver.__func__))
    else:
        key = id(receiver)
    return key, ANY_SENDER if sender is None else sender_key(sender)


def sender_key(sender: object) -> Hashable:
    if isinstance(sender, str):
        # A str subclass (a StrEnum member, say) is the same sender as the
        # plain string it equals.
        return (str, sender)
    if isinstance(sender, int):
        # bool stays apart from int, so that True is not the sender 1.
        return (bool if isinstance(sender, bool) else int, sender)
    return id(sender)


def make_record(
    receiver: Callable[..., Any],
    weak: bool,
    on_death: Callable[[Any], None],
) -> Record:
    if not weak:
        return StrongRecord(receiver)
    try:
        if isinstance(receiver, types.MethodType):
            return WeakMethodRecord(receiver, on_death)
        return WeakRecord(receiver, on_death)
    except TypeError:
        # For a bound method, it is the instance that must support weak refs.
        holder = (
            receiver.__self__ if isinstance(receiver, types.MethodType) else receiver
        )
        raise TypeError(
            f"Cannot hold the receiver {describe(receiver)} by a weak reference "
            f"({type(holder).__name__} objects do not support it). "
            "Connect it with weak=False."
        ) from None


def _unwrap(func: Any) -> Any:
    while True:
        if isinstance(func, functools.partial):
            func = func.func
        elif isinstance(func, types.MethodType):
            func = func.__func__
        else:
            return func


def _code_of(func: Any) -> types.CodeType | None:
    code = getattr(func, "__code__", None)
    if isinstance(code, types.CodeType):
        return code
    call = getattr(type(func), "__call__", None)  # noqa: B004 (we want the function)
    code = getattr(_unwrap(call), "__code__", None)
    return code if isinstance(code, types.CodeType) else None


def inspect_receiver(receiver: Callable[..., Any]) -> tuple[bool, bool, bool]:
    """``(accepts **kwargs, is async, is transient)`` for ``receiver``.

    Decided once, at connect. Transient: see :func:`is_transient_function`.

    A receiver is async when calling it returns an awaitable: besides
    ``async def`` functions, this honours functions and objects marked with
    ``inspect.markcoroutinefunction`` (Python 3.12+) or asgiref's
    ``markcoroutinefunction`` (Python 3.11).
    """
    if (
        type(receiver) is types.FunctionType
        and not hasattr(receiver, "_is_coroutine_marker")
        and not hasattr(receiver, "_is_coroutine")
    ):
        # A plain, unmarked function (nearly every receiver): its code says all.
        # (Reading __dict__ instead would give every function a dict.)
        flags = receiver.__code__.co_flags
        return (
            bool(flags & _CO_VARKEYWORDS),
            bool(flags & (_CO_COROUTINE | _CO_ITERABLE_COROUTINE)),
            receiver.__name__ == "<lambda>" or "<locals>" in receiver.__qualname__,
        )
    return (
        accepts_kwargs(receiver),
        is_async_receiver(receiver),
        is_transient_function(receiver),
    )


def is_async_receiver(receiver: Callable[..., Any]) -> bool:
    """Tell whether calling ``receiver`` returns an awaitable (see :func:`inspect_receiver`)."""
    target = _unwrap(receiver)
    inspect = sys.modules.get("inspect")
    # Marked on 3.12+: the marker object's name differs between versions, so
    # let inspect compare it.
    marked = hasattr(inspect, "markcoroutinefunction") and any(
        hasattr(candidate, "_is_coroutine_marker") for candidate in (target, receiver)
    )
    if marked and any(
        inspect.iscoroutinefunction(candidate)  # type: ignore[union-attr]
        for candidate in (target, receiver)
    ):
        return True
    coroutines = sys.modules.get("asyncio.coroutines")
    legacy_marker = getattr(coroutines, "_is_coroutine", None)
    if legacy_marker is not None and (
        getattr(target, "_is_coroutine", None) is legacy_marker
        or getattr(receiver, "_is_coroutine", None) is legacy_marker
    ):
        return True
    code = _code_of(target)
    return code is not None and bool(
        code.co_flags & (_CO_COROUTINE | _CO_ITERABLE_COROUTINE)
    )


def accepts_kwargs(receiver: Callable[..., Any]) -> bool:
    code = _code_of(_unwrap(receiver))
    if code is not None:
        return bool(code.co_flags & _CO_VARKEYWORDS)
    import inspect

    try:
        parameters = inspect.signature(receiver).parameters.values()
    except (TypeError, ValueError):
        return True  # nothing to check against, as for many builtins
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def describe(receiver: object) -> str:
    """A receiver's qualified name, as used in log lines and error messages."""
    name = getattr(receiver, "__qualname__", None)
    if name is None:
        name = type(receiver).__qualname__
    return str(name)


def is_transient_function(receiver: object) -> bool:
    """A lambda or a function defined inside another function.

    Held weakly, such a receiver disappears as soon as the scope that created
    it ends, which is rarely what the author meant.
    """
    if not isinstance(receiver, types.FunctionType):
        return False
    qualname = receiver.__qualname__
    return receiver.__name__ == "<lambda>" or "<locals>" in qualname


def source_location(receiver: object) -> tuple[str | None, int | None]:
    code = _code_of(_unwrap(receiver))
    module = getattr(_unwrap(receiver), "__module__", None)
    if module is None:
        module = type(receiver).__module__
    return module, (code.co_firstlineno if code is not None else None)
