"""Request-signal receivers under RequestSignalsMiddleware and a real uvicorn.

Each async receiver of ``request_started`` and ``request_finished`` runs in a
task of its own: ``timeout()``, ``wait_for``, ``TaskGroup`` and cancellation
inside it act on the receiver, never on the request, which still answers 200.
A slow ``request_finished`` receiver does not stall the server's loop: another
request is served meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from _servers import uvicorn_server, wait_for

from tocsin.integrations.asgi import RequestSignalsMiddleware
from tocsin.signals import request_finished, request_started
from tocsin.testing import connected_to

app_tasks: dict[str, asyncio.Task[Any] | None] = {}


async def app(scope: Any, receive: Any, send: Any) -> None:
    """A plain ASGI app that records the task that serves each request."""
    app_tasks[scope["path"]] = asyncio.current_task()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with uvicorn_server(RequestSignalsMiddleware(app)) as base:
        yield base


# -- primitives inside request-signal receivers ------------------------------------------


async def in_a_timeout(outcome: list[Any]) -> None:
    try:
        async with asyncio.timeout(0.01):
            await asyncio.sleep(10)
    except TimeoutError:
        outcome.append("timed out")


async def in_wait_for(outcome: list[Any]) -> None:
    try:
        await asyncio.wait_for(asyncio.sleep(10), timeout=0.01)
    except TimeoutError:
        outcome.append("timed out")


async def in_a_task_group(outcome: list[Any]) -> None:
    async def fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("child failed")

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(fails())
            group.create_task(asyncio.sleep(10))
    except ExceptionGroup as caught:
        outcome.append([str(error) for error in caught.exceptions])


async def cancelling_itself(outcome: list[Any]) -> None:
    task = asyncio.current_task()
    assert task is not None
    task.cancel()
    try:
        await asyncio.sleep(0)
    finally:
        outcome.append("cancelled itself")


async def in_its_own_task(outcome: list[Any]) -> None:
    task = asyncio.current_task()
    assert task is not None
    # Read while it runs: a task that finished eagerly drops its coroutine
    # (get_coro() is None on 3.13, and crashes CPython 3.12.1).
    outcome.append((task, task.get_coro().cr_code))  # type: ignore[union-attr]


PRIMITIVES: dict[str, tuple[Callable[[list[Any]], Any], Any]] = {
    "timeout": (in_a_timeout, "timed out"),
    "wait_for": (in_wait_for, "timed out"),
    "TaskGroup": (in_a_task_group, ["child failed"]),
    "cancel": (cancelling_itself, "cancelled itself"),
    "current_task": (in_its_own_task, None),
}
SIGNALS = {"request_started": request_started, "request_finished": request_finished}


@pytest.mark.parametrize("primitive", PRIMITIVES)
@pytest.mark.parametrize("signal_name", SIGNALS)
def test_a_primitive_inside_a_request_signal_receiver_acts_on_the_receiver_only(
    url: str, client: httpx.Client, signal_name: str, primitive: str
) -> None:
    body, expected = PRIMITIVES[primitive]
    outcome: list[Any] = []
    path = f"/{signal_name}/{primitive}"

    async def receiver(sender: Any, scope: Any, **kwargs: Any) -> None:
        if scope["path"] == path:
            await body(outcome)

    with connected_to(receiver, SIGNALS[signal_name]):
        response = client.get(f"{url}{path}")
        assert response.status_code == 200
        assert response.text == "hello"
        wait_for(lambda: outcome)

    if primitive == "current_task":
        [(task, code)] = outcome
        assert task is not app_tasks[path]  # not the request's task
        assert code is receiver.__code__  # the receiver's coroutine, unwrapped
    else:
        assert outcome == [expected]


# -- a slow request_finished receiver --------------------------------------------------


def test_a_slow_request_finished_receiver_does_not_stall_a_concurrent_request(
    url: str, client: httpx.Client
) -> None:
    release = threading.Event()  # set by the test once the other request is served
    events: list[str] = []

    async def slow_cleanup(sender: Any, scope: Any, **kwargs: Any) -> None:
        if scope["path"] != "/first":
            return
        events.append("slow receiver started")
        for _ in range(1000):  # 5 s at most
            if release.is_set():
                break
            await asyncio.sleep(0.005)
        events.append("slow receiver finished")

    with connected_to(slow_cleanup, request_finished):
        assert client.get(f"{url}/first").status_code == 200
        wait_for(lambda: events)

        # Served by the same loop, while the slow receiver still runs there.
        second = client.get(f"{url}/second")
        assert second.status_code == 200
        assert events == ["slow receiver started"]

        release.set()
        wait_for(lambda: len(events) == 2)
    assert events == ["slow receiver started", "slow receiver finished"]


def test_a_slow_request_started_receiver_delays_only_its_own_request(
    url: str,
) -> None:
    release = threading.Event()
    started = threading.Event()

    async def slow_start(sender: Any, scope: Any, **kwargs: Any) -> None:
        if scope["path"] != "/held":
            return
        started.set()
        for _ in range(1000):  # 5 s at most
            if release.is_set():
                break
            await asyncio.sleep(0.005)

    results: dict[str, int] = {}

    def get(path: str) -> None:
        with httpx.Client(timeout=10) as client:
            results[path] = client.get(f"{url}{path}").status_code

    with connected_to(slow_start, request_started):
        held = threading.Thread(target=get, args=("/held",))
        held.start()
        assert started.wait(5)
        get("/free")  # answered while /held waits in its receiver
        assert results == {"/free": 200}
        release.set()
        held.join(10)
    assert results == {"/free": 200, "/held": 200}
