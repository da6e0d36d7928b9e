"""Async receivers: detection, ordering, concurrency, contexts, and errors."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import glob
import inspect
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import markcoroutinefunction, sync_to_async

from support import server_unavailable
from tocsin import Signal

request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "request_id", default="unset"
)


def sync_receiver(**kwargs: Any) -> str:
    return "sync"


async def async_receiver(**kwargs: Any) -> str:
    await asyncio.sleep(0)
    return "async"


async def failing_async_receiver(**kwargs: Any) -> None:
    await asyncio.sleep(0)
    raise ValueError("async receiver failed")


def failing_sync_receiver(**kwargs: Any) -> None:
    raise ValueError("sync receiver failed")


class AsyncCallable:
    async def __call__(self, **kwargs: Any) -> str:
        return "async callable"


class Handler:
    async def on_event(self, **kwargs: Any) -> str:
        return "async method"


def marked_by_asgiref(**kwargs: Any) -> Any:
    return async_receiver(**kwargs)


markcoroutinefunction(marked_by_asgiref)


def sync_work(**kwargs: Any) -> str:
    return "sync_to_async"


# -- what counts as async ----------------------------------------------------------

handler = Handler()
ASYNC_RECEIVERS = {
    "async def": async_receiver,
    "async __call__": AsyncCallable(),
    "partial of async def": functools.partial(async_receiver),
    "async bound method": handler.on_event,
    "asgiref markcoroutinefunction": marked_by_asgiref,
    "asgiref sync_to_async": sync_to_async(sync_work),
}


@pytest.mark.parametrize("receiver", ASYNC_RECEIVERS.values(), ids=ASYNC_RECEIVERS)
def test_these_receivers_are_awaited(receiver: Any) -> None:
    signal = Signal()
    signal.connect(receiver, weak=False)

    [info] = signal.receivers_info()
    [(_, response)] = signal.send(None)

    assert info.is_async is True
    assert not inspect.isawaitable(response)
    assert isinstance(response, str)


MARKED_BY_INSPECT = """
import asyncio, inspect, sys
sys.path.insert(0, sys.argv[1])
from tocsin import Signal

async def work(**kwargs):
    await asyncio.sleep(0)
    return "awaited"

def marked(**kwargs):
    return work(**kwargs)

inspect.markcoroutinefunction(marked)
signal = Signal()
signal.connect(marked, weak=False)
assert signal.receivers_info()[0].is_async is True
assert signal.send(None) == [(marked, "awaited")], signal.send(None)
assert asyncio.run(signal.asend(None)) == [(marked, "awaited")]
print("ok")
"""


@pytest.mark.parametrize("version", ["3.12", "3.13"])
def test_a_function_marked_by_inspect_is_awaited(version: str) -> None:
    # inspect.markcoroutinefunction exists from Python 3.12; the core needs
    # only the standard library, so it runs from src/ under those Pythons too.
    python = python_executable(version)
    src = str(Path(__file__).resolve().parent.parent / "src")
    result = subprocess.run(
        [python, "-c", MARKED_BY_INSPECT, src],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def python_executable(version: str) -> str:
    # pyenv's shims answer to "python3.12" without running it unless that
    # version is selected, so look for the interpreter itself first.
    pattern = os.path.expanduser(f"~/.pyenv/versions/{version}*/bin/python{version}")
    candidates = sorted(glob.glob(pattern))
    on_path = shutil.which(f"python{version}")
    if on_path and "/shims/" not in on_path:
        candidates.append(on_path)
    if not candidates:
        server_unavailable(f"Python {version} is not installed")
    return candidates[0]


@pytest.mark.parametrize(
    "receiver", [sync_receiver, functools.partial(sync_receiver), lambda **kw: 1]
)
def test_these_receivers_are_called_synchronously(receiver: Any) -> None:
    signal = Signal()
    signal.connect(receiver, weak=False)

    assert signal.receivers_info()[0].is_async is False


# -- order ---------------------------------------------------------------------------


def order_signal(calls: list[str]) -> Signal:
    """Receivers registered async, sync, async, sync, with priorities."""
    signal = Signal()

    def sync_named(name: str) -> Any:
        def receiver(**kwargs: Any) -> str:
            calls.append(name)
            return name

        return receiver

    def async_named(name: str) -> Any:
        async def receiver(**kwargs: Any) -> str:
            calls.append(name)
            return name

        return receiver

    signal.connect(async_named("async-1"), weak=False)
    signal.connect(sync_named("sync-1"), weak=False)
    signal.connect(async_named("async-2 (priority 5)"), weak=False, priority=5)
    signal.connect(sync_named("sync-2"), weak=False)
    signal.connect(sync_named("sync-3 (priority -1)"), weak=False, priority=-1)
    return signal


EXPECTED_ORDER = [
    # Every synchronous receiver runs first, whatever the priorities, as in
    # Django; priority then registration order applies within each group.
    "sync-1",
    "sync-2",
    "sync-3 (priority -1)",
    "async-2 (priority 5)",
    "async-1",
]


def test_send_calls_sync_receivers_before_async_ones() -> None:
    calls: list[str] = []
    responses = order_signal(calls).send(None)

    assert calls == EXPECTED_ORDER
    assert [response for _, response in responses] == EXPECTED_ORDER


def test_asend_calls_sync_receivers_before_async_ones() -> None:
    calls: list[str] = []
    responses = asyncio.run(order_signal(calls).asend(None))

    assert calls == EXPECTED_ORDER
    assert [response for _, response in responses] == EXPECTED_ORDER


def test_asend_runs_sync_receivers_inline_on_the_event_loop_thread() -> None:
    threads: list[threading.Thread] = []

    def record_thread(**kwargs: Any) -> None:
        threads.append(threading.current_thread())

    signal = Signal()
    signal.connect(record_thread, weak=False)

    async def main() -> threading.Thread:
        await signal.asend(None)
        return threading.current_thread()

    assert threads == [asyncio.run(main())]


def test_asend_with_no_receivers_or_only_sync_ones() -> None:
    signal = Signal()
    assert asyncio.run(signal.asend(None)) == []
    signal.connect(sync_receiver)
    assert asyncio.run(signal.asend(None, x=1)) == [(sync_receiver, "sync")]
    assert asyncio.run(signal.asend_robust(None, x=1)) == [(sync_receiver, "sync")]


@pytest.mark.parametrize("method", ["send", "send_robust", "asend", "asend_robust"])
def test_an_async_receiver_of_a_sender_gets_that_sender(method: str) -> None:
    signal = Signal()
    seen: list[object] = []

    async def of_the_shop(sender: object, **kwargs: Any) -> str:
        seen.append(sender)
        return "shop"

    def send(sender: object) -> Any:
        sent = getattr(signal, method)(sender)
        return asyncio.run(sent) if method.startswith("a") else sent

    signal.connect(of_the_shop, sender="shop", weak=False)
    assert send(None) == []
    assert send("shop") == [(of_the_shop, "shop")]
    assert send("other") == []
    assert seen == ["shop"]


# -- concurrency -----------------------------------------------------------------


def waiting_pair() -> tuple[Signal, list[str]]:
    """Two receivers that can only finish if they run at the same time."""
    done: list[str] = []
    events: dict[str, asyncio.Event] = {}

    async def meet(name: str, other: str) -> str:
        events.setdefault(name, asyncio.Event()).set()
        event = events.setdefault(other, asyncio.Event())
        await asyncio.wait_for(event.wait(), timeout=5)
        done.append(name)
        return name

    async def left(**kwargs: Any) -> str:
        return await meet("left", "right")

    async def right(**kwargs: Any) -> str:
        return await meet("right", "left")

    signal = Signal()
    signal.connect(left, weak=False)
    signal.connect(right, weak=False)
    return signal, done


def test_asend_awaits_async_receivers_concurrently() -> None:
    signal, done = waiting_pair()

    responses = asyncio.run(signal.asend(None))

    assert sorted(done) == ["left", "right"]
    assert [response for _, response in responses] == ["left", "right"]


def test_send_from_sync_code_awaits_async_receivers_concurrently() -> None:
    signal, done = waiting_pair()

    responses = signal.send(None)

    assert sorted(done) == ["left", "right"]
    assert [response for _, response in responses] == ["left", "right"]


def test_send_on_a_thread_running_a_loop_refuses_to_block_it_and_says_to_use_asend() -> (
    None
):
    signal, done = waiting_pair()
    signal.connect(sync_receiver)
    ticks: list[int] = []

    async def heartbeat() -> None:
        while True:
            ticks.append(1)
            await asyncio.sleep(0)

    async def main() -> None:
        beating = asyncio.create_task(heartbeat())
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match=r"would block.*asend"):
            signal.send(None)  # a sync call from async code
        before = len(ticks)
        await asyncio.sleep(0.01)
        assert len(ticks) > before  # the loop was never held
        beating.cancel()

    asyncio.run(main())
    assert done == []  # nothing was started that could be lost half-way


@pytest.mark.parametrize("method", ["send", "send_robust"])
def test_a_blocking_send_from_async_code_names_the_method_called(method: str) -> None:
    signal = Signal()
    signal.connect(async_receiver)

    async def main() -> None:
        with pytest.raises(RuntimeError) as raised:
            getattr(signal, method)(None)
        assert str(raised.value).startswith(
            f"Signal.{method}() has async receivers to run, but it was called "
            "from a thread that is running an event loop"
        )

    asyncio.run(main())


def test_send_from_sync_code_leaves_no_event_loop_behind() -> None:
    signal = Signal()
    signal.connect(async_receiver)
    before = threading.active_count()

    signal.send(None)

    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    assert threading.active_count() == before


def test_a_background_task_left_by_a_receiver_is_cancelled_and_cleaned_up_by_send() -> (
    None
):
    # send() runs the async receivers on a loop of its own, which it closes
    # before it returns: a task a receiver started and left running is
    # cancelled, and its cleanup has run when send() returns.
    events: list[str] = []

    async def forever() -> None:
        try:
            events.append("started")
            await asyncio.sleep(3600)
        finally:
            events.append("cleaned up")

    async def starts_a_task(**kwargs: Any) -> str:
        kwargs["tasks"].append(asyncio.create_task(forever()))
        await asyncio.sleep(0)
        return "returned"

    signal = Signal()
    signal.connect(starts_a_task, weak=False)
    tasks: list[asyncio.Task[None]] = []

    [(_, response)] = signal.send(None, tasks=tasks)

    assert response == "returned"
    assert events == ["started", "cleaned up"]
    assert tasks[0].cancelled()


# -- contexts ------------------------------------------------------------------------


def test_receivers_see_the_senders_context_variables() -> None:
    seen: list[tuple[str, str]] = []

    def sync_seer(**kwargs: Any) -> None:
        seen.append(("sync", request_id.get()))

    async def async_seer(**kwargs: Any) -> None:
        seen.append(("async", request_id.get()))

    signal = Signal()
    signal.connect(sync_seer, weak=False)
    signal.connect(async_seer, weak=False)

    def in_context() -> None:
        request_id.set("from send")
        signal.send(None)

    contextvars.copy_context().run(in_context)

    async def main() -> None:
        request_id.set("from asend")
        await signal.asend(None)

    asyncio.run(main())

    assert seen == [
        ("sync", "from send"),
        ("async", "from send"),
        ("sync", "from asend"),
        ("async", "from asend"),
    ]


def set_request_id(sender: Any, **kwargs: Any) -> None:
    request_id.set(sender)


def test_context_changes_by_sync_receivers_reach_the_sender() -> None:
    signal = Signal()
    signal.connect(set_request_id)
    signal.connect(async_receiver)  # so that send() also runs an event loop

    def in_context() -> str:
        signal.send("changed by send")
        return request_id.get()

    assert contextvars.copy_context().run(in_context) == "changed by send"

    async def main() -> str:
        await signal.asend("changed by asend")
        return request_id.get()

    assert asyncio.run(main()) == "changed by asend"
    assert request_id.get() == "unset"


# -- errors --------------------------------------------------------------------------


def test_asend_propagates_an_async_receivers_exception() -> None:
    signal = Signal()
    signal.connect(failing_async_receiver)

    with pytest.raises(ValueError, match="async receiver failed"):
        asyncio.run(signal.asend(None))


def test_send_propagates_an_async_failure_and_cancels_the_receivers_still_waiting() -> (
    None
):
    outcome: list[str] = []

    async def slow(**kwargs: Any) -> None:
        try:
            await asyncio.sleep(5)
            outcome.append("finished")
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    signal = Signal()
    signal.connect(slow, weak=False)
    signal.connect(failing_async_receiver)

    started = time.perf_counter()
    with pytest.raises(ValueError, match="async receiver failed"):
        signal.send(None)
    assert outcome == ["cancelled"]
    assert time.perf_counter() - started < 4  # cancelled, not waited out


@pytest.mark.parametrize("mode", ["send_robust", "asend_robust"])
def test_robust_sends_return_and_log_async_and_sync_failures(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    signal = Signal()
    signal.connect(failing_async_receiver)
    signal.connect(async_receiver)
    signal.connect(failing_sync_receiver)
    signal.connect(sync_receiver)

    async def asend_robust() -> list[Any]:
        return await signal.asend_robust(None)

    with caplog.at_level(logging.ERROR, logger="tocsin"):
        if mode == "send_robust":
            responses = signal.send_robust(None)
        else:
            responses = asyncio.run(asend_robust())

    assert [receiver for receiver, _ in responses] == [
        failing_sync_receiver,
        sync_receiver,
        failing_async_receiver,
        async_receiver,
    ]
    sync_error, sync_ok, async_error, async_ok = (r for _, r in responses)
    assert (sync_ok, async_ok) == ("sync", "async")
    for error in (sync_error, async_error):
        assert isinstance(error, ValueError)
        assert error.__traceback__ is not None
    assert [record.getMessage() for record in caplog.records] == [
        "Error calling failing_sync_receiver in Signal.send_robust() "
        "(sync receiver failed)",
        "Error calling failing_async_receiver in Signal.send_robust() "
        "(async receiver failed)",
    ]
    assert all(record.exc_info for record in caplog.records)


# -- asyncio stays unimported ----------------------------------------------------


def test_sync_use_does_not_import_asyncio() -> None:
    code = (
        "import functools, sys\n"
        "import tocsin\n"
        "def f(**kwargs): return 1\n"
        "class C:\n"
        "    def __call__(self, **kwargs): return 2\n"
        "c, p = C(), functools.partial(f)\n"
        "s = tocsin.Signal()\n"
        "s.connect(f)\n"
        "s.connect(c)\n"  # objects and partials are inspected the long way
        "s.connect(p, weak=False)\n"
        "assert s.send(None) == [(f, 1), (c, 2), (p, 1)]\n"
        "assert s.send_robust(None, x=1) == [(f, 1), (c, 2), (p, 1)]\n"
        "s.receivers_info()\n"
        "s.disconnect(f)\n"
        "print('asyncio' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
