"""``connect(..., durable=True)``: write an outbox row instead of calling.

At connect time the receiver gets a name (its ``dispatch_uid``, else
``module:qualname``) and joins the registry that workers look names up in. At
send time each durable receiver gets one outbox row, written on the
connection of the sender's transaction.
"""

from __future__ import annotations

import inspect
import threading
import time
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from .. import transaction
from . import _core, payload, tracing
from ._active import PENDING, active_outbox
from .policy import Policy

__all__ = ["Binding", "DurableError", "binding", "bindings"]


class DurableError(RuntimeError):
    """A durable receiver cannot be connected, or a send cannot reach it.

    .. versionadded:: 0.1
    """


@dataclass(frozen=True, eq=False)
class Binding:
    """A durable receiver as the outbox knows it."""

    name: str
    receiver: Callable[..., Any]
    signal: Any
    policy: Policy

    def __repr__(self) -> str:
        return f"durable({self.name!r}, queue={self.policy.queue!r})"


_bindings: dict[str, Binding] = {}
_lock = threading.Lock()


def binding(name: str) -> Binding | None:
    """The durable receiver connected under ``name`` in this process."""
    return _bindings.get(name)


def bindings() -> list[Binding]:
    """Every durable receiver connected in this process."""
    return list(_bindings.values())


def _name_of(receiver: Callable[..., Any], dispatch_uid: Any) -> str:
    what = _describe(receiver)
    if inspect.ismethod(receiver):
        why = "a bound method needs its object, which the worker cannot rebuild"
    elif getattr(receiver, "__name__", None) == "<lambda>":
        why = "a lambda has no name to import it by"
    elif "<locals>" in getattr(receiver, "__qualname__", ""):
        why = "a function defined inside another function cannot be imported"
    elif payload.import_path(receiver) is None or not inspect.isroutine(receiver):
        why = "only functions have a name to import them by"
    else:
        why = ""
    if why:
        raise DurableError(
            f"{what} cannot be a durable receiver: {why}. A worker process "
            "finds durable receivers by name, so make it a function at the top "
            "level of a module."
        )
    if dispatch_uid is None:
        return payload.import_path(receiver) or ""
    if not isinstance(dispatch_uid, str) or not 0 < len(dispatch_uid) <= 255:
        raise DurableError(
            f"dispatch_uid={dispatch_uid!r}: a durable receiver's dispatch_uid "
            "names it in the outbox, so it must be a string of 1 to 255 characters."
        )
    return dispatch_uid


def _describe(receiver: Callable[..., Any]) -> str:
    name = getattr(receiver, "__qualname__", None) or repr(receiver)
    return f"{getattr(receiver, '__module__', '?')}.{name}"


class _DurableOption(_core.ConnectOption):
    """``connect(..., durable=True | Policy(...))``."""

    name = "durable"

    def validate(
        self,
        value: Any,
        receiver: Callable[..., Any],
        *,
        signal: Any,
        dispatch_uid: Hashable | None,
    ) -> Any:
        policy = Policy.of(value)
        if policy is None:
            return None
        name = _name_of(receiver, dispatch_uid)
        with _lock:
            known = _bindings.get(name)
            if known is not None and known.signal is not signal:
                raise DurableError(
                    f"Two durable receivers are named {name!r} (on {known.signal!r} "
                    f"and {signal!r}): give each connection its own dispatch_uid, "
                    "which names it in the outbox."
                )
            # Connecting again (another sender, a reloaded module) rebinds.
            found = _bindings[name] = Binding(name, receiver, signal, policy)
        return found

    def deliver(
        self,
        value: Any,
        receiver: Callable[..., Any],
        signal: Any,
        sender: Any,
        named: dict[str, Any],
        robust: bool,
    ) -> str:
        # Even under send_robust(): a failed enqueue is never swallowed, since
        # the event would be lost without a trace.
        enqueue(value, sender, named)
        return _core.DEFERRED


class _Send(threading.local):
    # The durable receivers of one send share its event id and its payload:
    # the core passes them the same ``named`` dict, held here (with the
    # names already written) until the next durable send of this thread.
    named: dict[str, Any] | None = None
    sender: Any = None
    event_id = ""
    text = ""
    written: set[str]


_last = _Send()


def enqueue(found: Binding, sender: Any, named: dict[str, Any]) -> None:
    """Write the outbox row of one send to one durable receiver.

    Raises:
        DurableError: No transaction to write it in.
        tocsin.durable.PayloadError: An argument has no JSON form.
    """
    session = _session_of(named, found)
    outbox = active_outbox()
    last = _last
    if last.named is not named or last.sender is not sender:
        text = payload.encode(sender, named, found.name)
        last.named, last.sender, last.text = named, sender, text
        last.event_id = str(uuid.uuid4())
        last.written = set()
    elif found.name in last.written:
        # The same receiver connected for two senders that both match: one
        # event per receiver and send, as its name is its identity.
        return
    last.written.add(found.name)
    event_id, text = last.event_id, last.text
    now = time.time()
    outbox.transport.write(
        session,
        outbox,
        {
            "event_id": event_id,
            "receiver": found.name,
            "queue": found.policy.queue,
            "payload": text,
            "state": PENDING,
            "attempts": 0,
            "max_attempts": found.policy.max_attempts,
            "created_at": now,
            "available_at": now,
            "traceparent": tracing.current(),
        },
    )


def _session_of(named: dict[str, Any], found: Binding) -> Session:
    session = named.get("session")
    if isinstance(session, Session):
        return session
    unit = transaction.current_unit_of_work()
    session = getattr(unit, "session", None)
    if isinstance(session, Session):
        return session
    raise DurableError(
        f"{found.signal!r} was sent to the durable receiver {found.name} outside "
        "a transaction, so its event could not be written. Send it inside "
        "`with tocsin.transaction.unit_of_work(session):` (model signals and "
        "their receivers are inside one already), then commit the session."
    )


_core.register_connect_option(_DurableOption())
