"""tocsin.testing: capture(), muted() and connected_to()."""

from __future__ import annotations

import asyncio
import enum
import gc
import types
import weakref
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tocsin import Signal, receiver
from tocsin.signals import post_save, user_logged_in
from tocsin.testing import (
    Sent,
    capture,
    connected_to,
    isolated_connections,
    muted,
)


class Sender:
    pass


class Recorder:
    def __init__(self, name: str = "recorder") -> None:
        self.name = name
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> str:
        self.calls.append(kwargs)
        return self.name


def connected_signal(*names: str) -> tuple[Signal, list[Recorder]]:
    signal = Signal()
    recorders = [Recorder(name) for name in names]
    for recorder in recorders:
        signal.connect(recorder, weak=False)
    return signal, recorders


def test_capture_records_every_send_and_lets_receivers_run() -> None:
    signal, [recorder] = connected_signal("r")
    sender = Sender()

    async def send_async() -> None:
        await signal.asend(sender, step=3)
        await signal.asend_robust(sender, step=4)

    with capture(signal) as sent:
        assert signal.send(sender, step=1) == [(recorder, "r")]
        signal.send_robust(sender, step=2)
        asyncio.run(send_async())

    assert sent == [
        Sent(signal, sender, {"step": 1}, "send"),
        Sent(signal, sender, {"step": 2}, "send_robust"),
        Sent(signal, sender, {"step": 3}, "asend"),
        Sent(signal, sender, {"step": 4}, "asend_robust"),
    ]
    assert [call["step"] for call in recorder.calls] == [1, 2, 3, 4]
    assert sent[0].signal is signal
    assert sent[0].mode == "send"


def test_capture_of_several_signals_keeps_their_order() -> None:
    one, two, other = Signal(), Signal(), Signal()

    with capture(one, two) as sent:
        two.send("a")
        other.send("ignored")
        one.send("b")

    assert [(s.signal, s.sender) for s in sent] == [(two, "a"), (one, "b")]


def test_capture_can_filter_by_sender() -> None:
    signal = Signal()
    wanted = Sender()

    with capture(signal, sender=wanted) as sent:
        signal.send(Sender())
        signal.send(wanted, x=1)
        signal.send(None)

    assert [(s.sender, s.kwargs) for s in sent] == [(wanted, {"x": 1})]


def test_capture_records_nothing_after_the_block() -> None:
    signal = Signal()
    with capture(signal) as sent:
        pass
    signal.send(None)

    assert sent == []
    assert "send" not in vars(signal)  # the shadowing is gone


def test_nested_captures_each_record() -> None:
    signal = Signal()
    with capture(signal) as outer:
        signal.send("first")
        with capture(signal) as inner:
            signal.send("second")
        signal.send("third")

    assert [s.sender for s in outer] == ["first", "second", "third"]
    assert [s.sender for s in inner] == ["second"]


def test_muted_calls_no_receiver() -> None:
    signal, [recorder] = connected_signal("r")

    with muted(signal):
        assert signal.send(None) == []
        assert signal.send_robust(None) == []
        assert asyncio.run(signal.asend(None)) == []
        assert asyncio.run(signal.asend_robust(None)) == []

    assert recorder.calls == []
    assert signal.send(None) == [(recorder, "r")]


def test_muted_restores_connections_and_their_order_even_on_error() -> None:
    signal, _ = connected_signal("a", "b", "c")
    late = Recorder("late")

    def connect_then_fail() -> None:
        with muted(signal):
            signal.connect(late, weak=False)
            raise RuntimeError("inside the block")

    with pytest.raises(RuntimeError, match="inside the block"):
        connect_then_fail()

    assert [r for _, r in signal.send(None)] == ["a", "b", "c", "late"]
    assert "send" not in vars(signal)


def test_muted_mutes_only_the_given_signals() -> None:
    muted_signal, [silent] = connected_signal("silent")
    other, [loud] = connected_signal("loud")

    with muted(muted_signal):
        muted_signal.send(None)
        other.send(None)

    assert silent.calls == []
    assert len(loud.calls) == 1


def test_nested_mutes_end_with_the_outermost() -> None:
    signal, [recorder] = connected_signal("r")

    with muted(signal):
        with muted(signal):
            signal.send(None)
        signal.send(None)
        assert recorder.calls == []
    signal.send(None)

    assert len(recorder.calls) == 1


def test_capture_inside_muted_records_sends_that_reach_no_receiver() -> None:
    signal, [recorder] = connected_signal("r")

    with muted(signal), capture(signal) as sent:
        assert signal.send("s", x=1) == []

    assert [(s.sender, s.kwargs) for s in sent] == [("s", {"x": 1})]
    assert recorder.calls == []


def test_has_listeners_under_capture_and_mute() -> None:
    empty = Signal()
    busy, _ = connected_signal("r")

    with capture(empty):
        # An emitter that checks has_listeners() first must still send.
        assert empty.has_listeners() is True
    assert empty.has_listeners() is False

    with muted(busy):
        assert busy.has_listeners() is False
        with capture(busy):
            assert busy.has_listeners() is True
        assert busy.has_listeners() is False
    assert busy.has_listeners() is True


def test_capture_and_muted_need_signals() -> None:
    with pytest.raises(TypeError, match="at least one signal"), capture():
        pass
    with pytest.raises(TypeError, match="Expected a tocsin Signal"), muted("x"):  # type: ignore[arg-type]
        pass


def test_connected_to_connects_strongly_for_the_block_only() -> None:
    signal = Signal()
    sender = Sender()

    def on_event(**kwargs: Any) -> str:  # a local function: no warning
        return "local"

    with connected_to(on_event, signal, sender=sender) as connected:
        assert connected is on_event
        assert signal.send(sender) == [(on_event, "local")]
        assert signal.send(Sender()) == []
        assert signal.receivers_info()[0].weak is False

    assert signal.send(sender) == []
    assert signal.receivers_info() == []


def test_connected_to_disconnects_on_error_and_forwards_options() -> None:
    signal, _ = connected_signal("existing")
    recorder = Recorder("first")

    seen: list[list[str]] = []

    def send_then_fail() -> None:
        with connected_to(recorder, signal, dispatch_uid="uid", priority=10):
            seen.append([r for _, r in signal.send(None)])
            raise RuntimeError("inside the block")

    with pytest.raises(RuntimeError, match="inside the block"):
        send_then_fail()
    assert seen == [["first", "existing"]]

    assert [r for _, r in signal.send(None)] == ["existing"]


def test_connected_to_leaves_an_existing_connection_in_place() -> None:
    signal = Signal()

    def existing(sender: object, **kwargs: object) -> str:
        return "existing"

    signal.connect(existing, weak=False)
    with connected_to(existing, signal):
        assert len(signal.send(None)) == 1
    assert signal.send(None) == [(existing, "existing")]


def test_connected_to_leaves_an_existing_connection_for_its_sender_or_uid() -> None:
    signal = Signal()
    sender = Sender()

    def existing(sender: object, **kwargs: object) -> str:
        return "existing"

    signal.connect(existing, sender=sender, weak=False)
    signal.connect(existing, dispatch_uid="uid", weak=False)
    with connected_to(existing, signal, sender=sender):
        pass
    with connected_to(existing, signal, dispatch_uid="uid"):
        pass
    assert signal.send(sender) == [(existing, "existing"), (existing, "existing")]


# -- capture(sender=X) hears what a receiver connected with sender=X hears ------


class Colour(enum.StrEnum):
    RED = "red"


class EqualToEverything:
    """Equal to any object: a capture comparing with == would record it always."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


class RefusesComparison:
    """Raises on ==, as some ORM expressions and numpy arrays do."""

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("do not compare me")

    __hash__ = object.__hash__


def sender_pool() -> list[object]:
    return [
        1,
        True,
        1.0,
        0,
        False,
        "a",
        "red",
        Colour.RED,
        b"a",
        None,
        EqualToEverything(),
        EqualToEverything(),
        RefusesComparison(),
        Sender(),
        Sender,
    ]


def test_capture_by_sender_ignores_an_equal_but_distinct_sender() -> None:
    signal = Signal()
    wanted, lookalike = EqualToEverything(), EqualToEverything()

    with capture(signal, sender=wanted) as sent:
        signal.send(lookalike)
        signal.send(wanted, x=1)

    assert [s.sender for s in sent] == [wanted]


def test_capture_by_sender_one_does_not_record_true() -> None:
    signal = Signal()
    with capture(signal, sender=1) as sent:
        signal.send(True)
        signal.send(1.0)
        signal.send(1, x=1)

    assert [(s.sender, s.kwargs) for s in sent] == [(1, {"x": 1})]
    assert type(sent[0].sender) is int


def test_a_sender_whose_eq_raises_does_not_break_a_filtered_capture() -> None:
    signal, [recorder] = connected_signal("r")
    awkward = RefusesComparison()

    with capture(signal, sender=Sender()) as sent:
        assert signal.send(awkward) == [(recorder, "r")]

    assert sent == []


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    pool=st.builds(sender_pool),
)
def test_capture_by_sender_records_exactly_what_a_filtered_receiver_hears(
    data: st.DataObject, pool: list[object]
) -> None:
    signal = Signal()
    wanted = data.draw(st.sampled_from(pool), label="wanted")
    sends = data.draw(st.lists(st.sampled_from(pool), max_size=8), label="sends")
    heard: list[object] = []

    def listener(sender: object, **kwargs: object) -> None:
        heard.append(sender)

    signal.connect(listener, sender=wanted, weak=False)
    with capture(signal, sender=wanted) as sent:
        for sender in sends:
            signal.send(sender)

    assert [s.sender for s in sent] == heard
    # The same objects, not merely equal ones.
    assert all(s.sender is h for s, h in zip(sent, heard, strict=True))


def test_a_filtered_capture_leaves_responses_and_receivers_info_alone() -> None:
    signal, [recorder] = connected_signal("r")
    wanted = Sender()

    with capture(signal, sender=wanted) as sent:
        assert signal.send(wanted) == [(recorder, "r")]
        assert [info.receiver for info in signal.receivers_info()] == [recorder]

    assert len(sent) == 1


def test_a_filtered_capture_records_in_send_order_even_for_sends_from_receivers() -> (
    None
):
    signal = Signal()
    wanted = Sender()

    def echo(sender: object, depth: int, **kwargs: object) -> None:
        if depth < 2:
            signal.send(sender, depth=depth + 1)

    signal.connect(echo, weak=False)
    with capture(signal, sender=wanted) as sent:
        signal.send(wanted, depth=0)

    assert [s.kwargs["depth"] for s in sent] == [0, 1, 2]


def test_a_filtered_capture_inside_muted_still_records() -> None:
    signal, [recorder] = connected_signal("r")
    wanted = Sender()

    with muted(signal), capture(signal, sender=wanted) as sent:
        assert signal.send(wanted, x=1) == []
        assert signal.send(Sender(), x=2) == []
        assert signal.has_listeners(wanted) is True

    assert [(s.sender, s.kwargs) for s in sent] == [(wanted, {"x": 1})]
    assert recorder.calls == []


# -- isolated_connections() ---------------------------------------------------------


def receiver_names(signal: Signal) -> list[str]:
    return [info.qualname for info in signal.receivers_info()]


def test_isolated_connections_undoes_connections_made_in_the_block() -> None:
    signal = Signal()

    def kept(**kwargs: Any) -> None: ...
    def made_inside(**kwargs: Any) -> None: ...
    def decorated(**kwargs: Any) -> None: ...

    signal.connect(kept, weak=False)
    with isolated_connections(signal):
        signal.connect(made_inside, weak=False, priority=5)
        receiver(signal, weak=False)(decorated)
        signal.connect(kept, sender="shop", weak=False)  # same receiver, new sender
        assert len(signal.receivers_info()) == 4

    assert [info.receiver for info in signal.receivers_info()] == [kept]
    assert signal.receivers_info()[0].sender is None


def test_isolated_connections_watches_the_catalog_without_being_told() -> None:
    def audit(**kwargs: Any) -> None: ...

    def kept(**kwargs: Any) -> None: ...

    post_save.connect(kept, sender=Sender, weak=False)
    before = post_save.receivers_info()
    with isolated_connections():
        post_save.connect(audit, weak=False)
        post_save.connect(audit, sender=Sender, weak=False)
        assert post_save.disconnect(kept, sender=Sender)
        user_logged_in.connect(audit, weak=False)

    assert post_save.receivers_info() == before
    assert post_save.disconnect(kept, sender=Sender)
    assert audit not in [info.receiver for info in user_logged_in.receivers_info()]


def test_isolated_connections_restores_what_the_block_removed_or_changed() -> None:
    signal = Signal()

    def first(**kwargs: Any) -> None: ...
    def second(**kwargs: Any) -> None: ...

    signal.connect(first, weak=False, priority=10, dispatch_uid="first")
    signal.connect(second, sender=7, weak=False, on_commit="robust")
    before = signal.receivers_info()

    def rewire_then_fail() -> None:
        with isolated_connections(signal):
            signal.disconnect(dispatch_uid="first")
            signal.disconnect(second, sender=7)
            signal.connect(second, sender=7, weak=False, priority=-1)
            raise RuntimeError("inside the block")

    with pytest.raises(RuntimeError, match="inside the block"):
        rewire_then_fail()

    assert signal.receivers_info() == before


def test_isolated_connections_keeps_nothing_alive() -> None:
    signal = Signal()

    class Listener:
        def on_event(self, **kwargs: Any) -> None: ...

    listener = Listener()
    sender = Sender()
    signal.connect(listener.on_event, sender=sender)
    dead_listener = weakref.ref(listener)
    dead_sender = weakref.ref(sender)

    with isolated_connections(signal):
        del listener, sender
        gc.collect()
        assert dead_listener() is None
        assert dead_sender() is None

    assert signal.receivers_info() == []


def test_isolated_connections_takes_modules_of_signals() -> None:
    app_signals = types.ModuleType("app_signals")
    app_signals.order_placed = Signal()  # type: ignore[attr-defined]
    app_signals.not_a_signal = "x"  # type: ignore[attr-defined]

    def on_order(**kwargs: Any) -> None: ...

    with isolated_connections(app_signals):
        app_signals.order_placed.connect(on_order, weak=False)  # type: ignore[attr-defined]

    assert app_signals.order_placed.receivers_info() == []  # type: ignore[attr-defined]


def test_isolated_connections_names_a_bad_argument() -> None:
    with (
        pytest.raises(TypeError, match=r"takes signals, or modules.*'post_save'"),
        isolated_connections("post_save"),  # type: ignore[arg-type]
    ):
        pass
