"""A send calls every receiver that is alive when it begins.

Django resolves every weak reference once, at the start of a send: a receiver
whose last reference an earlier receiver drops is still called by that send,
and only the next send goes without it. A receiver that died before the send
began is not called.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import pytest

from support import collect_garbage, deliver
from tocsin import Signal

MODES = ["send", "send_robust", "asend", "asend_robust"]
# No names and x= take compiled loops; "a-b" cannot be a literal keyword, so
# it takes the generic loop.
NAMES = [{}, {"x": 1}, {"a-b": 1}]
NAME_IDS = ["no names", "compiled loop", "generic loop"]


def responses_to(mode: str, signal: Signal, **named: Any) -> list[Any]:
    return [response for _, response in deliver(mode, signal, **named)]


class Victim:
    """Owns the receivers that an earlier receiver lets die."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def on_event(self, **kwargs: Any) -> str:
        self.calls.append("sync victim")
        return "sync victim"

    async def on_event_async(self, **kwargs: Any) -> str:
        await asyncio.sleep(0)
        self.calls.append("async victim")
        return "async victim"


def signal_whose_first_receiver_kills(
    calls: list[str], killer_is_async: bool
) -> tuple[Signal, weakref.ref[Victim]]:
    """A signal whose first receiver drops the last reference to the others."""
    owners = {"victim": Victim(calls)}
    victim_ref = weakref.ref(owners["victim"])

    def kill(**kwargs: Any) -> str:
        owners.clear()  # CPython frees the victim here, unless something holds it
        return "killer"

    async def kill_async(**kwargs: Any) -> str:
        return kill()

    signal = Signal()
    signal.connect(kill_async if killer_is_async else kill, weak=False)
    # Weakly connected bound methods: only ``owners`` keeps them alive.
    signal.connect(owners["victim"].on_event)
    signal.connect(owners["victim"].on_event_async)
    return signal, victim_ref


@pytest.mark.parametrize("named", NAMES, ids=NAME_IDS)
@pytest.mark.parametrize("mode", MODES)
def test_a_receiver_alive_when_the_send_begins_is_called_though_an_earlier_one_drops_it(
    mode: str, named: dict[str, Any]
) -> None:
    calls: list[str] = []
    signal, victim = signal_whose_first_receiver_kills(calls, killer_is_async=False)

    responses = responses_to(mode, signal, **named)

    assert responses == ["killer", "sync victim", "async victim"]
    assert calls == ["sync victim", "async victim"]
    collect_garbage()
    assert victim() is None  # it really was the last reference
    assert responses_to(mode, signal, **named) == ["killer"]  # the next send skips it


@pytest.mark.parametrize("mode", MODES)
def test_an_async_receiver_that_drops_later_ones_does_not_stop_their_calls(
    mode: str,
) -> None:
    calls: list[str] = []
    signal, victim = signal_whose_first_receiver_kills(calls, killer_is_async=True)

    # Sync receivers run first: the sync victim is called before the async
    # killer runs; the async victim was resolved when the send began.
    assert responses_to(mode, signal) == ["sync victim", "killer", "async victim"]
    collect_garbage()
    assert victim() is None
    assert responses_to(mode, signal) == ["killer"]


@pytest.mark.parametrize("named", NAMES, ids=NAME_IDS)
@pytest.mark.parametrize("mode", MODES)
def test_a_receiver_that_died_before_the_send_is_not_called(
    mode: str, named: dict[str, Any]
) -> None:
    calls: list[str] = []
    victim = Victim(calls)
    signal = Signal()
    signal.connect(victim.on_event)
    signal.connect(victim.on_event_async)
    assert responses_to(mode, signal, **named) == ["sync victim", "async victim"]

    del victim
    collect_garbage()
    calls.clear()

    assert responses_to(mode, signal, **named) == []
    assert calls == []
