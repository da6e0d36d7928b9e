"""``Signal``: connect receivers, then send to them.

How it is built, for a reader of this file:

- Connections live in ``_by_sender``: a dict from sender key to a dict from
  receiver key to *record* (see ``_refs``). Connect, disconnect and lookup are
  O(1); dict order is registration order.
- ``send`` never takes the lock. It looks up a *plan* for ``id(sender)`` in
  ``_plans``: the records that a send from that sender reaches, already in
  dispatch order (priority, then registration), split into plain synchronous
  receivers and the rest (async receivers, receivers with connect options).
  A sender that has nobody listening maps to the empty plan ``()``.
- Any change to the connections throws every plan away (copy-on-write: a
  concurrent ``send`` keeps using the plan it already holds).
- Plans are keyed by ``id(sender)``, so a cached plan must never outlive its
  sender, or a new object reusing the address would get the old plan. Each
  cached plan therefore holds a weak reference to its sender whose callback
  evicts it before the address can be reused. A sender that cannot be weakly
  referenced is cached only while a connection holds it strongly.
- Weak-reference callbacks run inside garbage collection, possibly while this
  thread holds the lock, so they never lock and never raise: they drop cached
  plans and queue the dead entry; the next locked operation purges it.
- Plain receivers are called by the loops of ``_dispatch`` (compiled per set
  of keyword names); async receivers are started by ``_eager`` and get a task
  only if they wait; receivers with connect options go to their option's
  ``ConnectOption`` handler.
"""

from __future__ import annotations

import collections
import contextvars
import functools
import itertools
import threading
import warnings
import weakref

from . import _dispatch, _eager, _refs

# typing costs more to import than the rest of the core together; the core
# needs it only for the type checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import (
        Awaitable,
        Callable,
        Hashable,
        Iterable,
        Sequence,
    )
    from typing import Any, NamedTuple

    from ._dispatch import Loop, Responses
    from ._refs import Record

    Plan = tuple[tuple[Record, ...], tuple[Record, ...]] | tuple[()]

__all__ = ["ReceiverInfo", "Signal", "WeakReceiverWarning"]

_ANY_KEY: Hashable = id(None)  # receivers connected with sender=None hear everyone
_ALL = object()  # receivers_info() default: every connection, whatever its sender
_NO_VALUE = object()


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

else:
    _ReceiverInfoFields = collections.namedtuple(
        "_ReceiverInfoFields",
        "receiver qualname module line sender dispatch_uid priority weak is_async options",
    )


class ReceiverInfo(_ReceiverInfoFields):
    """One live connection, as listed by :meth:`Signal.receivers_info`.

    Fields: ``receiver``, its ``qualname``, ``module`` and ``line``;
    ``sender``, the sender filter (``None`` when the receiver hears every
    sender); ``dispatch_uid``; ``priority``; ``weak``; ``is_async``; and
    ``options``, the connect options beyond Django's, such as
    ``{"on_commit": True}``.

    .. versionadded:: 0.1
    """

    __slots__ = ()


# Connect options beyond Django's (``on_commit=True``, ...) are provided by the
# modules that implement them; the core only routes receivers that use one to
# the option's handler, off the plain-receiver loop.
_option_handlers: dict[str, ConnectOption] = {}
_option_providers = {"on_commit": "tocsin.transaction"}


class ConnectOption:
    """How receivers connected with one extra option are validated and called.

    Subclasses are registered with :func:`register_connect_option`. Private to
    tocsin's own modules for now.
    """

    name: str

    def validate(self, value: Any, receiver: Callable[..., Any]) -> Any:
        """Return the value to store, or ``None`` to ignore the option."""
        return value

    def call(
        self,
        value: Any,
        receiver: Callable[..., Any],
        signal: Signal,
        sender: Any,
        named: dict[str, Any],
        robust: bool,
    ) -> Any:
        """Deliver one send to ``receiver``; the return value is its response."""
        raise NotImplementedError


def register_connect_option(handler: ConnectOption) -> None:
    _option_handlers[handler.name] = handler


def _option_handler(name: str) -> ConnectOption:
    if name not in _option_handlers and name in _option_providers:
        __import__(_option_providers[name])
    try:
        return _option_handlers[name]
    except KeyError:
        raise TypeError(
            f"Signal.connect() got an unexpected keyword argument {name!r}"
        ) from None


class Signal:
    """A named event that receivers can connect to and senders can send.

    Args:
        use_caching: Accepted for compatibility with ``django.dispatch``;
            tocsin always caches the receivers of each sender.
        name: Shown in ``repr()`` and in the inspection tools.
        doc: What the signal means, who sends it and with which arguments.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        use_caching: bool = False,
        *,
        name: str | None = None,
        doc: str | None = None,
    ) -> None:
        self.use_caching = use_caching
        self.name = name
        if doc is not None:
            self.__doc__ = doc
        self.lock = threading.Lock()
        self._by_sender: dict[Hashable, dict[Hashable, Record]] = {}
        self._sender_refs: dict[Hashable, Callable[[], object]] = {}
        self._next_order = itertools.count().__next__
        self._dead_records: list[Record] = []
        self._dead_senders: list[Hashable] = []
        # Bound once: a bound method per connection would cost 64 bytes each.
        self._on_receiver_death = self._receiver_died
        self._plain_loop: Loop = _dispatch.no_loop_yet
        self._robust_loop: Loop = _dispatch.no_loop_yet
        self._plan_refs: dict[int, weakref.ref[Any]] = {}
        self._invalidate()

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
        self._connect(receiver, sender, weak, dispatch_uid, priority, options)

    def _connect(
        self,
        receiver: Callable[..., Any],
        sender: object,
        weak: bool,
        dispatch_uid: Hashable | None,
        priority: float,
        options: dict[str, Any],
        stacklevel: int = 3,
    ) -> None:
        if not callable(receiver):
            raise TypeError("Signal receivers must be callable.")
        if not _refs.accepts_kwargs(receiver):
            raise ValueError(
                "Signal receivers must accept keyword arguments (**kwargs)."
            )
        if (
            isinstance(priority, bool)
            or not isinstance(priority, int | float)
            or priority != priority  # NaN would leave the order undefined
        ):
            raise TypeError(
                f"priority must be a number (higher runs first), not {priority!r}."
            )
        stored_options = {}
        for name, value in options.items():
            value = _option_handler(name).validate(value, receiver)
            if value is not None:
                stored_options[name] = value
        if weak and _refs.is_transient_function(receiver):
            warnings.warn(
                f"The receiver {_refs.describe(receiver)} is a lambda or a local "
                "function connected with a weak reference: it will be dropped "
                "silently once nothing else refers to it. Connect it with "
                "weak=False to keep it.",
                WeakReceiverWarning,
                stacklevel=stacklevel,
            )
        key, skey = self._keys(receiver, sender, dispatch_uid)
        with self.lock:
            self._purge()
            connections = self._by_sender.get(skey)
            if connections is not None and key in connections:
                return
            record = _refs.make_record(receiver, weak, self._on_receiver_death)
            record.key = key
            record.sender_key = skey
            record.priority = priority
            record.order = self._next_order()
            record.is_async = _refs.is_async_receiver(receiver)
            record.options = stored_options or None
            if connections is None:
                if sender is not None:
                    self._sender_refs[skey] = self._hold_sender(sender, skey)
                connections = self._by_sender[skey] = {}
            connections[key] = record
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
        key, skey = self._keys(receiver, sender, dispatch_uid)
        with self.lock:
            self._purge()
            record = self._remove(skey, key)
            if record is not None:
                self._invalidate()
        return record is not None

    def _is_connected(
        self,
        receiver: Callable[..., Any] | None,
        sender: object = None,
        dispatch_uid: Hashable | None = None,
    ) -> bool:
        key, skey = self._keys(receiver, sender, dispatch_uid)
        with self.lock:
            self._purge()
            record = self._by_sender.get(skey, {}).get(key)
            return record is not None and record() is not None

    @staticmethod
    def _keys(
        receiver: Callable[..., Any] | None,
        sender: object,
        dispatch_uid: Hashable | None,
    ) -> tuple[Hashable, Hashable]:
        """The keys of a connection: (receiver or uid, sender)."""
        if dispatch_uid is not None:
            key: Hashable = ("uid", dispatch_uid)
        else:
            key = _refs.receiver_key(receiver)  # type: ignore[arg-type]
        return key, _ANY_KEY if sender is None else _refs.sender_key(sender)

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
        if not plan:
            return False
        return any(record() is not None for group in plan for record in group)

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
            receiver = record()
            if receiver is None:
                continue
            module, line = _refs.source_location(receiver)
            key = record.key
            is_uid = isinstance(key, tuple) and len(key) == 2 and key[0] == "uid"
            holder = self._sender_refs.get(record.sender_key)
            infos.append(
                ReceiverInfo(
                    receiver=receiver,
                    qualname=_refs.describe(receiver),
                    module=module,
                    line=line,
                    sender=None if holder is None else holder(),
                    dispatch_uid=key[1] if is_uid else None,  # type: ignore[index]
                    priority=record.priority,
                    weak=record.weak,
                    is_async=record.is_async,
                    options=dict(record.options or {}),
                )
            )
        return infos

    # -- sending --------------------------------------------------------------

    def send(self, sender: Any, **named: Any) -> Responses:
        """Call every receiver connected for ``sender``, in order.

        Each receiver gets ``signal=self``, ``sender=sender`` and the named
        arguments. Synchronous receivers run first, in priority then
        registration order; async receivers then run concurrently on a fresh
        event loop (in a helper thread when this thread already runs one).
        An exception from a receiver propagates at once: later receivers are
        not called. See :meth:`send_robust`.

        Returns:
            A list of ``(receiver, response)`` pairs, synchronous receivers
            first.

        .. versionadded:: 0.1
        """
        # The body of _call_plain, inlined: this is the hot path.
        if not self._by_sender:
            return []
        try:
            plan = self._plans[id(sender)]
        except KeyError:
            plan = self._resolve(sender)
        if not plan:
            return []
        plain, special = plan
        if plain:
            responses = self._plain_loop(plain, self, sender, named)
            if responses is None:
                responses = self._switch_loop(plain, sender, named, robust=False)
        else:
            responses = []
        if special:
            responses += self._send_special(special, sender, named, robust=False)
        return responses

    def send_robust(self, sender: Any, **named: Any) -> Responses:
        """Like :meth:`send`, but an exception from a receiver does not stop
        the others.

        The exception is returned as that receiver's response (with its
        ``__traceback__``) and logged at ERROR to the ``tocsin`` logger, with
        the exception info.

        .. versionadded:: 0.1
        """
        if not self._by_sender:
            return []
        responses, special = self._call_plain(sender, named, robust=True)
        if special:
            responses += self._send_special(special, sender, named, robust=True)
        return responses

    async def asend(self, sender: Any, **named: Any) -> Responses:
        """Send from async code.

        Synchronous receivers are called first, in order, on the event loop
        itself (each blocks it only for as long as it runs). Then each async
        receiver starts at once, in order, and those that wait for something
        are awaited concurrently, as by ``asyncio.gather`` but without a task
        for the receivers that never wait. If async receivers raise, all of
        them still run to their end, then the first exception propagates.
        Django runs the synchronous receivers in a worker thread instead.

        Returns:
            ``(receiver, response)`` pairs, synchronous receivers first.

        .. versionadded:: 0.1
        """
        if not self._by_sender:
            return []
        responses, special = self._call_plain(sender, named, robust=False)
        if special:
            responses += await self._asend_special(special, sender, named, robust=False)
        return responses

    async def asend_robust(self, sender: Any, **named: Any) -> Responses:
        """:meth:`asend` with the error handling of :meth:`send_robust`.

        .. versionadded:: 0.1
        """
        if not self._by_sender:
            return []
        responses, special = self._call_plain(sender, named, robust=True)
        if special:
            responses += await self._asend_special(special, sender, named, robust=True)
        return responses

    def _call_plain(
        self, sender: Any, named: dict[str, Any], robust: bool
    ) -> tuple[Responses, tuple[Record, ...]]:
        """Call the plain receivers for ``sender``; return the rest to call."""
        try:
            plan = self._plans[id(sender)]
        except KeyError:
            plan = self._resolve(sender)
        if not plan:
            return [], ()
        plain, special = plan
        if not plain:
            return [], special
        loop = self._robust_loop if robust else self._plain_loop
        responses = loop(plain, self, sender, named)
        if responses is None:
            responses = self._switch_loop(plain, sender, named, robust)
        return responses, special

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

    # -- the receivers that are not plain synchronous calls -------------------

    def _split_special(
        self,
        records: Sequence[Record],
        sender: Any,
        named: dict[str, Any],
        robust: bool,
    ) -> tuple[Responses, list[Callable[..., Any]]]:
        """Deliver to receivers with connect options; return the async rest."""
        # The plain loops reject reserved names when they are compiled; this
        # path builds no loop, so check here, before any receiver runs.
        _dispatch.check_names(named)
        responses: Responses = []
        awaitables: list[Callable[..., Any]] = []
        for record in records:
            receiver = record()
            if receiver is None:
                continue
            if record.options:
                for name, value in record.options.items():
                    response = _option_handlers[name].call(
                        value, receiver, self, sender, named, robust
                    )
                responses.append((receiver, response))
            else:
                awaitables.append(receiver)
        return responses, awaitables

    def _send_special(
        self,
        records: Sequence[Record],
        sender: Any,
        named: dict[str, Any],
        robust: bool,
    ) -> Responses:
        responses, async_receivers = self._split_special(records, sender, named, robust)
        if async_receivers:
            gathered = self._gather(async_receivers, sender, named, robust)
            responses += _run_blocking(gathered)
        return responses

    async def _asend_special(
        self,
        records: Sequence[Record],
        sender: Any,
        named: dict[str, Any],
        robust: bool,
    ) -> Responses:
        responses, async_receivers = self._split_special(records, sender, named, robust)
        if async_receivers:
            responses += await self._gather(async_receivers, sender, named, robust)
        return responses

    async def _gather(
        self,
        receivers: list[Callable[..., Any]],
        sender: Any,
        named: dict[str, Any],
        robust: bool,
    ) -> Responses:
        """Run async receivers concurrently; see the module ``_eager``.

        The receivers start at once, in order, in one copy of the context;
        those that suspend are then awaited together. A failure is that
        receiver's response if ``robust``; otherwise every receiver still runs
        to its end, then the first failure (in receiver order) propagates.
        """
        kwargs = {"signal": self, "sender": sender, **named}
        results: list[Any] = [None] * len(receivers)
        waiting, failed = _eager.start_all(
            enumerate(receivers), kwargs, results, contextvars.copy_context()
        )
        if waiting:
            import asyncio

            outcomes = await asyncio.gather(*(_outcome(rest) for _, rest in waiting))
            failed += [
                (index, value)
                for (index, _), (ok, value) in zip(waiting, outcomes, strict=True)
                if not ok
            ]
        failures: list[Exception] = []
        for index, failure in sorted(failed, key=lambda item: item[0]):
            results[index] = self._failed(receivers[index], failure, robust, failures)
        if failures:
            raise failures[0]
        return list(zip(receivers, results, strict=True))

    def _failed(
        self,
        receiver: Callable[..., Any],
        error: Exception,
        robust: bool,
        failures: list[Exception],
    ) -> Exception | None:
        """Log a robust failure and return it as the response, or keep it."""
        if robust:
            self._log_robust_failure(receiver, error)
            return error
        failures.append(error)
        return None

    # -- plans, and keeping them honest -----------------------------------------

    def _invalidate(self) -> None:
        self._plans: dict[int, Plan] = {}
        self._value_plans: dict[Hashable, Plan] = {}

    def _resolve(self, sender: object) -> Plan:
        """Compute (and cache, where that is safe) the plan for ``sender``."""
        is_value = isinstance(sender, _refs._VALUE_SENDER_TYPES)
        if is_value:
            plan = self._value_plans.get(_refs.sender_key(sender))
            if plan is not None:
                return plan
        with self.lock:
            self._purge()
            # A weak-reference callback may invalidate (rebind) the caches
            # while this runs, without the lock. Storing into the dicts read
            # here, before the connections, then only ever caches into a dict
            # that is already discarded, never a plan computed too early.
            plans, value_plans = self._plans, self._value_plans
            any_records = self._by_sender.get(_ANY_KEY, {})
            if sender is None:
                own: dict[Hashable, Record] = {}
            else:
                own = self._by_sender.get(_refs.sender_key(sender), {})
            live = [
                record
                for record in itertools.chain(any_records.values(), own.values())
                if record() is not None
            ]
            plan = self._split(self._ordered(live))
            if is_value:
                value_plans[_refs.sender_key(sender)] = plan
            elif sender is None or own:
                # None lives forever; an own sender is kept alive (or tracked
                # by a weak reference) by its connections.
                plans[id(sender)] = plan
            elif self._track(sender):
                plans[id(sender)] = plan
            # else: not cacheable safely, so resolved again on each send
            return plan

    def _track(self, sender: object) -> bool:
        """Make sure a plan cached for ``sender`` is evicted when it dies.

        The weak references outlive invalidations (they go with their sender),
        so that no plan can ever be cached under an id without one.
        """
        sender_id = id(sender)
        if sender_id in self._plan_refs:
            return True
        try:
            evict = functools.partial(self._forget_plan, sender_id)
            self._plan_refs[sender_id] = weakref.ref(sender, evict)
        except TypeError:
            return False
        return True

    @staticmethod
    def _ordered(records: Iterable[Record]) -> list[Record]:
        return sorted(records, key=lambda record: (-record.priority, record.order))

    @staticmethod
    def _split(records: list[Record]) -> Plan:
        if not records:
            return ()
        plain = tuple(r for r in records if not (r.is_async or r.options))
        special = tuple(r for r in records if r.is_async or r.options)
        return (plain, special)

    def _hold_sender(self, sender: object, skey: Hashable) -> Callable[[], object]:
        if isinstance(sender, _refs._VALUE_SENDER_TYPES):
            return functools.partial(_identity, sender)
        try:
            return weakref.ref(sender, functools.partial(self._sender_died, skey))
        except TypeError:
            # Held strongly while connected, so that its id() cannot be reused.
            return functools.partial(_identity, sender)

    def _remove(self, skey: Hashable, key: Hashable) -> Record | None:
        connections = self._by_sender.get(skey)
        if connections is None:
            return None
        record = connections.pop(key, None)
        if not connections:
            del self._by_sender[skey]
            self._sender_refs.pop(skey, None)
        return record

    def _purge(self) -> None:
        """Drop connections whose receiver or sender died. Hold the lock."""
        while self._dead_senders:
            skey = self._dead_senders.pop()
            self._by_sender.pop(skey, None)
            self._sender_refs.pop(skey, None)
        while self._dead_records:
            record = self._dead_records.pop()
            connections = self._by_sender.get(record.sender_key)
            if connections is not None and connections.get(record.key) is record:
                self._remove(record.sender_key, record.key)

    # Weak-reference callbacks: no lock, no exception (see the module docstring).

    def _receiver_died(self, record: Record) -> None:
        self._dead_records.append(record)
        self._invalidate()

    def _sender_died(self, skey: Hashable, ref: object) -> None:
        self._dead_senders.append(skey)
        self._invalidate()

    def _forget_plan(self, sender_id: int, ref: object) -> None:
        self._plans.pop(sender_id, None)
        self._plan_refs.pop(sender_id, None)


async def _outcome(awaitable: Awaitable[Any]) -> tuple[bool, Any]:
    """Await ``awaitable``: ``(True, result)``, or ``(False, exception)``.

    A receiver may return an exception as its result (robust sends do), so a
    raised one is told apart here, not by its type.
    """
    try:
        return True, await awaitable
    except Exception as error:
        return False, error


def _identity(value: object) -> object:
    return value


# Synchronous code can run inside an event loop's task and still be able to
# await on that loop: SQLAlchemy's AsyncSession runs flushes (and so model
# signals) in a greenlet that way. An integration that knows such a context
# registers a bridge: a function that returns how to await there, or None
# elsewhere. Private to tocsin's own modules.
_async_bridges: list[Callable[[], Callable[[Any], Any] | None]] = []


def register_async_bridge(bridge: Callable[[], Callable[[Any], Any] | None]) -> None:
    if bridge not in _async_bridges:
        _async_bridges.append(bridge)


def _run_blocking(awaitable: Any) -> Any:
    """Run ``awaitable`` to completion from synchronous code.

    Where a registered bridge can await on the running loop, it does.
    Otherwise it runs on a new event loop in this thread, or in a helper
    thread when this thread is already running a loop. Context variables set
    by the awaitable are copied back to the caller's context.
    """
    for bridge in _async_bridges:
        await_here = bridge()
        if await_here is not None:
            return await_here(awaitable)
    import asyncio

    context = contextvars.copy_context()
    outcome: list[Any] = []
    failed: list[bool] = []

    def run() -> None:
        loop = asyncio.new_event_loop()
        try:
            task = loop.create_task(awaitable, context=context)
            outcome.append(loop.run_until_complete(task))
        except BaseException as error:
            outcome.append(error)
            failed.append(True)
        finally:
            # As asyncio.run() does: receivers still pending (because another
            # one failed) or tasks they started are cancelled, so that their
            # cleanup runs before the loop closes.
            pending = asyncio.all_tasks(loop)
            for leftover in pending:
                leftover.cancel()
            if pending:
                loop.run_until_complete(
                    asyncio.gather(*pending, return_exceptions=True)
                )
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    try:
        asyncio.get_running_loop()
        in_event_loop = True
    except RuntimeError:
        in_event_loop = False
    if not in_event_loop:
        run()
    else:
        helper = threading.Thread(target=run, name="tocsin-async-receivers")
        helper.start()
        helper.join()
    for variable, value in context.items():
        if variable.get(_NO_VALUE) is not value:
            variable.set(value)
    if failed:
        raise outcome[0]
    return outcome[0]
