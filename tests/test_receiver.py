"""The @receiver decorator."""

from __future__ import annotations

from typing import Any

import pytest

from tocsin import Signal, WeakReceiverWarning, receiver

first_signal = Signal()
second_signal = Signal()


class Sender:
    pass


def test_receiver_connects_the_function_and_returns_it_unchanged() -> None:
    signal = Signal()

    def on_event(**kwargs: Any) -> str:
        return "called"

    decorated = receiver(signal, weak=False)(on_event)

    assert decorated is on_event
    assert signal.send(None) == [(on_event, "called")]


def test_receiver_connects_to_each_signal_of_a_list_or_tuple() -> None:
    signals = [Signal(), Signal(), Signal()]

    @receiver(signals[:2], weak=False)
    def on_list(**kwargs: Any) -> str:
        return "list"

    @receiver((signals[1], signals[2]), weak=False)
    def on_tuple(**kwargs: Any) -> str:
        return "tuple"

    assert [r for _, r in signals[0].send(None)] == ["list"]
    assert [r for _, r in signals[1].send(None)] == ["list", "tuple"]
    assert [r for _, r in signals[2].send(None)] == ["tuple"]


def test_receiver_forwards_the_connect_arguments() -> None:
    signal = Signal()
    sender = Sender()

    @receiver(signal, sender=sender, weak=False, dispatch_uid="uid", priority=4)
    def on_event(**kwargs: Any) -> str:
        return "called"

    @receiver(signal, weak=False, dispatch_uid="uid", sender=sender)
    def duplicate(**kwargs: Any) -> str:
        return "duplicate"

    [info] = signal.receivers_info()
    assert (info.receiver, info.sender, info.dispatch_uid) == (on_event, sender, "uid")
    assert (info.priority, info.weak) == (4, False)
    assert signal.send(Sender()) == []
    assert signal.disconnect(dispatch_uid="uid", sender=sender) is True


def module_level(**kwargs: Any) -> str:
    return "module level"


def test_receiver_holds_weakly_by_default() -> None:
    signal = Signal()
    receiver(signal)(module_level)

    assert signal.receivers_info()[0].weak is True
    assert signal.send(None) == [(module_level, "module level")]


def test_receiver_warns_about_a_weakly_held_local_function_at_its_line() -> None:
    signal = Signal()

    with pytest.warns(WeakReceiverWarning, match="on_event.*weak=False") as caught:

        @receiver(signal)
        def on_event(**kwargs: Any) -> None:
            pass

    assert caught[0].filename == __file__


def test_receiver_rejects_what_is_not_a_signal() -> None:
    with pytest.raises(TypeError, match="takes a Signal or a list of signals"):
        receiver("post_save")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes a Signal or a list of signals"):
        receiver([Signal(), None])  # type: ignore[list-item]


def test_receiver_validates_the_function_like_connect() -> None:
    decorate = receiver(Signal(), weak=False)

    def no_kwargs(sender: Any) -> None:
        pass

    with pytest.raises(ValueError, match=r"\*\*kwargs"):
        decorate(no_kwargs)
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        receiver(Signal(), colour="red")(module_level)
