"""The observation hook: tocsin.observe(), Observer, Dispatch and ReceiverCall."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import tocsin
from support import Recorder
from tocsin import (
    Dispatch,
    Observer,
    Signal,
    _observe,
    observe,
    observing,
)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with observing(Recorder()) as observer:
        yield observer


def first(sender: Any, **kwargs: Any) -> str:
    return "first"


def second(sender: Any, **kwargs: Any) -> str:
    return "second"


async def third(sender: Any, **kwargs: Any) -> str:
    await asyncio.sleep(0)
    return "third"


def send_in_mode(signal: Signal, mode: str, sender: Any, **named: Any) -> Any:
    if mode == "send":
        return signal.send(sender, **named)
    if mode == "send_robust":
        return signal.send_robust(sender, **named)
    if mode == "asend":
        return asyncio.run(signal.asend(sender, **named))
    return asyncio.run(signal.asend_robust(sender, **named))


MODES = ["send", "send_robust", "asend", "asend_robust"]


# -- callbacks and records ---------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_callbacks_come_in_order_with_sync_receivers_before_async_ones(
    recorder: Recorder, mode: str
) -> None:
    signal = Signal(name="order_paid")
    signal.connect(third)
    signal.connect(second)
    signal.connect(first, priority=1)
    responses = send_in_mode(signal, mode, "shop", order=7)
    assert responses == [(first, "first"), (second, "second"), (third, "third")]
    assert recorder.trail() == [
        "send_started order_paid",
        "receiver_started first",
        "receiver_finished first",
        "receiver_started second",
        "receiver_finished second",
        "receiver_started third",
        "receiver_finished third",
        "send_finished order_paid",
    ]
    (dispatch,) = recorder.dispatches()
    assert dispatch.mode == mode
    assert dispatch.sender == "shop"
    assert dispatch.kwargs == {"order": 7}
    assert dispatch.names == ("order",)
    assert dispatch.depth == 0
    assert dispatch.parent is None
    assert [c.result for c in dispatch.calls] == ["first", "second", "third"]
    assert [c.is_async for c in dispatch.calls] == [False, False, True]
    assert dispatch.duration_ns is not None
    for call in dispatch.calls:
        assert call.dispatch is dispatch
        assert call.duration_ns is not None
        assert call.duration_ns >= 0
        assert dispatch.start_ns <= call.start_ns <= call.end_ns  # type: ignore[operator]
        assert call.end_ns <= dispatch.end_ns  # type: ignore[operator]


def test_a_send_that_nobody_listens_to_is_still_seen(recorder: Recorder) -> None:
    signal = Signal(name="lonely")
    assert signal.send("shop") == []
    other = Signal(name="filtered")
    other.connect(first, sender="someone else")
    assert other.send("shop") == []
    assert recorder.trail() == [
        "send_started lonely",
        "send_finished lonely",
        "send_started filtered",
        "send_finished filtered",
    ]


def test_only_the_receivers_of_the_sender_are_reported(recorder: Recorder) -> None:
    signal = Signal(name="saved")
    signal.connect(first, sender="orders")
    signal.connect(second, sender="users")
    signal.send("users")
    assert [c.qualname for c in recorder.dispatches()[0].calls] == ["second"]


def test_a_receiver_exception_propagates_by_identity_and_is_recorded(
    recorder: Recorder,
) -> None:
    error = LookupError("no such order")

    def broken(sender: Any, **kwargs: Any) -> None:
        raise error

    signal = Signal(name="s")
    signal.connect(broken, weak=False)
    signal.connect(second)
    with pytest.raises(LookupError) as raised:
        signal.send("shop")
    assert raised.value is error
    (dispatch,) = recorder.dispatches()
    assert [c.exception for c in dispatch.calls] == [error]  # second never ran
    assert dispatch.exception is error
    assert recorder.trail()[-1] == "send_finished s"


def test_send_robust_records_each_failure_and_calls_the_rest(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise ValueError("bad")

    signal = Signal(name="s")
    signal.connect(broken, weak=False)
    signal.connect(second)
    responses = signal.send_robust("shop")
    assert isinstance(responses[0][1], ValueError)
    assert responses[1] == (second, "second")
    calls = recorder.dispatches()[0].calls
    assert calls[0].exception is responses[0][1]
    assert calls[1].exception is None
    assert calls[1].result == "second"
    assert recorder.dispatches()[0].exception is None
    assert "Error calling" in caplog.text  # logged as when unobserved


def test_reserved_names_are_rejected_as_when_unobserved(recorder: Recorder) -> None:
    signal = Signal()
    signal.connect(first)
    with pytest.raises(TypeError, match="'signal', which is reserved"):
        signal.send("shop", signal=1)
    assert recorder.dispatches()[0].calls == []


@pytest.mark.parametrize("mode", MODES)
def test_observed_and_unobserved_sends_return_the_same_responses(mode: str) -> None:
    signal = Signal()
    signal.connect(first)
    signal.connect(third)
    signal.connect(second, sender="other")
    plain = send_in_mode(signal, mode, "shop", x=1)
    with observing(Recorder()):
        observed = send_in_mode(signal, mode, "shop", x=1)
    assert observed == plain == [(first, "first"), (third, "third")]


def test_no_record_is_made_when_nobody_observes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a record was made with no observer")

    monkeypatch.setattr(_observe.Dispatch, "__init__", forbidden)
    monkeypatch.setattr(_observe.ReceiverCall, "__init__", forbidden)
    signal = Signal()
    signal.connect(first)
    signal.connect(third)
    assert signal.send("shop") == [(first, "first"), (third, "third")]
    assert signal.send_robust("shop") == [(first, "first"), (third, "third")]
    assert asyncio.run(signal.asend("shop")) == [(first, "first"), (third, "third")]
    assert Signal().send("shop") == []
    with (
        pytest.raises(AssertionError, match="a record was made"),
        observing(Observer()),
    ):
        signal.send("shop")


# -- nesting, threads, tasks ------------------------------------------------------------


def test_a_send_made_by_a_receiver_has_that_call_as_parent(recorder: Recorder) -> None:
    outer, middle, inner = (
        Signal(name="outer"),
        Signal(name="middle"),
        Signal(name="inner"),
    )

    def on_outer(sender: Any, **kwargs: Any) -> None:
        middle.send(sender)

    def on_middle(sender: Any, **kwargs: Any) -> None:
        inner.send(sender)

    outer.connect(on_outer, weak=False)
    middle.connect(on_middle, weak=False)
    inner.connect(first)
    outer.send("shop")
    one, two, three = recorder.dispatches()
    assert [d.depth for d in (one, two, three)] == [0, 1, 2]
    assert two.parent is one.calls[0]
    assert three.parent is two.calls[0]
    assert three.calls[0].depth == 2
    # and after the send, a new one starts at the top again
    inner.send("shop")
    assert recorder.dispatches()[-1].parent is None


def test_async_receivers_sending_again_get_their_own_call_as_parent(
    recorder: Recorder,
) -> None:
    outer, inner = Signal(name="outer"), Signal(name="inner")

    async def on_outer_a(sender: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0.01)
        await inner.asend("a")

    async def on_outer_b(sender: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0)
        await inner.asend("b")

    outer.connect(on_outer_a, weak=False)
    outer.connect(on_outer_b, weak=False)
    inner.connect(first)
    asyncio.run(outer.asend("shop"))
    top = recorder.dispatches()[0]
    by_sender = {d.sender: d for d in recorder.dispatches()[1:]}
    calls = {c.qualname.rsplit(".", 1)[-1]: c for c in top.calls}
    assert by_sender["a"].parent is calls["on_outer_a"]
    assert by_sender["b"].parent is calls["on_outer_b"]


def test_concurrent_asends_never_mix_their_records(recorder: Recorder) -> None:
    """Two sends whose receivers interleave at every await; each nested send
    still names its own receiver as parent."""
    outer, inner = Signal(name="outer"), Signal(name="inner")
    seen: dict[str, list[int]] = {}

    async def relay(sender: Any, **kwargs: Any) -> None:
        for step in range(3):
            await asyncio.sleep(0)
            await inner.asend(sender, step=step)

    def note(sender: Any, step: int, **kwargs: Any) -> None:
        seen.setdefault(sender, []).append(step)

    outer.connect(relay, weak=False)
    inner.connect(note, weak=False)

    async def main() -> None:
        await asyncio.gather(outer.asend("left"), outer.asend("right"))

    asyncio.run(main())
    assert seen == {"left": [0, 1, 2], "right": [0, 1, 2]}
    tops = [d for d in recorder.dispatches() if d.depth == 0]
    assert sorted(d.sender for d in tops) == ["left", "right"]
    for top in tops:
        children = [d for d in recorder.dispatches() if d.parent is top.calls[0]]
        assert [d.sender for d in children] == [top.sender] * 3
        assert [d.kwargs["step"] for d in children] == [0, 1, 2]


def test_a_thread_pool_given_the_context_keeps_the_parent(recorder: Recorder) -> None:
    outer, inner = Signal(name="outer"), Signal(name="inner")

    def on_outer(sender: Any, **kwargs: Any) -> None:
        with ThreadPoolExecutor(2) as pool:
            context = contextvars.copy_context()
            pool.submit(context.run, inner.send, "copied").result()
            pool.submit(inner.send, "bare").result()

    outer.connect(on_outer, weak=False)
    inner.connect(first)
    outer.send("shop")
    by_sender = {d.sender: d for d in recorder.dispatches()}
    assert by_sender["copied"].parent is by_sender["shop"].calls[0]
    assert by_sender["copied"].depth == 1
    assert by_sender["bare"].parent is None
    assert by_sender["bare"].depth == 0


def test_sends_from_many_threads_while_observers_come_and_go() -> None:
    signal = Signal(name="busy")
    signal.connect(first)
    errors: list[BaseException] = []
    stop = threading.Event()
    recorders = [Recorder() for _ in range(4)]

    def sender() -> None:
        try:
            while not stop.is_set():
                assert signal.send("shop", x=1) == [(first, "first")]
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=sender) for _ in range(3)]
    for thread in threads:
        thread.start()
    for _ in range(200):
        undos = [observe(r) for r in recorders]
        for undo in reversed(undos):
            undo()
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _observe.observers() == ()
    for r in recorders:  # every dispatch seen to start was seen to finish
        names = [n for n, _ in r.events]
        assert names.count("send_started") == names.count("send_finished")


# -- adding and removing observers --------------------------------------------------------


def test_undo_in_the_middle_of_a_send_still_reports_its_end() -> None:
    recorder = Recorder()
    signal = Signal(name="s")
    undo = observe(recorder)

    def undoing(sender: Any, **kwargs: Any) -> None:
        undo()

    signal.connect(undoing, weak=False)
    signal.connect(second)
    signal.send("shop")
    assert recorder.trail() == [
        "send_started s",
        "receiver_started undoing",
        "receiver_finished undoing",
        "receiver_started second",
        "receiver_finished second",
        "send_finished s",
    ]
    signal.send("shop")
    assert len(recorder.events) == 6
    undo()  # twice: nothing more happens
    assert _observe.observers() == ()


def test_an_observer_added_during_a_send_hears_the_next_send_only() -> None:
    late = Recorder()
    undos: list[Callable[[], None]] = []
    signal = Signal(name="s")

    def adding(sender: Any, **kwargs: Any) -> None:
        if not undos:
            undos.append(observe(late))

    signal.connect(adding, weak=False)
    with observing(Recorder()):
        signal.send("shop")
        assert late.events == []
        signal.send("shop")
    undos[0]()
    assert late.trail()[0] == "send_started s"
    assert len(late.events) == 4


def test_the_same_observer_added_twice_hears_twice_and_each_undo_removes_one() -> None:
    recorder = Recorder()
    signal = Signal(name="s")
    undo_one, undo_two = observe(recorder), observe(recorder)
    signal.send("shop")
    assert recorder.trail() == ["send_started s"] * 2 + ["send_finished s"] * 2
    undo_one()
    signal.send("shop")
    assert len(recorder.events) == 6
    undo_two()
    assert _observe.observers() == ()


def test_observe_rejects_an_object_that_is_not_an_observer() -> None:
    class Partial:
        def send_started(self, dispatch: Any) -> None: ...

    expected = (
        r"no receiver_started, receiver_finished, send_finished method\. Subclass"
    )
    with pytest.raises(TypeError, match=expected):
        observe(Partial())  # type: ignore[arg-type]
    assert _observe.observers() == ()


@pytest.mark.parametrize(
    "callback",
    ["send_started", "receiver_started", "receiver_finished", "send_finished"],
)
def test_an_observer_that_raises_is_logged_and_changes_nothing(
    callback: str, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(Observer):
        pass

    def explode(record: Any) -> None:
        raise RuntimeError(f"observer bug in {callback}")

    broken = Broken()
    setattr(broken, callback, explode)
    after = Recorder()
    signal = Signal(name="s")
    signal.connect(first)
    with (
        caplog.at_level(logging.WARNING, "tocsin.observe"),
        observing(broken),
        observing(after),
    ):
        assert signal.send("shop") == [(first, "first")]
        assert asyncio.run(signal.asend("shop")) == [(first, "first")]
    assert len(after.events) == 8  # the next observer still heard everything
    failures = [r for r in caplog.records if r.name == "tocsin.observe"]
    assert len(failures) == 2
    assert failures[0].levelno == logging.WARNING
    assert callback in failures[0].getMessage()
    assert failures[0].exc_info is not None
    assert str(failures[0].exc_info[1]) == f"observer bug in {callback}"


# -- what records hold ----------------------------------------------------------------


def test_records_do_not_keep_a_weak_receiver_alive(recorder: Recorder) -> None:
    class Handler:
        def on_saved(self, sender: Any, **kwargs: Any) -> str:
            return "handled"

    handler = Handler()
    signal = Signal(name="s")
    signal.connect(handler.on_saved)
    signal.send("shop")
    call = recorder.dispatches()[0].calls[0]
    assert call.receiver == handler.on_saved
    info = call.info
    assert info is not None
    assert info.qualname.endswith("Handler.on_saved")
    assert info.weak
    del info
    gone = weakref.ref(handler)
    del handler
    gc.collect()
    assert gone() is None
    assert call.receiver is None
    assert call.info is None
    assert call.qualname.endswith("Handler.on_saved")  # the name outlives it


def test_records_are_read_only(recorder: Recorder) -> None:
    signal = Signal(name="s")
    signal.connect(first)
    signal.send("shop")
    dispatch = recorder.dispatches()[0]
    with pytest.raises(AttributeError):
        dispatch.mode = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        dispatch.calls[0].result = "other"  # type: ignore[misc]


def test_receiver_info_in_a_record_describes_the_connection(recorder: Recorder) -> None:
    signal = Signal(name="s")
    signal.connect(first, sender="shop", dispatch_uid="uid-1", priority=5)
    signal.send("shop")
    info = recorder.dispatches()[0].calls[0].info
    assert info is not None
    assert (info.receiver, info.qualname, info.module) == (first, "first", __name__)
    assert (info.sender, info.dispatch_uid, info.priority) == ("shop", "uid-1", 5)
    assert info.line == first.__code__.co_firstlineno


def test_what_async_receivers_set_in_context_still_reaches_the_caller() -> None:
    variable: contextvars.ContextVar[str] = contextvars.ContextVar("v", default="unset")

    async def setter(sender: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0)
        variable.set("set by the receiver")

    signal = Signal()
    signal.connect(setter, weak=False)

    async def main() -> str:
        await signal.asend("shop")
        return variable.get()

    with observing(Recorder()):
        assert asyncio.run(main()) == "set by the receiver"
    assert _observe._current.get() is None


def test_signal_trace_flag_is_kept_and_per_row_signals_are_marked() -> None:
    from tocsin.signals import post_init, post_save, pre_init

    assert Signal().trace is True
    assert Signal(trace=False).trace is False
    assert (pre_init.trace, post_init.trace, post_save.trace) == (False, False, True)


def test_the_public_names_come_from_tocsin() -> None:
    assert tocsin.observe is observe
    assert repr(Dispatch) == "<class 'tocsin.Dispatch'>"


def test_any_deferring_option_is_observed_when_scheduled_and_when_run(
    recorder: Recorder,
) -> None:
    """The seam a future ``durable=True`` uses: an option that queues the
    receiver gets a stand-in that reports its run under the option's name."""
    import inspect

    from tocsin import _options

    queue: list[Callable[[], Any]] = []

    class Queued(_options.ConnectOption):
        name = "queued"

        def deliver(self, value: Any, receiver: Any, signal: Any, sender: Any,
                    named: dict[str, Any], robust: bool) -> str:  # fmt: skip
            assert inspect.unwrap(receiver) is first  # the real receiver, for a path
            queue.append(lambda: receiver(signal=signal, sender=sender, **named))
            return _options.DEFERRED

    _options.register(Queued())
    try:
        signal = Signal(name="s")
        signal.connect(first, queued=True)
        assert signal.send("shop", x=1) == [(first, None)]
        (scheduled,) = recorder.dispatches()[0].calls
        assert scheduled.deferred == "queued"
        assert queue[0]() == "first"
    finally:
        del _options._handlers["queued"]
    run = recorder.dispatches()[1]
    assert (run.mode, run.origin, run.kwargs) == (
        "queued",
        recorder.dispatches()[0],
        {"x": 1},
    )
    assert run.calls[0].result == "first"


def test_observing_does_not_change_what_async_receivers_see_of_the_context() -> None:
    seen = contextvars.ContextVar("seen", default="unset")
    signal = Signal(name="shared")

    async def first(sender: Any, **kwargs: Any) -> str:
        seen.set("set by first")
        await asyncio.sleep(0)
        return "first"

    async def second(sender: Any, **kwargs: Any) -> str:
        await asyncio.sleep(0)
        return seen.get()

    signal.connect(first, weak=False)
    signal.connect(second, weak=False)

    async def main() -> tuple[list[Any], str]:
        responses = await signal.asend(None)
        return [response for _, response in responses], seen.get()

    unobserved = asyncio.run(main())
    with tocsin.observing(Recorder()):
        observed = asyncio.run(main())
    assert observed == unobserved == (["first", "set by first"], "set by first")
