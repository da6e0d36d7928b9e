"""A random walk of connects, disconnects, deaths and sends, checked against a
plain model of who must be called, and in which order."""

from __future__ import annotations

import gc
import itertools
from dataclasses import dataclass
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tocsin import Signal

RECEIVER_SLOTS = 4
SENDER_SLOTS = 3
serials = itertools.count()


class Receiver:
    """Answers with which object, and which of its callables, was called."""

    def __init__(self) -> None:
        self.serial = next(serials)

    def __call__(self, **kwargs: Any) -> tuple[int, str]:
        return (self.serial, "call")

    def method(self, **kwargs: Any) -> tuple[int, str]:
        return (self.serial, "method")


class Sender:
    def __init__(self) -> None:
        self.serial = next(serials)


@dataclass
class Connection:
    receiver: int  # serial
    target: str  # "call" or "method"
    sender: int | None  # serial, None for every sender
    uid: str | None
    priority: int
    weak: bool
    order: int

    @property
    def key(self) -> tuple[object, ...]:
        if self.uid is not None:
            return ("uid", self.uid, self.sender)
        return (self.receiver, self.target, self.sender)


receiver_slots = st.integers(0, RECEIVER_SLOTS - 1)
sender_choices = st.none() | st.integers(0, SENDER_SLOTS - 1)
kinds = st.sampled_from(["call", "method"])
uids = st.none() | st.sampled_from(["uid-a", "uid-b"])


class SignalModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.signal = Signal()
        self.receivers: list[Receiver | None] = [None] * RECEIVER_SLOTS
        self.senders: list[Sender | None] = [None] * SENDER_SLOTS
        self.connections: list[Connection] = []
        self.order = itertools.count()

    # -- helpers ----------------------------------------------------------------

    def receiver_in(self, slot: int) -> Receiver:
        if self.receivers[slot] is None:
            self.receivers[slot] = Receiver()
        receiver = self.receivers[slot]
        assert receiver is not None
        return receiver

    def sender_in(self, slot: int | None) -> Sender | None:
        if slot is None:
            return None
        if self.senders[slot] is None:
            self.senders[slot] = Sender()
        return self.senders[slot]

    @staticmethod
    def callable_of(receiver: Receiver, target: str) -> Any:
        return receiver if target == "call" else receiver.method

    def settle(self) -> None:
        """Apply the deaths that the last step caused, in the model."""
        gc.collect(0)  # the young generation: enough for what just died
        live_senders = {s.serial for s in self.senders if s is not None}
        self.connections = [
            c for c in self.connections if c.sender is None or c.sender in live_senders
        ]
        held = {r.serial for r in self.receivers if r is not None}
        kept_alive = held | {c.receiver for c in self.connections if not c.weak}
        self.connections = [
            c for c in self.connections if not c.weak or c.receiver in kept_alive
        ]

    def expected(self, sender: Sender | None) -> list[tuple[int, str]]:
        serial = None if sender is None else sender.serial
        matching = [
            c for c in self.connections if c.sender is None or c.sender == serial
        ]
        matching.sort(key=lambda c: (-c.priority, c.order))
        return [(c.receiver, c.target) for c in matching]

    # -- rules ------------------------------------------------------------------------

    @rule(
        slot=receiver_slots,
        kind=kinds,
        sender_slot=sender_choices,
        weak=st.booleans(),
        uid=uids,
        priority=st.integers(-1, 1),
    )
    def connect(
        self,
        slot: int,
        kind: str,
        sender_slot: int | None,
        weak: bool,
        uid: str | None,
        priority: int,
    ) -> None:
        receiver = self.receiver_in(slot)
        sender = self.sender_in(sender_slot)
        self.signal.connect(
            self.callable_of(receiver, kind),
            sender=sender,
            weak=weak,
            dispatch_uid=uid,
            priority=priority,
        )
        connection = Connection(
            receiver=receiver.serial,
            target=kind,
            sender=None if sender is None else sender.serial,
            uid=uid,
            priority=priority,
            weak=weak,
            order=next(self.order),
        )
        if all(c.key != connection.key for c in self.connections):
            self.connections.append(connection)

    @rule(slot=receiver_slots, kind=kinds, sender_slot=sender_choices, uid=uids)
    def disconnect(
        self, slot: int, kind: str, sender_slot: int | None, uid: str | None
    ) -> None:
        receiver = self.receiver_in(slot)
        sender = self.sender_in(sender_slot)
        removed = self.signal.disconnect(
            self.callable_of(receiver, kind), sender=sender, dispatch_uid=uid
        )
        probe = Connection(
            receiver=receiver.serial,
            target=kind,
            sender=None if sender is None else sender.serial,
            uid=uid,
            priority=0,
            weak=True,
            order=-1,
        )
        remaining = [c for c in self.connections if c.key != probe.key]
        assert removed == (len(remaining) < len(self.connections))
        self.connections = remaining
        self.settle()  # a receiver held only by that connection dies now

    @rule(slot=receiver_slots)
    def delete_receiver(self, slot: int) -> None:
        self.receivers[slot] = None
        self.settle()

    @rule(slot=st.integers(0, SENDER_SLOTS - 1))
    def delete_sender(self, slot: int) -> None:
        self.senders[slot] = None
        self.settle()

    @rule(sender_slot=sender_choices, robust=st.booleans())
    def send(self, sender_slot: int | None, robust: bool) -> None:
        sender = self.sender_in(sender_slot)
        method = self.signal.send_robust if robust else self.signal.send
        responses = method(sender, note="x")
        assert [response for _, response in responses] == self.expected(sender)
        assert self.signal.has_listeners(sender) == bool(self.expected(sender))

    @invariant()
    def inspection_matches_the_model(self) -> None:
        infos = self.signal.receivers_info()
        assert len(infos) == len(self.connections)
        assert sorted(info.priority for info in infos) == sorted(
            c.priority for c in self.connections
        )


SignalModel.TestCase.settings = settings(
    max_examples=80, stateful_step_count=30, deadline=None
)
test_signal_matches_the_model = SignalModel.TestCase
