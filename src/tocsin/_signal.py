"""``Signal``: connect receivers, then send to them.

How it is built, for a reader of this file:

- The connections, and the *plan* cached per sender (the records a send from
  that sender reaches, in dispatch order, plain synchronous receivers apart),
  are kept by the base class ``_connections.Connections``.
- ``send`` never takes the lock: it looks up the plan for ``id(sender)``; a
  sender that nobody listens to maps to the empty plan ``()``.
- Plain receivers are called by the loops of ``_dispatch`` (compiled per set
  of keyword names); async receivers run in tasks of their own (``_async``);
  receivers with connect options are delivered to as their option says
  (``_options``).
- A send resolves every weak reference before it calls the first receiver,
  so a receiver alive when the send begins is called by it, as in Django.
"""

from __future__ import annotations

import collections
import itertools
import os
import sys
import warnings

from . import _async, _dispatch, _observe, _options, _refs
from ._connections import Connections

# typing costs more to import than the rest of the core together; the core
# needs it only for the type checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Hashable, Iterable
    from typing import Any, NamedTuple

    from ._connections import Plan, Receivers
    from ._dispatch import Loop, Responses
    from ._refs import Record

__all__ = ["ReceiverInfo", "Signal", "WeakReceiverWarning"]

_ANY_KEY = _refs.ANY_SENDER
_ALL = object()  # receivers_info() default: every connection, whatever its sender
_NUMBERS = (int, float)
_PACKAGE = os.path.dirname(__file__) + os.sep


# Whether _observe has observers, mirrored here so that a send tests a global
# of this module: with none, that test is all the hook costs (see _observe).
# A bool, not the tuple: testing False is an identity check, with no call.
_observed = False


def _mirror_observers(observers: tuple[object, ...]) -> None:
    global _observed
    _observed = bool(observers)


_observe.mirror(_mirror_observers)


class WeakReceiverWarning(UserWarning):
    """A weakly connected receiver will vanish when the scope that made it ends.

    .. versionadded:: 0.1
    """


if TYPE_CHECKING:

    class _ReceiverInfoFields(NamedTuple):
        receiver: Callable[..., Any]
        qualname: str
        module: str | None
        line: int | None
        sender: object
        dispatch_uid: Hashable | None
        priority: float
        weak: bool
        is_async: bool
        options: dict[str, Any]
        file: str | None

else:
    _ReceiverInfoFields = collections.namedtuple(
        "_ReceiverInfoFields",
        "receiver qualname module line sender dispatch_uid priority weak is_async "
        "options file",
    )


class ReceiverInfo(_ReceiverInfoFields):
    """One live connection, as listed by :meth:`Signal.receivers_info`.

    Fields: ``receiver``, its ``qualname``, ``module`` and ``line``;
    ``sender``, the sender filter (``None`` when the receiver hears every
    sender); ``dispatch_uid``; ``priority``; ``weak``; ``is_async``; and
    ``options``, the connect options beyond Django's, such as
    ``{"on_commit": True}``; and ``file``, the path of the receiver's source
    file (``None`` where it has no Python code).

    .. versionadded:: 0.1
    """

    __slots__ = ()


class Signal(Connections):
    """A named event that receivers can connect to and senders can send.

    Args:
        use_caching: Accepted for compatibility with ``django.dispatch``;
            tocsin always caches the receivers of each sender.
        name: Shown in ``repr()`` and in the inspection tools.
        doc: What the signal means, who sends it and with which arguments.
        trace: ``False`` for a signal sent once per row or per object (such
            as ``post_init``): tracers such as the OpenTelemetry integration
            leave it out unless asked to. Observers still see it.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        use_caching: bool = False,
        *,
        name: str | None = None,
        doc: str | None = None,
        trace: bool = True,
    ) -> None:
        self.use_caching = use_caching
        self.name = name
        self.trace = trace
        if doc is not None:
            self.__doc__ = doc
        super().__init__()
        self._next_order = itertools.count().__next__
        self._plain_loop: Loop = _dispatch.no_loop_yet
        self._robust_loop: Loop = _dispatch.no_loop_yet

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"<tocsin.Signal{label} at {id(self):#x}>"

    # -- connecting ---------------------------------------------------------

    def connect(
        self,
        receiver: Callable[..., Any],
        sender: object = None,
        weak: bool = True,
        dispatch_uid: Hashable | None = None,
        *,
        priority: float = 0,
        **options: Any,
    ) -> None:
        """Connect ``receiver`` so that it is called on every matching send.

        The receiver is called as ``receiver(signal=signal, sender=sender,
        **named)`` and must accept ``**kwargs``, so that senders can add
        arguments later without breaking it.

        Args:
            receiver: A function, method or callable object; ``async`` ones
                are awaited (see :meth:`send` and :meth:`asend`).
            sender: Only sends from this sender reach the receiver. ``None``
                (the default) means every sender. Strings and integers match
                by value, anything else by identity.
            weak: Hold the receiver by a weak reference (the default), so that
                connecting it does not keep it alive. A receiver defined
                inside a function or a lambda disappears with its scope:
                connect those with ``weak=False``.
            dispatch_uid: A unique identifier for this connection; connecting
                again with the same ``dispatch_uid`` (and sender) is a no-op,
                whatever the receiver.
            priority: Receivers with a higher priority run first; equal
                priorities keep registration order.
            **options: Extra behaviours, such as ``on_commit=True``.

        Connecting the same receiver and sender twice is a no-op: the first
        connection, with its priority and options, is kept.

        Raises:
            TypeError: ``receiver`` is not callable, or cannot be held weakly.
            ValueError: ``receiver`` does not accept ``**kwargs``.

        .. versionadded:: 0.1
        """
        if not callable(receiver):
            raise TypeError("Signal receivers must be callable.")
        accepts_kwargs, is_async, transient = _refs.inspect_receiver(receiver)
        if not accepts_kwargs:
            raise ValueError(
                "Signal receivers must accept keyword arguments (**kwargs)."
            )
        if type(priority) is not int and (
            isinstance(priority, bool)
            or not isinstance(priority, _NUMBERS)
            or priority != priority  # NaN would leave the order undefined
        ):
            raise TypeError(
                f"priority must be a number (higher runs first), not {priority!r}."
            )
        stored_options = (
            _options.validate(options, receiver, self, dispatch_uid)
            if options
            else None
        )
        if weak and transient:
            warnings.warn(
                f"The receiver {_refs.describe(receiver)} is a lambda or a local "
                "function connected with a weak reference: it will be dropped "
                "silently once nothing else refers to it. Connect it with "
                "weak=False to keep it.",
                WeakReceiverWarning,
                stacklevel=_caller_stacklevel(),
            )
        key, skey = _refs.connection_keys(receiver, sender, dispatch_uid)
        with self.lock:
            if self._dead_records or self._dead_senders:
                self._purge()
            connections = self._by_sender.get(skey)
            if connections is not None and key in connections:
                return
            record = _refs.make_record(receiver, weak, self._on_receiver_death)
            record.key = key
            record.sender_key = skey
            record.priority = priority
            record.order = self._next_order()
            record.is_async = is_async
            record.options = stored_options or None
            if connections is None:
                if sender is not None:
                    self._sender_refs[skey] = self._hold_sender(sender, skey)
                connections = self._by_sender[skey] = {}
            connections[key] = record
            if self._plans:
                self._invalidate()

    def disconnect(
        self,
        receiver: Callable[..., Any] | None = None,
        sender: object = None,
        dispatch_uid: Hashable | None = None,
    ) -> bool:
        """Disconnect a receiver; give the same ``sender`` and ``dispatch_uid``
        that it was connected with.

        Returns:
            ``True`` if a connection was removed, ``False`` if there was none.

        .. versionadded:: 0.1
        """
        if receiver is None and dispatch_uid is None:
            raise TypeError(
                "Signal.disconnect() needs the receiver or the dispatch_uid it "
                "was connected with."
            )
        key, skey = _refs.connection_keys(receiver, sender, dispatch_uid)
        with self.lock:
            if self._dead_records or self._dead_senders:
                self._purge()
            record = self._remove(skey, key)
            if record is not None and self._plans:
                self._invalidate()
        return record is not None

    def _is_connected(
        self,
        receiver: Callable[..., Any] | None,
        sender: object = None,
        dispatch_uid: Hashable | None = None,
    ) -> bool:
        key, skey = _refs.connection_keys(receiver, sender, dispatch_uid)
        with self.lock:
            self._purge()
            record = self._by_sender.get(skey, {}).get(key)
            return record is not None and record() is not None

    def has_listeners(self, sender: object = None) -> bool:
        """Tell whether a send from ``sender`` would reach any live receiver.

        ``has_listeners()`` counts only receivers that hear every sender, as in
        Django.

        .. versionadded:: 0.1
        """
        if not self._by_sender:
            return False
        try:
            plan = self._plans[id(sender)]
        except KeyError:
            plan = self._resolve(sender)
        for group in plan:
            for record in group:
                if record() is not None:
                    return True
        return False

    @property
    def receivers(self) -> list[Record]:
        """The live connections, in dispatch order.

        Their structure is private; their number and truthiness are public.
        Use :meth:`receivers_info` to inspect them.
        """
        with self.lock:
            self._purge()
            return self._ordered(
                record
                for connections in self._by_sender.values()
                for record in connections.values()
            )

    def receivers_info(self, sender: object = _ALL) -> list[ReceiverInfo]:
        """Describe the live connections, in the order a send calls them.

        Args:
            sender: List only the receivers that a send from this sender would
                call. By default, every connection is listed.

        .. versionadded:: 0.1
        """
        if sender is _ALL:
            records: Iterable[Record] = self.receivers
        else:
            plan = self._resolve(sender)
            records = sorted(
                (record for group in plan for record in group),
                key=lambda record: (-record.priority, record.order),
            )
        infos = []
        for record in records:
            info = self._info(record)
            if info is not None:
                infos.append(info)
        return infos

    def _info(self, record: Record) -> ReceiverInfo | None:
        """Describe one connection, or ``None`` if its receiver is gone."""
        receiver = record()
        if receiver is None:
            return None
        module, line = _refs.source_location(receiver)
        key = record.key
        holder = self._sender_refs.get(record.sender_key)
        return ReceiverInfo(
            receiver=receiver,
            qualname=_refs.describe(receiver),
            module=module,
            line=line,
            sender=None if holder is None else holder(),
            dispatch_uid=key.uid if isinstance(key, _refs.UidKey) else None,
            priority=record.priority,
            weak=record.weak,
            is_async=record.is_async,
            options=dict(record.options or {}),
            file=_source_file(receiver),
        )

    # -- sending --------------------------------------------------------------

    def send(self, sender: Any, **named: Any) -> Responses:
        """Call every receiver connected for ``sender``, in order.

        Each receiver gets ``signal=self``, ``sender=sender`` and the named
        arguments. Synchronous receivers run first, in priority then
        registration order. Async receivers then run on a new event loop, each
        in a task of its own, concurrently, as :meth:`asend` runs them; what
        they set in context variables is copied back to the caller.
        An exception from a receiver propagates at once: later synchronous
        receivers are not called, and waiting async receivers are cancelled.
        See :meth:`send_robust`.

        Every receiver that is alive when the send begins is called, even if
        an earlier receiver drops the last reference to it.

        Returns:
            A list of ``(receiver, response)`` pairs, synchronous receivers
            first.

        Raises:
            RuntimeError: There are async receivers to run and this thread is
                running an event loop, which waiting here would block: use
                :meth:`asend` from async code.

        .. versionadded:: 0.1
        """
        if _observed:  # the observation hook's whole cost when unobserved
            return _observe.send(self, sender, named, False)
        if not self._by_sender:
            return []
        try:
            plan = self._plans[id(sender)]
        except KeyError:
            plan = self._resolve(sender)
        if not plan:
            return []
        plain, special = plan
        if special:
            return self._send_all(plan, sender, named, False, "Signal.send()")
        # The plain case of _start, inlined: this is the hot path.
        sent = self._plain_loop(plain, self, sender, named)
        if sent is None:
            return self._switch_loop(plain, sender, named, robust=False)
        return sent

    def send_robust(self, sender: Any, **named: Any) -> Responses:
        """Like :meth:`send`, but an exception from a receiver does not stop
        the others.

        An ``Exception`` is returned as that receiver's response (with its
        ``__traceback__``) and logged at ERROR to the ``tocsin`` logger, with
        the exception info. Other exceptions (``KeyboardInterrupt``,
        ``SystemExit``) propagate.

        .. versionadded:: 0.1
        """
        if _observed:
            return _observe.send(self, sender, named, True)
        if not self._by_sender:
            return []
        plan = self._plan(sender)
        if not plan:
            return []
        return self._send_all(plan, sender, named, True, "Signal.send_robust()")

    async def asend(self, sender: Any, **named: Any) -> Responses:
        """Send from async code.

        Synchronous receivers are called first, in order, on the event loop
        itself (each blocks it only for as long as it runs; Django runs them
        in a worker thread instead). Then every async receiver runs in a task
        of its own, as the children of an ``asyncio.TaskGroup`` (as in
        Django 6.1): they start in order, share one copy of the caller's
        context, and what they set is copied back to the caller at the end.
        A failure cancels the receivers still waiting and is raised (several
        failures in one pass as an ``ExceptionGroup``); cancelling the caller
        cancels them all. On Python 3.12+ the tasks start eagerly, so a
        receiver that never waits costs no loop iteration.

        Returns:
            ``(receiver, response)`` pairs, synchronous receivers first.

        .. versionadded:: 0.1
        """
        if _observed:
            return await _observe.asend(self, sender, named, False)
        if not self._by_sender:
            return []
        return await self._asend_all(sender, named, False)

    async def asend_robust(self, sender: Any, **named: Any) -> Responses:
        """:meth:`asend` with the error handling of :meth:`send_robust`.

        .. versionadded:: 0.1
        """
        if _observed:
            return await _observe.asend(self, sender, named, True)
        if not self._by_sender:
            return []
        return await self._asend_all(sender, named, True)

    def _send_all(
        self,
        plan: Receivers,
        sender: Any,
        named: dict[str, Any],
        robust: bool,
        what: str,
    ) -> Responses:
        """A synchronous send: async receivers run to their end on a new loop."""
        responses, calls = self._start(*plan, sender, named, robust)
        if calls:
            responses += _async.run_blocking(
                self._run_async(calls, sender, named, robust), what
            )
        return responses

    async def _asend_all(
        self, sender: Any, named: dict[str, Any], robust: bool
    ) -> Responses:
        plan = self._plan(sender)
        if not plan:
            return []
        responses, calls = self._start(*plan, sender, named, robust)
        if calls:
            responses += await self._run_async(calls, sender, named, robust)
        return responses

    def _plan(self, sender: object) -> Plan:
        try:
            return self._plans[id(sender)]
        except KeyError:
            return self._resolve(sender)

    def _start(
        self,
        plain: tuple[Record, ...],
        special: tuple[Record, ...],
        sender: Any,
        named: dict[str, Any],
        robust: bool,
    ) -> tuple[Responses, list[tuple[Callable[..., Any], bool]]]:
        """Call the synchronous receivers; return the async ones to run.

        Returns:
            The responses so far, and ``(receiver, robust)`` for each async
            receiver to run, in order.
        """
        # Resolved before any receiver runs: see the module docstring.
        later = [record() for record in special]
        if plain:
            loop = self._robust_loop if robust else self._plain_loop
            responses = loop(plain, self, sender, named)
            if responses is None:
                responses = self._switch_loop(plain, sender, named, robust)
        else:
            # No loop checked the names: check them before any receiver runs.
            _dispatch.check_names(named)
            responses = []
        calls: list[tuple[Callable[..., Any], bool]] = []
        for record, receiver in zip(special, later, strict=True):
            if receiver is None:
                continue
            how = _options.NOW_ROBUST if robust else _options.NOW
            if record.options:
                how, _ = _options.deliver_by(
                    record.options, receiver, self, sender, named, robust
                )
                if how == _options.DEFERRED:
                    responses.append((receiver, None))
                    continue
            if record.is_async:
                calls.append((receiver, how == _options.NOW_ROBUST))
            elif how == _options.NOW_ROBUST:
                try:
                    response = receiver(signal=self, sender=sender, **named)
                except Exception as error:
                    self._log_robust_failure(receiver, error)
                    response = error
                responses.append((receiver, response))
            else:
                responses.append(
                    (receiver, receiver(signal=self, sender=sender, **named))
                )
        return responses, calls

    async def _run_async(
        self,
        calls: list[tuple[Callable[..., Any], bool]],
        sender: Any,
        named: dict[str, Any],
        robust: bool,
    ) -> Responses:
        """Run the async receivers, each in its own task (see ``_async``)."""
        awaitables: list[Awaitable[Any]] = []
        try:
            for receiver, robust_one in calls:
                awaitable = receiver(signal=self, sender=sender, **named)
                if robust_one and not robust:
                    awaitable = _async.caught(awaitable)
                awaitables.append(awaitable)
        except BaseException:
            _async.close_all(awaitables)
            raise
        results, failed = await _async.run_all(awaitables, robust)
        for index in failed:
            self._log_robust_failure(calls[index][0], results[index])
        return list(zip((receiver for receiver, _ in calls), results, strict=True))

    def _switch_loop(
        self,
        plain: tuple[Record, ...],
        sender: Any,
        named: dict[str, Any],
        robust: bool,
    ) -> Responses:
        """Call ``plain`` with the loop for these names, and keep it as the last."""
        loop, keep = _dispatch.loop_for(named, robust)
        if keep:
            if robust:
                self._robust_loop = loop
            else:
                self._plain_loop = loop
        responses = loop(plain, self, sender, named)
        assert responses is not None  # the loop was chosen for these names
        return responses

    def _log_robust_failure(
        self, receiver: Callable[..., Any], error: BaseException
    ) -> None:
        import logging

        logging.getLogger("tocsin").error(
            "Error calling %s in Signal.send_robust() (%s)",
            _refs.describe(receiver),
            error,
            exc_info=error,
        )


def _source_file(receiver: object) -> str | None:
    code = _refs._code_of(_refs._unwrap(receiver))
    return None if code is None else code.co_filename


def _caller_stacklevel() -> int:
    """The ``stacklevel`` of a warning about the code that called into tocsin."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level
