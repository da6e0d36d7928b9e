"""How a ``Signal`` keeps its connections, and the plan it caches per sender.

- Connections live in ``_by_sender``: a dict from sender key to a dict from
  receiver key to *record* (see ``_refs``). Connect, disconnect and lookup are
  O(1); dict order is registration order.
- A *plan* is what a send from one sender reaches: its live records in
  dispatch order (priority, then registration), split into plain synchronous
  receivers and the rest. Plans are cached by ``id(sender)`` and thrown away
  on any change of the connections (copy-on-write: a concurrent send keeps
  the plan it holds).
- A cached plan must never outlive its sender, or an object reusing the
  address would get it: each holds a weak reference to its sender whose
  callback evicts it. A sender that cannot be weakly referenced (a string, an
  integer, a tuple) is held strongly by its plan instead, in a bounded cache,
  so that senders made anew for each send cannot grow memory.
- Weak-reference callbacks run inside garbage collection, possibly while
  this thread holds the lock, so they never lock and never raise: they drop
  cached plans and queue the dead entry; the next locked operation purges it.
"""

from __future__ import annotations

import functools
import itertools
import threading
import weakref

from . import _refs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterable
    from typing import Any

    from ._refs import Record

    # The plain receivers, then the rest (async ones, ones with options).
    Receivers = tuple[tuple[Record, ...], tuple[Record, ...]]
    Plan = Receivers | tuple[()]

__all__: list[str] = []

_ANY_KEY = _refs.ANY_SENDER
_HELD_PLANS = 256  # senders held strongly by cached plans, at most, per signal


class Connections:
    """The connections of a signal and its cache of plans (a base of ``Signal``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._by_sender: dict[Hashable, dict[Hashable, Record]] = {}
        self._sender_refs: dict[Hashable, Callable[[], object]] = {}
        self._dead_records: list[Record] = []
        self._dead_senders: list[Hashable] = []
        # Bound once: a bound method per connection would cost 64 bytes each.
        self._on_receiver_death = self._receiver_died
        self._plan_refs: dict[int, weakref.ref[Any]] = {}
        self._invalidate()

    def _invalidate(self) -> None:
        self._plans: dict[int, Plan] = {}
        # Senders that cannot be weakly referenced, held by their cached plan
        # so that their id() is not reused; oldest first.
        self._held: dict[int, object] = {}

    def _resolve(self, sender: object) -> Plan:
        """Compute (and cache, where that is safe) the plan for ``sender``."""
        with self.lock:
            self._purge()
            # A weak-reference callback may invalidate (rebind) the caches
            # while this runs, without the lock. Storing into the dicts read
            # here, before the connections, then only ever caches into a dict
            # that is already discarded, never a plan computed too early.
            plans, held = self._plans, self._held
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
            if sender is None or self._track(sender):
                plans[id(sender)] = plan
            else:
                if len(held) >= _HELD_PLANS:
                    oldest = next(iter(held))
                    del held[oldest]
                    plans.pop(oldest, None)
                held[id(sender)] = sender
                plans[id(sender)] = plan
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


def _identity(value: object) -> object:
    return value
