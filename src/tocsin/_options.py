"""Connect options beyond Django's: ``on_commit=True``, ``durable=True``, ...

An option is implemented by the module that provides it (``tocsin.transaction``
provides ``on_commit``), which registers a :class:`ConnectOption` when it is
imported. The core knows no option by name: it validates an option's value at
connect through its handler and, at each send, asks the handler how to deliver
to a receiver connected with it. Registration lives here, apart from the send
loop, so that ``Signal`` stays one concept.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Hashable
    from typing import Any

    from ._signal import Signal

__all__: list[str] = []

#: What :meth:`ConnectOption.deliver` answers.
DEFERRED = "deferred"  # the option took the call away (queued it); the response is None
NOW = "now"  # call the receiver now, as any receiver of this send
NOW_ROBUST = "now robust"  # call it now; log an exception and return it as the response


class ConnectOption:
    """How receivers connected with one extra option are validated and delivered to.

    Private to tocsin's own modules: subclass it and pass an instance to
    :func:`register`.
    """

    name: str

    def validate(
        self,
        value: Any,
        receiver: Callable[..., Any],
        *,
        signal: Signal,
        dispatch_uid: Hashable | None,
    ) -> Any:
        """Return the value to store, or ``None`` to ignore the option.

        Called at ``connect()``, with the signal and the ``dispatch_uid`` of
        the connection. Raise ``TypeError`` or ``ValueError`` with a message
        that names the fix; the connection is then not made.
        """
        return value

    def deliver(
        self,
        value: Any,
        receiver: Callable[..., Any],
        signal: Signal,
        sender: Any,
        named: dict[str, Any],
        robust: bool,
    ) -> str:
        """Take one send to ``receiver``: :data:`DEFERRED`, :data:`NOW` or :data:`NOW_ROBUST`.

        A receiver to be called now runs where the send runs every other
        receiver (a synchronous one inline, an async one in its own task,
        awaited by ``asend`` on the caller's loop).

        While the send is observed (``tocsin.observe``), ``receiver`` is a
        stand-in that reports the deferred run to the observers: queue it
        as the receiver; ``inspect.unwrap(receiver)`` is the receiver itself.
        """
        raise NotImplementedError


_handlers: dict[str, ConnectOption] = {}


def register(handler: ConnectOption) -> None:
    """Make ``connect(..., <handler.name>=value)`` use ``handler``."""
    _handlers[handler.name] = handler


def handler(name: str) -> ConnectOption:
    try:
        return _handlers[name]
    except KeyError:
        raise TypeError(
            f"Signal.connect() got an unexpected keyword argument {name!r}. "
            "If it is a connect option of a tocsin module (on_commit= is "
            "tocsin.transaction's, durable= is tocsin.durable's), import that "
            "module before connecting."
        ) from None


def validate(
    options: dict[str, Any],
    receiver: Callable[..., Any],
    signal: Signal,
    dispatch_uid: Hashable | None,
) -> dict[str, Any]:
    """The options to store for ``receiver``, each checked by its handler."""
    stored = {}
    for name, value in options.items():
        value = handler(name).validate(
            value, receiver, signal=signal, dispatch_uid=dispatch_uid
        )
        if value is not None:
            stored[name] = value
    return stored


def deliver_by(
    options: dict[str, Any],
    receiver: Callable[..., Any],
    signal: Signal,
    sender: Any,
    named: dict[str, Any],
    robust: bool,
) -> tuple[str, str | None]:
    """Ask each option of ``receiver`` how to deliver; the first deferral wins.

    Returns the answer, and the name of the option that deferred (else ``None``).
    """
    how = NOW_ROBUST if robust else NOW
    for name, value in options.items():
        answer = _handlers[name].deliver(value, receiver, signal, sender, named, robust)
        if answer == DEFERRED:
            return DEFERRED, name
        if answer == NOW_ROBUST:
            how = NOW_ROBUST
    return how, None
