"""Helpers shared by the tests (``tests/`` is on ``sys.path``: ``from support import ...``)."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest
from benchmarks._net import free_port

__all__ = ["IN_CI", "collect_garbage", "free_port", "server_unavailable"]

from tocsin import Dispatch, Observer, ReceiverCall

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def server_unavailable(reason: str) -> None:
    """Fail under CI, skip elsewhere: a missing server is never a silent pass.

    Meant for what the machine lacks (a PostgreSQL server, another Python): the
    skip reason says so, and ``pytest -ra`` lists it in the test summary.
    """
    if IN_CI:
        pytest.fail(
            f"{reason} (CI=true: the servers and Pythons the tests need must be "
            "present)",
            pytrace=False,
        )
    pytest.skip(f"{reason}: skipped outside CI, fails under CI=true")


def collect_garbage() -> None:
    """Collect until nothing is left, so that weak references have fired."""
    for _ in range(3):
        gc.collect()


class Heartbeat:
    """Counts the turns of the event loop it runs on (one a millisecond)."""

    def __init__(self) -> None:
        self.ticks = 0

    async def beat(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0.001)


@asynccontextmanager
async def heartbeat() -> AsyncIterator[Heartbeat]:
    """A :class:`Heartbeat` ticking on the running loop for the block."""
    beating = Heartbeat()
    task = asyncio.create_task(beating.beat())
    await asyncio.sleep(0)
    try:
        yield beating
    finally:
        task.cancel()


class SlowReceiver:
    """An async receiver that sleeps, recording its loop and the heartbeat's
    ticks meanwhile: had anything blocked the heartbeat's loop for the
    receiver's run (a helper thread, a fresh loop), they would be 0."""

    SLOW = 0.05

    def __init__(self, beating: Heartbeat) -> None:
        self.beating = beating
        self.runs: list[dict[str, Any]] = []

    async def __call__(self, **kwargs: Any) -> str:
        run: dict[str, Any] = {"loop": asyncio.get_running_loop(), "kwargs": kwargs}
        self.runs.append(run)
        before = self.beating.ticks
        await asyncio.sleep(self.SLOW)
        run["ticks during"] = self.beating.ticks - before
        return "slow done"

    def check_ran_on(self, loop: asyncio.AbstractEventLoop, times: int = 1) -> None:
        assert len(self.runs) == times
        for run in self.runs:
            assert run["loop"] is loop
            # Far fewer than the ~50 expected, but a blocked loop gives 0.
            assert run["ticks during"] >= 3


def deliver(mode: str, signal: Any, **named: Any) -> list[tuple[Any, Any]]:
    """Send from ``None`` with ``mode`` (``send``, ``send_robust``, ``asend`` or
    ``asend_robust``): the sync sends from sync code, the async ones from the
    main task of ``asyncio.run``.

    After an async send the caller checks that nothing asked to cancel it: a
    receiver's ``timeout()`` or cancellation that acted on the sender's task
    would leave a cancellation pending there.
    """
    if not mode.startswith("a"):
        responses: list[tuple[Any, Any]] = getattr(signal, mode)(None, **named)
        return responses

    async def caller() -> list[tuple[Any, Any]]:
        responses: list[tuple[Any, Any]] = await getattr(signal, mode)(None, **named)
        task = asyncio.current_task()
        assert task is not None
        assert task.cancelling() == 0
        await asyncio.sleep(0)  # a pending cancellation would be raised here
        return responses

    return asyncio.run(caller())


def run_then_cancel(coroutine: Coroutine[Any, Any, Any], after: float = 0.01) -> None:
    """Run ``coroutine`` as a task, cancel it ``after`` seconds, and check that
    the cancellation propagated out of it."""

    async def main() -> None:
        task = asyncio.create_task(coroutine)
        await asyncio.sleep(after)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


class Recorder(Observer):
    """Keeps every callback, in order, as (callback, record)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

    def _add(self, name: str, record: Any) -> None:
        with self.lock:
            self.events.append((name, record))

    def send_started(self, dispatch: Dispatch) -> None:
        self._add("send_started", dispatch)

    def receiver_started(self, call: ReceiverCall) -> None:
        self._add("receiver_started", call)

    def receiver_finished(self, call: ReceiverCall) -> None:
        self._add("receiver_finished", call)

    def send_finished(self, dispatch: Dispatch) -> None:
        self._add("send_finished", dispatch)

    def trail(self) -> list[str]:
        """Events as strings: ``send_started <signal>``, ``receiver_started <name>``."""
        out = []
        for name, record in self.events:
            if isinstance(record, Dispatch):
                out.append(f"{name} {record.signal.name}")
            else:
                out.append(f"{name} {record.qualname.rsplit('.', 1)[-1]}")
        return out

    def dispatches(self) -> list[Dispatch]:
        return [r for n, r in self.events if n == "send_started"]
