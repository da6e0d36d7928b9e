"""Signal: connecting, disconnecting, sending, ordering, errors and inspection."""

from __future__ import annotations

import asyncio
import logging
import warnings
from typing import Any

import pytest

from tocsin import ReceiverInfo, Signal, WeakReceiverWarning


def record_call(**kwargs: Any) -> dict[str, Any]:
    return kwargs


def first(**kwargs: Any) -> str:
    return "first"


def second(**kwargs: Any) -> str:
    return "second"


def third(**kwargs: Any) -> str:
    return "third"


def fail(**kwargs: Any) -> None:
    raise ValueError("receiver failed")


class Sender:
    pass


# -- what receivers get ------------------------------------------------------


@pytest.mark.parametrize("method", ["send", "send_robust"])
def test_receiver_gets_signal_sender_and_named_arguments(method: str) -> None:
    signal = Signal()
    signal.connect(record_call)
    sender = Sender()

    [(receiver, response)] = getattr(signal, method)(sender, order="#1", total=3)

    assert receiver is record_call
    assert response == {"signal": signal, "sender": sender, "order": "#1", "total": 3}


def test_a_second_send_with_the_same_names_gives_receivers_the_signal() -> None:
    signal = Signal()
    signal.connect(record_call)
    signal.send("shop", order="#1")
    [(_, response)] = signal.send("shop", order="#2")
    assert response == {"signal": signal, "sender": "shop", "order": "#2"}


def test_sender_can_be_passed_by_keyword() -> None:
    signal = Signal()
    signal.connect(record_call)

    [(_, response)] = signal.send(sender="shop", order="#1")

    assert response["sender"] == "shop"


def test_send_returns_pairs_in_registration_order() -> None:
    signal = Signal()
    for receiver in (second, first, third):
        signal.connect(receiver)

    assert signal.send(None) == [(second, "second"), (first, "first"), (third, "third")]


def test_send_without_receivers_returns_an_empty_list() -> None:
    assert Signal().send(Sender(), x=1) == []


def test_use_caching_is_accepted_positionally_as_in_django() -> None:
    signal = Signal(True)
    signal.connect(first)

    assert signal.use_caching is True
    assert signal.send(None) == [(first, "first")]


def test_unusual_keyword_names_are_passed_through() -> None:
    signal = Signal()
    signal.connect(record_call)
    named = {"not-an-identifier": 1, "class": 2, "_tocsin_records": 3, "loop": 4}

    [(_, response)] = signal.send(None, **named)
    [(_, robust_response)] = signal.send_robust(None, **named)

    for got in (response, robust_response):
        assert {name: got[name] for name in named} == named


def test_many_different_keyword_sets_all_deliver() -> None:
    signal = Signal()
    signal.connect(record_call)

    for index in range(600):  # more than the compiled-loop cache holds
        name = f"arg_{index}"
        [(_, response)] = signal.send(None, **{name: index})
        assert response[name] == index


def test_repr_names_the_signal_and_its_address() -> None:
    named = Signal(name="order_completed")
    assert repr(named) == f"<tocsin.Signal 'order_completed' at {id(named):#x}>"
    unnamed = Signal()
    assert repr(unnamed) == f"<tocsin.Signal at {id(unnamed):#x}>"


# -- senders -------------------------------------------------------------------


def test_sender_none_at_connect_hears_every_sender() -> None:
    signal = Signal()
    signal.connect(first)

    for sender in (None, Sender(), "shop", 42, Sender):
        assert signal.send(sender) == [(first, "first")]


@pytest.mark.parametrize("method", ["send", "send_robust", "asend", "asend_robust"])
def test_a_send_from_a_sender_after_one_from_none_reaches_its_receivers(
    method: str,
) -> None:
    signal = Signal()
    sender = Sender()
    signal.connect(first, sender=sender)

    def send(sender: object) -> Any:
        sent = getattr(signal, method)(sender)
        return asyncio.run(sent) if method.startswith("a") else sent

    assert send(None) == []
    assert send(sender) == [(first, "first")]


@pytest.mark.parametrize("sender", ["shop", Sender()], ids=["value", "object"])
def test_a_send_from_none_after_one_from_a_sender_reaches_only_its_own(
    sender: object,
) -> None:
    signal = Signal()
    signal.connect(first, sender=sender)
    assert signal.send(sender) == [(first, "first")]
    assert signal.send(None) == []
    assert signal.send(sender) == [(first, "first")]


def test_sender_filter_hears_only_that_sender() -> None:
    signal = Signal()
    wanted, other = Sender(), Sender()
    signal.connect(first, sender=wanted)

    assert signal.send(wanted) == [(first, "first")]
    assert signal.send(other) == []
    assert signal.send(None) == []


def test_class_sender_matches_the_class_not_its_instances() -> None:
    signal = Signal()
    signal.connect(first, sender=Sender)

    assert signal.send(Sender) == [(first, "first")]
    assert signal.send(Sender()) == []


def test_string_and_integer_senders_match_by_value() -> None:
    signal = Signal()
    signal.connect(first, sender="shop")
    signal.connect(second, sender=10**20)
    built = "".join(["sh", "op"])  # equal, but another object

    assert signal.send(built) == [(first, "first")]
    assert signal.send(int("1" + "0" * 20)) == [(second, "second")]
    assert signal.send("other") == []


def test_any_sender_receivers_and_sender_receivers_merge_in_registration_order() -> (
    None
):
    signal = Signal()
    sender = Sender()
    signal.connect(first, sender=sender)
    signal.connect(second)
    signal.connect(third, sender=sender)

    assert [r for r, _ in signal.send(sender)] == [first, second, third]
    assert [r for r, _ in signal.send(Sender())] == [second]


def test_unhashable_and_unweakrefable_senders_work() -> None:
    signal = Signal()
    sender: list[int] = []
    signal.connect(first, sender=sender)
    signal.connect(second)

    assert [r for r, _ in signal.send(sender)] == [first, second]
    assert [r for r, _ in signal.send([])] == [second]
    assert signal.disconnect(first, sender=sender) is True
    assert [r for r, _ in signal.send(sender)] == [second]


# -- duplicates and disconnect -------------------------------------------------


def test_connecting_the_same_receiver_and_sender_twice_is_ignored() -> None:
    signal = Signal()
    signal.connect(first, priority=5)
    signal.connect(first, priority=-5)
    signal.connect(second, priority=0)

    assert signal.send(None) == [(first, "first"), (second, "second")]
    assert [info.priority for info in signal.receivers_info()] == [5, 0]


def test_the_same_receiver_for_two_senders_is_two_connections() -> None:
    signal = Signal()
    one, two = Sender(), Sender()
    signal.connect(first, sender=one)
    signal.connect(first, sender=two)

    assert signal.send(one) == [(first, "first")]
    assert signal.send(two) == [(first, "first")]
    assert signal.disconnect(first, sender=one) is True
    assert signal.send(one) == []
    assert signal.send(two) == [(first, "first")]


def test_a_bound_method_is_one_receiver_however_often_it_is_looked_up() -> None:
    class Handler:
        def on_event(self, **kwargs: Any) -> str:
            return "handled"

    handler = Handler()
    signal = Signal()
    signal.connect(handler.on_event)
    signal.connect(handler.on_event)

    assert len(signal.send(None)) == 1
    assert signal.disconnect(handler.on_event) is True
    assert signal.send(None) == []


def test_methods_of_two_instances_or_two_methods_of_one_are_separate_receivers() -> (
    None
):
    class Handler:
        def __init__(self, name: str) -> None:
            self.name = name

        def on_event(self, **kwargs: Any) -> str:
            return f"{self.name} on_event"

        def on_other(self, **kwargs: Any) -> str:
            return f"{self.name} on_other"

    first, second = Handler("first"), Handler("second")
    signal = Signal()
    signal.connect(first.on_event)
    signal.connect(second.on_event)
    signal.connect(first.on_other)

    assert [response for _, response in signal.send(None)] == [
        "first on_event",
        "second on_event",
        "first on_other",
    ]
    assert signal.disconnect(second.on_event) is True
    assert [response for _, response in signal.send(None)] == [
        "first on_event",
        "first on_other",
    ]


def test_a_second_connect_with_the_same_dispatch_uid_is_ignored() -> None:
    signal = Signal()
    signal.connect(first, dispatch_uid="greeting")
    signal.connect(second, dispatch_uid="greeting")

    assert signal.send(None) == [(first, "first")]


def test_disconnect_reports_whether_it_removed_a_connection() -> None:
    signal = Signal()
    signal.connect(first)

    assert signal.disconnect(first) is True
    assert signal.disconnect(first) is False
    assert signal.disconnect(second) is False
    assert signal.send(None) == []


def test_disconnect_needs_the_sender_used_at_connect() -> None:
    signal = Signal()
    sender = Sender()
    signal.connect(first, sender=sender)

    assert signal.disconnect(first) is False
    assert signal.send(sender) == [(first, "first")]
    assert signal.disconnect(first, sender=sender) is True
    assert signal.send(sender) == []


def test_disconnect_by_dispatch_uid() -> None:
    signal = Signal()
    signal.connect(first, dispatch_uid="uid-1")

    assert signal.disconnect(first) is False  # connected under its uid
    assert signal.disconnect(dispatch_uid="uid-1") is True
    assert signal.send(None) == []


def test_disconnect_without_receiver_or_dispatch_uid_is_a_type_error() -> None:
    with pytest.raises(TypeError) as raised:
        Signal().disconnect()
    assert str(raised.value) == (
        "Signal.disconnect() needs the receiver or the dispatch_uid it was "
        "connected with."
    )


def test_connect_after_disconnect_goes_to_the_end() -> None:
    signal = Signal()
    signal.connect(first)
    signal.connect(second)
    signal.disconnect(first)
    signal.connect(first)

    assert [r for r, _ in signal.send(None)] == [second, first]


# -- has_listeners ---------------------------------------------------------------


def test_has_listeners_follows_connections() -> None:
    signal = Signal()
    sender = Sender()
    assert signal.has_listeners() is False
    assert signal.has_listeners(sender) is False

    signal.connect(first, sender=sender)
    assert signal.has_listeners(sender) is True
    assert signal.has_listeners(Sender()) is False
    # As in Django, has_listeners() counts only receivers of every sender.
    assert signal.has_listeners() is False

    signal.connect(second)
    assert signal.has_listeners() is True
    assert signal.has_listeners(Sender()) is True

    signal.disconnect(first, sender=sender)
    signal.disconnect(second)
    assert signal.has_listeners(sender) is False
    assert signal.has_listeners() is False


def test_has_listeners_answers_for_the_sender_asked_after_other_sends() -> None:
    signal = Signal()
    sender = Sender()
    signal.connect(first, sender=sender)
    # Sends from other senders cache what reaches them: a later question
    # about `sender` gets its own answer, not theirs.
    assert signal.send(None) == []
    assert signal.has_listeners() is False
    assert signal.has_listeners(sender) is True
    assert signal.send(sender) == [(first, "first")]
    assert signal.has_listeners(Sender()) is False
    assert signal.has_listeners() is False


# -- order -----------------------------------------------------------------------


def test_higher_priority_runs_first_and_ties_keep_registration_order() -> None:
    signal = Signal()
    calls: list[str] = []

    def make(name: str) -> Any:
        def receiver(**kwargs: Any) -> None:
            calls.append(name)

        return receiver

    for name, priority in [("a", 0), ("b", 10), ("c", 0), ("d", -1), ("e", 10)]:
        signal.connect(make(name), weak=False, priority=priority)
    signal.connect(make("f"), weak=False, priority=2.5)

    signal.send(None)

    assert calls == ["b", "e", "f", "a", "c", "d"]


def test_priority_orders_across_sender_and_any_sender_receivers() -> None:
    signal = Signal()
    sender = Sender()
    signal.connect(first, sender=sender)
    signal.connect(second, priority=1)
    signal.connect(third, sender=sender, priority=2)

    assert [r for r, _ in signal.send(sender)] == [third, second, first]


@pytest.mark.parametrize("priority", ["1", None, True, [1]])
def test_priority_must_be_a_number(priority: Any) -> None:
    with pytest.raises(TypeError) as raised:
        Signal().connect(first, priority=priority)
    assert str(raised.value) == (
        f"priority must be a number (higher runs first), not {priority!r}."
    )


def test_float_priorities_order_receivers() -> None:
    signal = Signal()
    signal.connect(first, priority=0.5)
    signal.connect(second, priority=1.5)
    signal.connect(third, priority=-0.5)
    assert [r for r, _ in signal.send(None)] == [second, first, third]


def test_the_weak_local_function_warning_says_what_happens_and_the_fix() -> None:
    def local(**kwargs: Any) -> None:
        pass

    with pytest.warns(WeakReceiverWarning) as caught:
        Signal().connect(local)
    assert [str(w.message) for w in caught] == [
        f"The receiver {local.__qualname__} is a lambda or a local "
        "function connected with a weak reference: it will be dropped silently "
        "once nothing else refers to it. Connect it with weak=False to keep it."
    ]


# -- bad input -------------------------------------------------------------------


def test_a_non_callable_receiver_is_a_type_error() -> None:
    with pytest.raises(TypeError) as caught:
        Signal().connect("not callable")  # type: ignore[arg-type]
    assert str(caught.value) == "Signal receivers must be callable."


def no_kwargs(sender: Any) -> None:
    pass


class NoKwargsCallable:
    def __call__(self, sender: Any, signal: Any) -> None:
        pass


@pytest.mark.parametrize("receiver", [no_kwargs, NoKwargsCallable(), print])
def test_a_receiver_without_kwargs_is_a_value_error(receiver: Any) -> None:
    with pytest.raises(ValueError, match="keyword arguments") as caught:
        Signal().connect(receiver, weak=False)
    assert str(caught.value) == (
        "Signal receivers must accept keyword arguments (**kwargs)."
    )


def test_send_rejects_positional_arguments_beyond_the_sender() -> None:
    signal = Signal()
    signal.connect(first)

    for method in (signal.send, signal.send_robust):
        with pytest.raises(TypeError):
            method(None, "extra")  # type: ignore[call-arg]


async def async_receiver(**kwargs: Any) -> str:
    return "async"


@pytest.mark.parametrize("method", ["send", "send_robust"])
@pytest.mark.parametrize("receiver", [first, async_receiver])
def test_sending_the_reserved_signal_argument_is_a_type_error(
    method: str, receiver: Any
) -> None:
    signal = Signal()
    signal.connect(receiver)

    with pytest.raises(TypeError) as raised:
        getattr(signal, method)(None, signal="other")
    # The whole message: the problem, why, and the fix.
    assert str(raised.value) == (
        "Signal.send() got the keyword argument 'signal', which is reserved: "
        "every receiver already gets the signal as signal=. Rename the argument."
    )


def test_a_weakly_connected_lambda_warns_and_names_it() -> None:
    signal = Signal()
    with pytest.warns(WeakReceiverWarning, match=r"<lambda>.*weak=False") as caught:
        signal.connect(lambda **kwargs: None)
    assert caught[0].filename == __file__


def test_a_weakly_connected_local_function_warns_and_names_it() -> None:
    def on_order(**kwargs: Any) -> None:
        pass

    with pytest.warns(WeakReceiverWarning, match=r"on_order.*weak=False"):
        Signal().connect(on_order)


def test_a_strongly_connected_local_function_does_not_warn() -> None:
    def on_order(**kwargs: Any) -> str:
        return "kept"

    signal = Signal()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        signal.connect(on_order, weak=False)
    del on_order
    assert [response for _, response in signal.send(None)] == ["kept"]


class Slotted:
    __slots__ = ()

    def __call__(self, **kwargs: Any) -> str:
        return "slotted"

    def method(self, **kwargs: Any) -> str:
        return "method"


def test_a_receiver_that_cannot_be_held_weakly_names_weak_false() -> None:
    signal = Signal()
    with pytest.raises(TypeError) as raised:
        signal.connect(Slotted())
    assert str(raised.value) == (
        "Cannot hold the receiver Slotted by a weak reference (Slotted objects "
        "do not support it). Connect it with weak=False."
    )
    with pytest.raises(TypeError) as raised:
        signal.connect(Slotted().method)
    assert str(raised.value) == (
        "Cannot hold the receiver Slotted.method by a weak reference (Slotted "
        "objects do not support it). Connect it with weak=False."
    )

    signal.connect(Slotted(), weak=False)
    assert signal.send(None)[0][1] == "slotted"


def test_an_unknown_connect_option_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        Signal().connect(first, colour="red")


# -- exceptions ------------------------------------------------------------------


def test_send_propagates_the_first_exception_and_skips_later_receivers() -> None:
    signal = Signal()
    calls: list[str] = []

    def later(**kwargs: Any) -> None:
        calls.append("later")

    signal.connect(fail)
    signal.connect(later, weak=False)

    with pytest.raises(ValueError, match="receiver failed"):
        signal.send(None)
    assert calls == []


def test_send_robust_returns_exceptions_with_tracebacks_and_logs_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signal = Signal()
    signal.connect(first)
    signal.connect(fail)
    signal.connect(second)

    with caplog.at_level(logging.ERROR, logger="tocsin"):
        responses = signal.send_robust(None, x=1)

    assert [r for r, _ in responses] == [first, fail, second]
    assert responses[0][1] == "first"
    assert responses[2][1] == "second"
    error = responses[1][1]
    assert isinstance(error, ValueError)
    assert error.__traceback__ is not None
    [log] = caplog.records
    assert log.name == "tocsin"
    assert log.levelno == logging.ERROR
    assert log.getMessage() == (
        f"Error calling {fail.__qualname__} in Signal.send_robust() (receiver failed)"
    )
    assert log.exc_info is not None
    assert log.exc_info[1] is error


def test_send_robust_logs_the_qualified_name_of_a_method(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Handler:
        def on_event(self, **kwargs: Any) -> None:
            raise KeyError("missing")

    handler = Handler()
    signal = Signal()
    signal.connect(handler.on_event)

    with caplog.at_level(logging.ERROR, logger="tocsin"):
        signal.send_robust(None)

    assert caplog.records[0].getMessage() == (
        f"Error calling {Handler.on_event.__qualname__} in Signal.send_robust() "
        "('missing')"
    )


def test_send_robust_does_not_swallow_base_exceptions() -> None:
    signal = Signal()

    def interrupt(**kwargs: Any) -> None:
        raise KeyboardInterrupt

    signal.connect(interrupt, weak=False)
    with pytest.raises(KeyboardInterrupt):
        signal.send_robust(None)


# -- changes during a send -------------------------------------------------------


def test_connecting_during_a_send_takes_effect_at_the_next_send() -> None:
    signal = Signal()

    def connect_another(**kwargs: Any) -> str:
        signal.connect(second)
        return "connector"

    signal.connect(connect_another, weak=False)

    assert [r for r, _ in signal.send(None)] == [connect_another]
    assert [r for r, _ in signal.send(None)] == [connect_another, second]


def test_disconnecting_during_a_send_takes_effect_at_the_next_send() -> None:
    signal = Signal()

    def disconnect_later(**kwargs: Any) -> None:
        signal.disconnect(second)

    signal.connect(disconnect_later, weak=False)
    signal.connect(second)

    assert [r for r, _ in signal.send(None)] == [disconnect_later, second]
    assert [r for r, _ in signal.send(None)] == [disconnect_later]


# -- inspection ------------------------------------------------------------------


async def async_first(**kwargs: Any) -> None:
    pass


def test_receivers_info_describes_each_connection_in_dispatch_order() -> None:
    signal = Signal()
    sender = Sender()
    signal.connect(first)
    signal.connect(async_first, sender=sender, priority=3, dispatch_uid="uid-a")
    signal.connect(second, weak=False, priority=-1)

    infos = signal.receivers_info()

    assert all(isinstance(info, ReceiverInfo) for info in infos)
    assert [info.receiver for info in infos] == [async_first, first, second]
    uid, plain, strong = infos
    assert uid.sender is sender
    assert uid.dispatch_uid == "uid-a"
    assert uid.priority == 3
    assert uid.is_async is True
    assert uid.weak is True
    assert plain.sender is None
    assert plain.dispatch_uid is None
    assert plain.is_async is False
    assert plain.qualname == "first"
    assert plain.module == __name__
    assert plain.line == first.__code__.co_firstlineno
    assert plain.file == __file__
    assert strong.weak is False
    assert strong.priority == -1
    assert strong.options == {}


def test_receivers_info_for_a_sender_lists_what_a_send_would_call() -> None:
    signal = Signal()
    sender = Sender()
    signal.connect(first, sender=sender)
    signal.connect(second, sender="shop")
    signal.connect(third, priority=1)

    assert [i.receiver for i in signal.receivers_info(sender=sender)] == [third, first]
    assert [i.receiver for i in signal.receivers_info(sender="shop")] == [
        third,
        second,
    ]
    assert [i.receiver for i in signal.receivers_info(sender=None)] == [third]
    assert [i.sender for i in signal.receivers_info(sender="shop")] == [None, "shop"]


def test_receivers_info_describes_callable_objects_and_methods() -> None:
    class Handler:
        def __call__(self, **kwargs: Any) -> None:
            pass

        def on_event(self, **kwargs: Any) -> None:
            pass

    handler = Handler()
    signal = Signal()
    signal.connect(handler)
    signal.connect(handler.on_event)

    call_info, method_info = signal.receivers_info()

    assert call_info.qualname == Handler.__qualname__
    assert call_info.module == __name__
    assert call_info.line == Handler.__call__.__code__.co_firstlineno
    assert method_info.qualname == Handler.on_event.__qualname__
    assert method_info.line == Handler.on_event.__code__.co_firstlineno


def test_receivers_info_leaves_out_dead_receivers() -> None:
    import gc

    class Handler:
        def __call__(self, **kwargs: Any) -> None:
            pass

    signal = Signal()
    handler = Handler()
    signal.connect(handler)
    signal.connect(first)
    del handler
    gc.collect()

    assert [info.receiver for info in signal.receivers_info()] == [first]
    assert len(signal.receivers) == 1


def test_a_str_subclass_sender_reaches_receivers_of_the_equal_string() -> None:
    import enum

    class Shop(enum.StrEnum):
        MAIN = "main"

    signal = Signal()
    signal.connect(first, sender="main")
    assert signal.send(Shop.MAIN, val=1) == [(first, "first")]
    assert signal.send(True, val=1) == []


def test_true_and_1_are_different_senders() -> None:
    signal = Signal()
    signal.connect(first, sender=1)
    assert signal.send(True, val=1) == []
    assert signal.send(1, val=2) == [(first, "first")]


def test_a_nan_priority_is_refused() -> None:
    with pytest.raises(TypeError, match="priority must be a number"):
        Signal().connect(first, priority=float("nan"))
