"""Weak references: receivers and senders do not outlive their owners, and a
recycled ``id()`` never reaches the receivers of the object that had it."""

from __future__ import annotations

import builtins
import functools
import gc
import tracemalloc
import weakref
from collections.abc import Callable
from typing import Any

import pytest

import tocsin._connections
import tocsin._refs
import tocsin._signal
from tocsin import Signal


def collect() -> None:
    for _ in range(3):
        gc.collect()


class Handler:
    def __init__(self, name: str = "handler") -> None:
        self.name = name

    def __call__(self, **kwargs: Any) -> str:
        return self.name

    def on_event(self, **kwargs: Any) -> str:
        return f"{self.name}.on_event"


class Sender:
    pass


def make_function(result: str) -> Callable[..., str]:
    def receiver(**kwargs: Any) -> str:
        return result

    return receiver


def module_receiver(**kwargs: Any) -> str:
    return "module"


def receivers_of(signal: Signal, sender: object = None) -> list[Any]:
    return [receiver for receiver, _ in signal.send(sender)]


# -- receivers -------------------------------------------------------------------


def test_a_weakly_held_function_is_gone_from_the_next_send() -> None:
    signal = Signal()
    holder = [make_function("local")]
    with pytest.warns(UserWarning, match="weak=False"):
        signal.connect(holder[0])
    signal.connect(module_receiver)
    assert len(signal.send(None)) == 2

    del holder[0]
    collect()

    assert receivers_of(signal) == [module_receiver]
    assert len(signal.receivers) == 1


def test_a_bound_method_lives_as_long_as_its_instance() -> None:
    signal = Signal()
    handler = Handler()
    signal.connect(handler.on_event)  # the bound method itself is temporary
    collect()

    assert [r for _, r in signal.send(None)] == ["handler.on_event"]

    instance = weakref.ref(handler)
    del handler
    collect()

    assert instance() is None  # connecting did not keep it alive
    assert signal.send(None) == []
    assert signal.receivers == []


def test_a_weakly_held_callable_object_dies_with_its_last_reference() -> None:
    signal = Signal()
    handler = Handler()
    signal.connect(handler)
    assert [r for _, r in signal.send(None)] == ["handler"]

    del handler
    collect()

    assert signal.send(None) == []
    assert signal.has_listeners() is False


def test_a_strongly_held_receiver_is_kept_alive() -> None:
    signal = Signal()
    handler = Handler()
    signal.connect(handler, weak=False)
    signal.connect(handler.on_event, weak=False)
    signal.connect(make_function("function"), weak=False)
    alive = weakref.ref(handler)

    del handler
    collect()

    assert alive() is not None
    assert [r for _, r in signal.send(None)] == [
        "handler",
        "handler.on_event",
        "function",
    ]


def test_a_weakly_held_partial_follows_the_partial_object() -> None:
    signal = Signal()
    partial = functools.partial(module_receiver)
    signal.connect(partial)
    assert receivers_of(signal) == [partial]

    del partial
    collect()

    assert signal.send(None) == []


def test_a_dead_receiver_frees_its_connection_and_its_uid() -> None:
    signal = Signal()
    handler = Handler("old")
    signal.connect(handler, dispatch_uid="uid")
    del handler
    collect()

    replacement = Handler("new")
    signal.connect(replacement, dispatch_uid="uid")

    assert [r for _, r in signal.send(None)] == ["new"]


def test_a_dead_receiver_does_not_keep_the_signal_alive() -> None:
    signal = Signal()
    handler = Handler()
    signal.connect(handler)
    signal.send(None)
    signal_ref = weakref.ref(signal)

    del signal
    collect()
    assert signal_ref() is None
    del handler  # its weak-reference callback must not fail now
    collect()


# -- senders ---------------------------------------------------------------------


def test_connecting_with_a_sender_does_not_keep_it_alive() -> None:
    signal = Signal()
    sender = Sender()
    signal.connect(module_receiver, sender=sender)
    signal.send(sender)
    alive = weakref.ref(sender)

    del sender
    collect()

    assert alive() is None
    assert signal.receivers == []


def test_sending_from_an_object_does_not_keep_it_alive() -> None:
    signal = Signal()
    signal.connect(module_receiver)
    sender = Sender()
    signal.send(sender)
    alive = weakref.ref(sender)

    del sender
    collect()

    assert alive() is None
    assert signal._plan_refs == {}


def test_sending_again_after_the_connections_change_does_not_keep_it_alive() -> None:
    signal = Signal()
    signal.connect(module_receiver)
    sender = Sender()
    signal.send(sender)
    signal.disconnect(module_receiver)  # throws the cached plans away
    signal.connect(module_receiver)
    assert receivers_of(signal, sender) == [module_receiver]
    alive = weakref.ref(sender)

    del sender
    collect()

    assert alive() is None


def test_a_dead_sender_leaves_no_reference_behind() -> None:
    signal = Signal()
    sender = Sender()
    signal.connect(module_receiver, sender=sender)
    del sender
    collect()

    assert signal.receivers_info() == []  # purges the dead connection
    assert signal._sender_refs == {}


class Unweakrefable:
    __slots__ = ("deleted",)

    def __init__(self, deleted: list[bool]) -> None:
        self.deleted = deleted

    def __del__(self) -> None:
        self.deleted.append(True)


def test_a_sender_that_cannot_be_weakly_held_is_kept_until_disconnected() -> None:
    signal = Signal()
    deleted: list[bool] = []
    sender = Unweakrefable(deleted)
    signal.connect(module_receiver, sender=sender)
    sender_id = id(sender)

    del sender
    collect()
    assert deleted == []  # held, so its id() cannot be recycled meanwhile
    [info] = signal.receivers_info()
    assert id(info.sender) == sender_id

    assert signal.disconnect(module_receiver, sender=info.sender) is True
    del info
    collect()
    assert deleted == [True]


def test_a_sender_that_cannot_be_weakly_held_is_kept_while_its_plan_is_cached() -> None:
    signal = Signal()
    signal.connect(module_receiver)
    deleted: list[bool] = []
    sender = Unweakrefable(deleted)
    assert receivers_of(signal, sender) == [module_receiver]

    del sender
    collect()
    # Held by the plan cached for its id(), so that no new object can take
    # that id() and be sent the plan meanwhile.
    assert deleted == []

    signal.disconnect(module_receiver)  # throws the cached plans away
    collect()
    assert deleted == [True]


def test_the_plan_cache_holds_a_bounded_number_of_unweakrefable_senders() -> None:
    from tocsin._connections import _HELD_PLANS

    signal = Signal()
    signal.connect(module_receiver)
    deleted: list[bool] = []
    for _ in range(_HELD_PLANS):
        signal.send(Unweakrefable(deleted))
    collect()
    assert deleted == []  # each held by its cached plan
    signal.send(Unweakrefable(deleted))  # one more: the oldest is let go
    collect()
    assert deleted == [True]


@pytest.fixture
def recycle_id(monkeypatch: pytest.MonkeyPatch) -> Callable[..., object]:
    """``recycle_id(target_id, factory)``: a new object whose id() is ``target_id``.

    Objects are made until the allocator hands one the freed address (the
    misses are kept until the end, so that each new object takes another free
    block of its size class). Where the allocator will not (Python 3.12+
    places objects differently), tocsin's modules are made to see the new
    object's id() as ``target_id``, as Django's own test patches its
    ``_make_id``: the same collision, seen by the same code.
    """

    def recycle(target_id: int, factory: Callable[[], object]) -> object:
        misses = []
        for _ in range(200_000):
            candidate = factory()
            if id(candidate) == target_id:
                return candidate
            misses.append(candidate)
        candidate = misses.pop()

        def colliding_id(obj: object) -> int:
            return target_id if obj is candidate else builtins.id(obj)

        for module in (tocsin._signal, tocsin._connections, tocsin._refs):
            monkeypatch.setattr(module, "id", colliding_id, raising=False)
        return candidate

    return recycle


def test_a_new_sender_with_a_recycled_id_gets_none_of_the_old_receivers(
    recycle_id: Callable[..., object],
) -> None:
    signal = Signal()
    signal.connect(module_receiver)
    handler = Handler("old sender's")
    old = Sender()
    signal.connect(handler, sender=old)
    signal.connect(handler.on_event, sender=old)
    assert len(signal.send(old)) == 3  # the plan for id(old) is now cached
    old_id = id(old)

    del old
    collect()
    new = recycle_id(old_id, Sender)

    assert receivers_of(signal, new) == [module_receiver]
    assert signal.has_listeners(new) is True  # via module_receiver only
    assert [i.receiver for i in signal.receivers_info(sender=new)] == [module_receiver]


def test_a_recycled_id_after_a_cached_plan_without_own_receivers(
    recycle_id: Callable[..., object],
) -> None:
    signal = Signal()
    old = Sender()
    assert signal.send(old) == []  # caches "nobody listens" for id(old)
    old_id = id(old)
    del old
    collect()

    new = recycle_id(old_id, Sender)
    signal.connect(module_receiver, sender=new)

    assert receivers_of(signal, new) == [module_receiver]


class SlottedSender:
    __slots__ = ("__weakref__",)


class Label(str):
    """A str sender (matched by value and type) that can share a block with an
    object."""

    __slots__ = ()


def same_size_sender_class() -> type:
    """A weakrefable class whose freed instances' addresses the allocator hands
    to the next ``Label``, where it can: the first number of slots with which
    a ``Label`` reuses a freed instance's address (the sizes of both, headers
    included, differ between Python versions). Otherwise a plain one, and
    ``recycle_id`` makes the collision."""
    for extra in range(8):
        slots = ("__weakref__", *(f"slot_{n}" for n in range(extra)))
        cls = type("SameSizeSender", (), {"__slots__": slots})
        probe = cls()
        probe_id = id(probe)
        del probe
        collect()
        misses = []
        for _ in range(2_000):
            label = Label("shop")
            if id(label) == probe_id:
                return cls
            misses.append(label)
    return SlottedSender


def test_a_value_sender_at_a_recycled_address_gets_its_own_receivers(
    recycle_id: Callable[..., object],
) -> None:
    sender_class = same_size_sender_class()
    signal = Signal()
    signal.connect(module_receiver, sender=Label("shop"))
    old = sender_class()
    assert signal.send(old) == []  # caches the plan for id(old)
    old_id = id(old)
    del old
    collect()

    label = recycle_id(old_id, lambda: Label("shop"))

    assert receivers_of(signal, label) == [module_receiver]


def test_disconnecting_through_a_new_sender_at_a_dead_senders_address_removes_nothing(
    recycle_id: Callable[..., object],
) -> None:
    signal = Signal()
    old = Sender()
    signal.connect(module_receiver, sender=old)
    old_id = id(old)
    del old
    collect()

    new = recycle_id(old_id, Sender)

    # The connection died with its sender: the new object was never connected.
    assert signal.disconnect(module_receiver, sender=new) is False
    assert receivers_of(signal, new) == []


def test_an_async_receiver_dying_while_a_plan_is_computed_is_skipped_alone() -> None:
    """The send that computed the plan still holds the dead receiver's record:
    it skips that one and calls the async receivers after it."""

    class Doomed:
        async def on_event(self, **kwargs: Any) -> str:
            return "doomed"

    async def after(**kwargs: Any) -> str:
        return "after"

    signal = Signal()
    doomed = [Doomed()]
    signal.connect(doomed[0].on_event)
    signal.connect(after, weak=False)

    def ordered_while_collecting(records: Any) -> list[Any]:
        del signal._ordered  # once
        doomed.clear()
        collect()  # the receiver dies now, as if in another thread's GC
        return Signal._ordered(records)

    signal._ordered = ordered_while_collecting  # type: ignore[method-assign]
    assert signal.send(None) == [(after, "after")]


def test_a_sender_let_go_by_the_bounded_plan_cache_leaves_no_plan_behind(
    recycle_id: Callable[..., object],
) -> None:
    from tocsin._connections import _HELD_PLANS

    signal = Signal()
    signal.connect(module_receiver, sender=Label("shop"))
    deleted: list[bool] = []
    oldest = Unweakrefable(deleted)
    assert receivers_of(signal, oldest) == []
    oldest_id = id(oldest)
    del oldest
    for _ in range(_HELD_PLANS):
        signal.send(Unweakrefable(deleted))
    collect()
    assert deleted == [True]  # the oldest was let go, and its plan with it

    label = recycle_id(oldest_id, lambda: Label("shop"))

    assert receivers_of(signal, label) == [module_receiver]


def test_a_receiver_dying_while_a_plan_is_computed_leaves_no_stale_plan(
    recycle_id: Callable[..., object],
) -> None:
    """Another thread's garbage collection may kill a receiver (and so
    invalidate the plans) while a send computes a plan; a plan computed from
    the connections as they were must not be cached past that point, or it
    could outlive its sender and be used for whatever reuses its address."""
    sender_class = same_size_sender_class()
    signal = Signal()
    signal.connect(module_receiver, sender=Label("shop"))
    doomed = [Handler("doomed")]
    sender = sender_class()
    signal.connect(doomed[0], sender=sender)

    def ordered_while_collecting(records: Any) -> list[Any]:
        del signal._ordered  # once
        doomed.clear()
        collect()  # the receiver dies now, as if in another thread's GC
        return Signal._ordered(records)

    signal._ordered = ordered_while_collecting  # type: ignore[method-assign]
    signal.send(sender)
    # Inspecting purges the dead connection (and with it the sender's entry).
    assert [i.receiver for i in signal.receivers_info()] == [module_receiver]
    sender_id = id(sender)
    del sender
    collect()

    label = recycle_id(sender_id, lambda: Label("shop"))

    assert receivers_of(signal, label) == [module_receiver]


# -- memory ------------------------------------------------------------------------


def allocated_by_tocsin(snapshot: tracemalloc.Snapshot) -> int:
    filtered = snapshot.filter_traces(
        [tracemalloc.Filter(True, "*tocsin*"), tracemalloc.Filter(True, "*dispatch*")]
    )
    return sum(stat.size for stat in filtered.statistics("filename"))


def cycle(signal: Signal, rounds: int) -> None:
    for index in range(rounds):
        handler = Handler()
        sender = Sender()
        signal.connect(handler, sender=sender)
        signal.connect(handler.on_event, sender=sender, priority=1)
        signal.connect(module_receiver, dispatch_uid=("uid", index % 7))
        signal.send(sender, x=1)
        signal.send(None, x=1)
        signal.disconnect(handler, sender=sender)
        signal.disconnect(dispatch_uid=("uid", index % 7))
        if index % 2:  # the rest dies rather than being disconnected
            signal.disconnect(handler.on_event, sender=sender)
        del handler, sender
        signal.send("value sender", x=1)


def test_connect_disconnect_cycles_retain_no_memory() -> None:
    signal = Signal()
    signal.connect(module_receiver, sender="value sender")
    cycle(signal, 200)  # warm up: compiled loops, dict sizes
    collect()
    tracemalloc.start()
    try:
        cycle(signal, 200)
        collect()
        before = allocated_by_tocsin(tracemalloc.take_snapshot())
        objects_before = len(gc.get_objects())
        cycle(signal, 2000)
        collect()
        after = allocated_by_tocsin(tracemalloc.take_snapshot())
        objects_after = len(gc.get_objects())
    finally:
        tracemalloc.stop()

    assert after - before < 2048, f"{after - before} bytes retained"
    assert objects_after - objects_before < 20
    assert [i.receiver for i in signal.receivers_info()] == [module_receiver]


def test_sends_from_ever_new_value_senders_keep_memory_bounded() -> None:
    # Unbounded, a cached plan per distinct sender would keep several MB here.
    signal = Signal()
    signal.connect(module_receiver, sender="request-7")
    signal.connect(module_receiver, sender=7)
    for index in range(1000):  # warm up: the plan cache reaches its bound
        signal.send(f"request-{index}", x=1)
        signal.has_listeners(index)
    collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for index in range(20_000):
            signal.send(f"request-{index}", x=1)
            signal.has_listeners(index)
        collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()

    assert after - before < 100_000, f"{after - before} bytes kept"
    # The cache still answers for the senders that are connected.
    assert signal.send("request-7", x=1) == [(module_receiver, "module")]
    assert signal.send(7, x=1) == [(module_receiver, "module")]
    assert signal.send("request-8", x=1) == []
