"""The observation hook on every path of a send: failures in each mode, async
receivers, connect options that run a receiver now, defer it or fail, the
deferred runs, and what observing must never change or keep alive."""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import types
import warnings
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from support import Recorder
from test_observe import MODES, send_in_mode
from tocsin import Observer, Signal, _observe, _options, observe, observing
from tocsin.transaction import captured_on_commit


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with observing(Recorder()) as observer:
        yield observer


class Scripted(_options.ConnectOption):
    """A connect option whose answer the test sets: what ``durable`` or any
    future deferring option does, without a database."""

    name = "scripted"

    def __init__(self) -> None:
        self.answer: str | BaseException = _options.DEFERRED
        self.queue: list[Callable[..., Any]] = []
        self.run_while_scheduling = False

    def deliver(self, value: Any, receiver: Any, signal: Any, sender: Any,
                named: dict[str, Any], robust: bool) -> str:  # fmt: skip
        if isinstance(self.answer, BaseException):
            raise self.answer
        if self.answer == _options.DEFERRED:
            self.queue.append(receiver)
            if self.run_while_scheduling:
                receiver(signal=signal, sender=sender, **named)
        return self.answer


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    option = Scripted()
    _options.register(option)
    try:
        yield option
    finally:
        del _options._handlers["scripted"]


# -- records -------------------------------------------------------------------------


def test_each_dispatch_has_a_larger_id_than_the_one_before(recorder: Recorder) -> None:
    signal = Signal(name="s")
    signal.send("shop")
    signal.send("shop")
    one, two = recorder.dispatches()
    assert isinstance(one.id, int)
    assert two.id > one.id


def test_end_times_are_unset_until_the_send_and_each_call_end() -> None:
    seen: list[tuple[str, Any, Any]] = []

    class Snapshot(Observer):
        def send_started(self, dispatch: Any) -> None:
            seen.append(("send", dispatch.end_ns, dispatch.duration_ns))

        def receiver_started(self, call: Any) -> None:
            seen.append((call.qualname, call.end_ns, call.duration_ns))

    async def later(sender: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0)

    signal = Signal(name="s")
    signal.connect(later, weak=False)
    signal.connect(lambda sender, **kwargs: None, weak=False)
    with observing(Snapshot()):
        signal.send("shop")
    assert [(end, duration) for _, end, duration in seen] == [(None, None)] * 3


def test_records_show_their_signal_mode_depth_and_deferral_in_repr(
    recorder: Recorder, scripted: Scripted
) -> None:
    def notify(sender: Any, **kwargs: Any) -> None: ...

    named, unnamed = Signal(name="order_paid"), Signal()
    named.connect(notify, weak=False, scripted=True)
    named.send("shop")
    unnamed.send_robust("shop")
    first, second = recorder.dispatches()
    assert repr(first) == f"<tocsin.Dispatch #{first.id} send order_paid depth=0>"
    assert repr(second) == f"<tocsin.Dispatch #{second.id} send_robust signal depth=0>"
    (call,) = first.calls
    assert (
        repr(call) == f"<tocsin.ReceiverCall {call.qualname} deferred=scripted depth=0>"
    )
    scripted.queue[0](signal=named, sender="shop")
    run = recorder.dispatches()[-1]
    assert repr(run.calls[0]) == f"<tocsin.ReceiverCall {call.qualname} depth=0>"


# -- adding and removing observers ---------------------------------------------------


def test_calling_one_undo_twice_removes_only_its_own_addition() -> None:
    recorder = Recorder()
    undo_one, undo_two = observe(recorder), observe(recorder)
    undo_one()
    undo_one()
    assert _observe.observers() == (recorder,)
    undo_two()
    assert _observe.observers() == ()


def test_a_duck_typed_observer_with_callbacks_as_attributes_is_heard() -> None:
    heard: list[str] = []
    duck = types.SimpleNamespace(
        send_started=lambda d: heard.append("send_started"),
        receiver_started=lambda c: heard.append("receiver_started"),
        receiver_finished=lambda c: heard.append("receiver_finished"),
        send_finished=lambda d: heard.append("send_finished"),
    )
    signal = Signal()
    signal.connect(lambda sender, **kwargs: None, weak=False)
    with observing(duck):  # type: ignore[arg-type]
        signal.send("shop")
    assert heard == [
        "send_started",
        "receiver_started",
        "receiver_finished",
        "send_finished",
    ]


def test_a_mirror_gets_the_observers_at_once_and_after_every_change() -> None:
    """The seam Signal uses to test one global per send (see _signal)."""
    seen: list[tuple[Observer, ...]] = []
    _observe.mirror(seen.append)
    try:
        recorder = Recorder()
        with observing(recorder):
            pass
    finally:
        _observe._mirrors.remove(seen.append)
    assert seen == [(), (recorder,), ()]


@pytest.mark.parametrize("how", ["override", "attribute"])
def test_an_observer_failure_is_logged_naming_the_observer_error_and_callback(
    how: str, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(record: Any) -> None:
        raise KeyError("observer bug")

    class Broken(Observer):
        if how == "override":
            send_finished = staticmethod(explode)

            def receiver_started(self, call: Any) -> None:
                explode(call)

    broken = Broken()
    if how == "attribute":
        broken.receiver_started = explode  # type: ignore[method-assign]
    signal = Signal()
    signal.connect(lambda sender, **kwargs: "ok", weak=False)
    with caplog.at_level(logging.WARNING, "tocsin.observe"), observing(broken):
        assert signal.send("shop")[0][1] == "ok"
    shown = broken if how == "override" else explode
    messages = [r.getMessage() for r in caplog.records if r.name == "tocsin.observe"]
    assert messages[0] == (
        f"The observer {shown!r} raised KeyError in receiver_started(); "
        "the send went on."
    )
    if how == "override":  # a static method has no __self__: the function is named
        assert messages[1] == (
            f"The observer {explode!r} raised KeyError in send_finished(); "
            "the send went on."
        )


# -- each mode ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("mode", MODES)
def test_a_failing_receiver_is_recorded_in_every_mode_as_the_send_handles_it(
    mode: str, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    error = LookupError("no such order")

    def broken(sender: Any, **kwargs: Any) -> None:
        raise error

    async def broken_async(sender: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0)
        raise error

    signal = Signal(name="s")
    receiver = broken if kind == "sync" else broken_async
    signal.connect(receiver, weak=False)
    robust = mode.endswith("robust")
    with caplog.at_level(logging.ERROR, "tocsin"):
        if robust:
            unobserved = send_in_mode(signal, mode, "shop")
        with observing(Recorder()) as recorder:
            if robust:
                assert send_in_mode(signal, mode, "shop") == [(receiver, error)]
            else:
                with pytest.raises(LookupError) as raised:
                    send_in_mode(signal, mode, "shop")
                assert raised.value is error
    (dispatch,) = recorder.dispatches()
    (call,) = dispatch.calls
    assert call.exception is error
    assert call.end_ns is not None
    assert dispatch.exception is (None if robust else error)
    if robust:  # logged as when unobserved, naming the receiver
        assert unobserved == [(receiver, error)]
        logged = [r for r in caplog.records if r.name == "tocsin"]
        assert [r.getMessage() for r in logged] == [
            f"Error calling {receiver.__qualname__} in Signal.send_robust() "
            "(no such order)"
        ] * 2
        assert logged[1].exc_info is not None
        assert logged[1].exc_info[1] is error


@pytest.mark.parametrize("mode", MODES)
def test_observed_receivers_get_the_signal_the_sender_and_every_argument(
    mode: str,
) -> None:
    got: list[tuple[str, Any]] = []

    def plain(**arguments: Any) -> None:
        got.append(("plain", arguments))

    async def later(**arguments: Any) -> None:
        got.append(("async", arguments))

    signal = Signal()
    signal.connect(plain, weak=False)
    signal.connect(later, weak=False)
    send_in_mode(signal, mode, "shop", order=7, total=3)
    unobserved = list(got)
    got.clear()
    with observing(Recorder()):
        send_in_mode(signal, mode, "shop", order=7, total=3)
    expected = {"signal": signal, "sender": "shop", "order": 7, "total": 3}
    assert got == unobserved == [("plain", expected), ("async", expected)]


@pytest.mark.parametrize("mode", MODES)
def test_only_the_receivers_of_the_sender_are_reported_in_every_mode(
    recorder: Recorder, mode: str
) -> None:
    async def for_orders(sender: Any, **kwargs: Any) -> str:
        return "orders"

    async def for_users(sender: Any, **kwargs: Any) -> str:
        return "users"

    signal = Signal()
    signal.connect(for_orders, sender="orders", weak=False)
    signal.connect(for_users, sender="users", weak=False)
    assert send_in_mode(signal, mode, "users") == [(for_users, "users")]
    assert [c.qualname for c in recorder.dispatches()[0].calls] == [
        for_users.__qualname__
    ]


@pytest.mark.parametrize("method", ["send", "send_robust"])
def test_a_sync_send_with_async_receivers_in_a_running_loop_names_its_method(
    method: str,
) -> None:
    async def later(sender: Any, **kwargs: Any) -> None: ...

    signal = Signal()
    signal.connect(later, weak=False)

    async def attempt() -> str:
        with pytest.raises(RuntimeError) as raised:
            getattr(signal, method)("shop")
        return str(raised.value)

    unobserved = asyncio.run(attempt())
    with observing(Recorder()):
        observed = asyncio.run(attempt())
    assert observed == unobserved
    assert observed.startswith(f"Signal.{method}() has async receivers to run")


def test_an_async_receiver_that_cannot_take_the_arguments_fails_the_send_cleanly() -> (
    None
):
    async def fine(sender: Any, **kwargs: Any) -> None: ...

    async def narrow(sender: Any, order: int, **kwargs: Any) -> None: ...

    signal = Signal()
    signal.connect(fine, weak=False)
    signal.connect(narrow, weak=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(TypeError) as unobserved:
            asyncio.run(signal.asend("shop"))
        with observing(Recorder()), pytest.raises(TypeError) as observed:
            asyncio.run(signal.asend("shop"))
        gc.collect()
    assert str(observed.value) == str(unobserved.value)
    assert "missing 1 required positional argument: 'order'" in str(observed.value)
    assert [str(w.message) for w in caught] == []  # fine() was closed, not leaked


# -- nesting across tasks ------------------------------------------------------------


def test_a_nested_send_in_another_task_while_an_async_receiver_waits_has_its_parent(
    recorder: Recorder,
) -> None:
    slow, outer, inner = Signal(name="slow"), Signal(name="outer"), Signal(name="inner")

    async def main() -> None:
        started, release = asyncio.Event(), asyncio.Event()

        async def waiting(sender: Any, **kwargs: Any) -> None:
            started.set()
            await release.wait()

        def relay(sender: Any, **kwargs: Any) -> None:
            inner.send(sender)

        slow.connect(waiting, weak=False)
        outer.connect(relay, weak=False)
        pending = asyncio.create_task(slow.asend("slow"))
        await started.wait()
        outer.send("here")  # in this task, while waiting() is current in its own
        release.set()
        await pending

    asyncio.run(main())
    by_signal = {d.signal.name: d for d in recorder.dispatches()}
    assert by_signal["inner"].parent is by_signal["outer"].calls[0]
    assert by_signal["outer"].parent is None


def test_an_observed_async_send_keeps_nothing_alive_after_it() -> None:
    class Result:
        pass

    refs: list[weakref.ref[Result]] = []

    async def make(sender: Any, **kwargs: Any) -> Result:
        result = Result()
        refs.append(weakref.ref(result))
        return result

    class Counting(Observer):  # keeps no record
        count = 0

        def send_finished(self, dispatch: Any) -> None:
            Counting.count += 1

    signal = Signal()
    signal.connect(make, weak=False)

    async def main() -> None:
        await signal.asend("shop")
        await signal.asend_robust("shop")

    with observing(Counting()):
        asyncio.run(main())
    gc.collect()
    assert Counting.count == 2
    assert [ref() for ref in refs] == [None, None]


# -- connect options: now, deferred, failing -------------------------------------------


@pytest.mark.parametrize("value", [True, "robust"])
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_an_on_commit_receiver_outside_a_transaction_is_an_ordinary_call(
    recorder: Recorder, kind: str, value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """No transaction: it runs now, raising unless its option says robust."""
    error = ValueError("crm down")

    def notify(sender: Any, fail: bool, **kwargs: Any) -> str:
        if fail:
            raise error
        return "notified"

    async def notify_async(sender: Any, fail: bool, **kwargs: Any) -> str:
        return notify(sender, fail)

    receiver = notify if kind == "sync" else notify_async
    signal = Signal(name="s")
    signal.connect(receiver, weak=False, on_commit=value)
    mode = "send" if kind == "sync" else "asend"
    assert send_in_mode(signal, mode, "shop", fail=False) == [(receiver, "notified")]
    (call,) = recorder.dispatches()[0].calls
    assert (call.deferred, call.result, call.exception) == (None, "notified", None)
    if value == "robust":
        assert send_in_mode(signal, mode, "shop", fail=True) == [(receiver, error)]
        assert "crm down" in caplog.text
    else:
        with pytest.raises(ValueError, match="crm down"):
            send_in_mode(signal, mode, "shop", fail=True)
    (call,) = recorder.dispatches()[1].calls
    assert call.exception is error


@pytest.mark.parametrize("method", ["send", "send_robust"])
def test_an_observed_on_commit_receiver_is_captured_as_robust_as_unobserved(
    method: str,
) -> None:
    def notify(sender: Any, **kwargs: Any) -> None: ...

    signal = Signal()
    signal.connect(notify, weak=False, on_commit=True)
    with captured_on_commit() as unobserved:
        getattr(signal, method)("shop")
    with captured_on_commit() as observed, observing(Recorder()):
        getattr(signal, method)("shop")
    assert [c.robust for c in observed] == [c.robust for c in unobserved]
    assert observed[0].robust is (method == "send_robust")


def test_the_receivers_after_a_deferred_one_still_run(
    recorder: Recorder, scripted: Scripted
) -> None:
    def deferred(sender: Any, **kwargs: Any) -> None: ...

    def now(sender: Any, **kwargs: Any) -> str:
        return "now"

    async def later(sender: Any, **kwargs: Any) -> str:
        return "later"

    signal = Signal(name="s")
    signal.connect(deferred, weak=False, priority=2, scripted=True)
    signal.connect(now, weak=False, priority=1, on_commit=True)
    signal.connect(later, weak=False)
    assert signal.send("shop") == [(deferred, None), (now, "now"), (later, "later")]
    calls = recorder.dispatches()[0].calls
    assert [(c.deferred, c.result) for c in calls] == [
        ("scripted", None),
        (None, "now"),
        (None, "later"),
    ]
    scheduled = calls[0]
    assert scheduled.end_ns is not None
    assert scheduled.start_ns <= scheduled.end_ns
    assert scheduled.duration_ns is not None


def test_an_option_that_fails_to_deliver_is_a_failed_call_and_fails_the_send(
    recorder: Recorder, scripted: Scripted
) -> None:
    error = ConnectionError("queue unreachable")
    scripted.answer = error

    def notify(sender: Any, **kwargs: Any) -> None:
        raise AssertionError("never called")

    signal = Signal(name="s")
    signal.connect(notify, weak=False, scripted=True)
    with pytest.raises(ConnectionError) as raised:
        signal.send("shop")
    assert raised.value is error
    assert recorder.trail() == [
        "send_started s",
        "receiver_started notify",
        "receiver_finished notify",
        "send_finished s",
    ]
    (dispatch,) = recorder.dispatches()
    (call,) = dispatch.calls
    assert (call.exception, dispatch.exception) == (error, error)
    assert call.end_ns is not None
    assert recorder.events[1][1] is call


def test_the_option_gets_a_stand_in_with_the_receivers_names(
    scripted: Scripted,
) -> None:
    def notify(sender: Any, **kwargs: Any) -> None: ...

    class Handler:
        def __call__(self, sender: Any, **kwargs: Any) -> None: ...

    handler = Handler()
    signal = Signal()
    signal.connect(notify, weak=False, scripted=True)
    signal.connect(handler, weak=False, scripted=True)
    with observing(Recorder()):
        signal.send("shop")
    for_function, for_instance = scripted.queue
    assert inspect.unwrap(for_function) is notify
    assert for_function.__name__ == "notify"
    assert for_function.__qualname__ == notify.__qualname__
    assert for_function.__module__ == __name__
    assert inspect.unwrap(for_instance) is handler
    # an instance has no __name__: its class's qualified name stands in
    assert for_instance.__name__ == for_instance.__qualname__ == Handler.__qualname__
    assert for_instance.__module__ == __name__


# -- deferred runs ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_deferred_run_is_a_dispatch_with_the_arguments_of_the_send(
    recorder: Recorder, scripted: Scripted, kind: str
) -> None:
    got: list[dict[str, Any]] = []

    def notify(**arguments: Any) -> str:
        got.append(arguments)
        return "done"

    async def notify_async(**arguments: Any) -> str:
        return notify(**arguments)

    receiver = notify if kind == "sync" else notify_async
    signal = Signal(name="order_paid")
    signal.connect(receiver, weak=False, scripted=True)
    signal.send("shop", order=7)
    result = scripted.queue[0](signal=signal, sender="shop", order=7)
    if kind == "async":
        result = asyncio.run(result)
    assert result == "done"
    assert got == [{"signal": signal, "sender": "shop", "order": 7}]
    scheduling, run = recorder.dispatches()
    assert (run.mode, run.origin, run.exception) == ("scripted", scheduling, None)
    assert run.end_ns is not None
    assert run.duration_ns is not None
    (call,) = run.calls
    assert call.qualname == receiver.__qualname__
    assert call.result == "done"
    assert recorder.events[-1] == ("send_finished", run)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_failing_deferred_run_records_its_exception(
    recorder: Recorder, scripted: Scripted, kind: str
) -> None:
    error = RuntimeError("crm down")

    def notify(sender: Any, **kwargs: Any) -> None:
        raise error

    async def notify_async(sender: Any, **kwargs: Any) -> None:
        raise error

    signal = Signal(name="s")
    signal.connect(
        notify if kind == "sync" else notify_async, weak=False, scripted=True
    )
    signal.send("shop")

    def run_it() -> None:
        result = scripted.queue[0](signal=signal, sender="shop")
        if kind == "async":
            asyncio.run(result)

    with pytest.raises(RuntimeError) as raised:
        run_it()
    assert raised.value is error
    run = recorder.dispatches()[-1]
    assert run.exception is error
    assert run.calls[0].exception is error
    assert recorder.events[-1] == ("send_finished", run)


def test_a_receiver_run_by_its_option_while_scheduling_is_a_deferred_run(
    recorder: Recorder, scripted: Scripted
) -> None:
    scripted.run_while_scheduling = True

    def notify(sender: Any, **kwargs: Any) -> None: ...

    signal = Signal(name="s")
    signal.connect(notify, weak=False, scripted=True)
    signal.send("shop")
    scheduling, run = recorder.dispatches()
    assert run.mode == "deferred"  # the option had not said which it was yet
    assert run.origin is scheduling


def test_a_deferred_run_awaited_by_an_async_receiver_leaves_it_the_parent(
    recorder: Recorder, scripted: Scripted
) -> None:
    """As when an async receiver commits an AsyncSession with on-commit
    receivers: their runs are awaited in its task, and it is current again
    after them."""
    queued, outer, after = (
        Signal(name="queued"),
        Signal(name="outer"),
        Signal(name="after"),
    )

    async def deferred(sender: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0)

    async def committing(sender: Any, **kwargs: Any) -> None:
        queued.send("shop")  # schedules deferred()
        await scripted.queue[0](signal=queued, sender="shop")
        await after.asend("shop")

    queued.connect(deferred, weak=False, scripted=True)
    outer.connect(committing, weak=False)
    asyncio.run(outer.asend("shop"))
    by_signal = {
        d.signal.name: d for d in recorder.dispatches() if d.mode != "scripted"
    }
    (run,) = [d for d in recorder.dispatches() if d.mode == "scripted"]
    assert run.parent is by_signal["outer"].calls[0]
    assert by_signal["after"].parent is by_signal["outer"].calls[0]


def test_a_receiver_without_a_module_name_is_still_deferred(
    recorder: Recorder, scripted: Scripted
) -> None:
    """A method of a C type has no ``__module__``; its stand-in names this hook's."""
    signal = Signal(name="s")
    signal.connect(dict.update, weak=False, scripted=True)
    assert signal.send("shop") == [(dict.update, None)]
    (stand_in,) = scripted.queue
    assert stand_in.__module__ == "tocsin._observe"
    assert stand_in.__name__ == "update"
    assert recorder.dispatches()[0].calls[0].deferred == "scripted"
