"""tocsin.testing: what isolated_connections() restores exactly, and what a
signal looks like after capture() and muted() blocks end."""

from __future__ import annotations

import asyncio
import gc
import re
import warnings
from typing import Any

import pytest

import tocsin.transaction  # noqa: F401  (registers the on_commit option)
from tocsin import Signal, WeakReceiverWarning
from tocsin.testing import capture, isolated_connections


def described(signal: Signal) -> list[tuple[Any, ...]]:
    return [
        (i.receiver, i.sender, i.dispatch_uid, i.priority, i.weak, i.options)
        for i in signal.receivers_info()
    ]


def first(**kwargs: Any) -> str:
    return "first"


def second(**kwargs: Any) -> str:
    return "second"


@pytest.mark.parametrize(
    "changed",
    [{"priority": 5}, {"weak": True}, {"on_commit": True}, {"dispatch_uid": "new"}],
    ids=["priority", "weak", "options", "dispatch_uid"],
)
def test_a_connection_replaced_with_other_settings_is_put_back_as_it_was(
    changed: dict[str, Any],
) -> None:
    signal = Signal()
    signal.connect(first, weak=False)
    before = described(signal)
    with isolated_connections(signal):
        signal.disconnect(first)
        signal.connect(first, **{"weak": False, **changed})
        assert described(signal) != before
    assert described(signal) == before


class Listener:
    def on_event(self, **kwargs: Any) -> str:
        return "method"


def test_an_untouched_connection_keeps_its_place() -> None:
    signal = Signal()
    listener = Listener()
    owner = object()
    signal.connect(second, weak=False)
    signal.connect(listener.on_event, sender=owner)
    with isolated_connections(signal):
        signal.disconnect(second)
        signal.connect(second, weak=False)  # the same connection, made again
    # The bound method, held weakly and filtered on a sender, was never
    # touched: it is not disconnected and made again behind the others.
    assert [i.receiver for i in signal.receivers_info()] == [
        listener.on_event,
        second,
    ]


def test_a_receiver_under_two_dispatch_uids_gets_both_back() -> None:
    signal = Signal()
    signal.connect(first, weak=False, dispatch_uid="a")
    signal.connect(first, weak=False, dispatch_uid="b")
    with isolated_connections(signal):
        signal.disconnect(dispatch_uid="b")
    assert [i.dispatch_uid for i in signal.receivers_info()] == ["a", "b"]


def test_a_connection_with_a_dispatch_uid_made_in_the_block_is_removed() -> None:
    signal = Signal()
    with isolated_connections(signal):
        signal.connect(first, weak=False, dispatch_uid="made in the block")
    assert signal.receivers_info() == []


def test_every_signal_given_is_isolated_not_only_the_last() -> None:
    one, two = Signal(), Signal()
    with isolated_connections(one, two):
        one.connect(first, weak=False)
        two.connect(second, weak=False)
    assert one.receivers_info() == []
    assert two.receivers_info() == []


def test_something_that_is_neither_a_signal_nor_a_module_is_named() -> None:
    expected = (
        "isolated_connections() takes signals, or modules that define them, "
        "not 'tocsin.signals'."
    )
    with (
        pytest.raises(TypeError, match=f"^{re.escape(expected)}$"),
        isolated_connections("tocsin.signals"),  # type: ignore[arg-type]
    ):
        pass


def test_a_weak_receiver_collected_in_the_block_stays_gone_quietly() -> None:
    signal = Signal()

    def make() -> Any:
        def short_lived(**kwargs: Any) -> None:
            pass

        return short_lived

    receiver = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakReceiverWarning)
        signal.connect(receiver)
    with isolated_connections(signal):
        signal.disconnect(receiver)
        del receiver
        gc.collect()
    assert signal.receivers_info() == []


def test_a_transient_weak_receiver_is_put_back_without_a_second_warning() -> None:
    signal = Signal()

    def make() -> Any:
        def handler(**kwargs: Any) -> None:
            pass

        return handler

    receiver = make()
    with pytest.warns(WeakReceiverWarning):
        signal.connect(receiver)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with isolated_connections(signal):
            signal.disconnect(receiver)
    assert [i.receiver for i in signal.receivers_info()] == [receiver]


class AlwaysListening(Signal):
    """A signal whose emitters must always send (its own has_listeners)."""

    def has_listeners(self, sender: object = None) -> bool:
        return True


def test_a_signal_subclass_gets_its_own_has_listeners_back_after_a_capture() -> None:
    signal = AlwaysListening()
    with capture(signal):
        pass
    assert signal.has_listeners() is True
    assert "has_listeners" not in vars(signal)


def test_asend_under_capture_delivers_the_sender_to_receivers() -> None:
    signal = Signal()
    heard: list[object] = []

    async def on_event(sender: object, **kwargs: Any) -> None:
        heard.append(sender)

    signal.connect(on_event, weak=False)
    owner = object()
    with capture(signal) as sent:
        asyncio.run(signal.asend(owner))
    assert heard == [owner]
    assert [s.sender for s in sent] == [owner]
