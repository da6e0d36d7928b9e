"""Request signals from RequestSignalsMiddleware, under a real uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from _recording import Gates, Recorder, recording
from _servers import uvicorn_server, wait_for
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from tocsin.integrations.asgi import RequestSignalsMiddleware
from tocsin.signals import got_request_exception, request_finished, request_started
from tocsin.testing import capture, connected_to

# -- the applications under test ---------------------------------------------


gates = Gates()


async def hello(request: Request) -> Response:
    gates.timeline.append("app ran")
    return PlainTextResponse("hello")


async def boom(request: Request) -> Response:
    raise RuntimeError("boom from a route")


async def slow(request: Request) -> Response:
    await asyncio.sleep(0.05)
    return PlainTextResponse(request.query_params.get("n", ""))


async def gated_chunks() -> AsyncIterator[bytes]:
    yield b"first\n"
    deadline = time.monotonic() + 5
    while not gates.release_last_chunk.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    yield b"last\n"
    # Runs only when the response asks for the next chunk, that is after the
    # server's send() for the last one returned.
    gates.timeline.append("last chunk sent")


async def gated_stream(request: Request) -> Response:
    return StreamingResponse(gated_chunks())


async def endless_chunks() -> AsyncIterator[bytes]:
    for _ in range(500):  # bounded: 5 s at most
        yield b"x" * 1024
        await asyncio.sleep(0.01)


async def endless_stream(request: Request) -> Response:
    return StreamingResponse(endless_chunks())


starlette_app = Starlette(
    routes=[
        Route("/hello", hello),
        Route("/boom", boom),
        Route("/slow", slow),
        Route("/stream", gated_stream),
        Route("/endless", endless_stream),
    ]
)


class RawApp:
    """A framework-free ASGI application."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope["path"]
        if path == "/boom":
            raise ValueError("boom before the response started")
        if path == "/hello":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"hello"})
            return
        if path == "/chunks":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for n in range(3):
                await send(
                    {"type": "http.response.body", "body": b"%d" % n, "more_body": True}
                )
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})


raw_app = RawApp()


@pytest.fixture(scope="module")
def starlette_url() -> Iterator[str]:
    with uvicorn_server(RequestSignalsMiddleware(starlette_app)) as url:
        yield url


@pytest.fixture(scope="module")
def raw_url() -> Iterator[str]:
    with uvicorn_server(RequestSignalsMiddleware(raw_app)) as url:
        yield url


# -- recording what receivers get ----------------------------------------------


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    def path_of(kwargs: dict[str, Any]) -> str:
        path: str = kwargs.get("scope", kwargs.get("request"))["path"]
        return path

    with recording(gates, path_of) as recorder:
        yield recorder


# -- end to end, uvicorn + Starlette -------------------------------------------


def test_a_request_sends_started_then_finished_with_its_scope(
    starlette_url: str, client: httpx.Client, recorder: Recorder
) -> None:
    response = client.get(f"{starlette_url}/hello")

    assert response.text == "hello"
    wait_for(lambda: recorder.named("finished"))
    (started, finished) = recorder.events
    assert started[0] == "started"
    assert started[1] is Starlette
    assert finished[1] is Starlette
    assert started[2]["scope"] is finished[2]["scope"]
    assert started[2]["scope"]["path"] == "/hello"
    assert gates.timeline == ["started", "app ran", "finished"]


def test_request_finished_waits_for_the_last_streamed_chunk(
    starlette_url: str, client: httpx.Client, recorder: Recorder
) -> None:
    with client.stream("GET", f"{starlette_url}/stream") as response:
        chunks = response.iter_bytes()
        assert next(chunks) == b"first\n"
        time.sleep(0.1)
        assert recorder.named("finished") == []

        gates.release_last_chunk.set()
        assert b"".join(chunks) == b"last\n"

    wait_for(lambda: recorder.named("finished"))
    assert gates.timeline == ["started", "last chunk sent", "finished"]


def test_an_exception_is_delivered_propagates_and_still_gives_a_500(
    starlette_url: str, client: httpx.Client, recorder: Recorder
) -> None:
    response = client.get(f"{starlette_url}/boom")

    assert response.status_code == 500
    wait_for(lambda: recorder.named("finished"))
    assert recorder.for_path("/boom") == ["started", "exception", "finished"]
    (_, sender, kwargs) = recorder.named("exception")[0]
    assert sender is None
    assert kwargs["request"] is recorder.events[0][2]["scope"]
    assert isinstance(kwargs["exception"], RuntimeError)
    assert str(kwargs["exception"]) == "boom from a route"


def test_a_client_that_leaves_mid_stream_still_finishes_the_request_once(
    starlette_url: str, recorder: Recorder
) -> None:
    with (
        httpx.Client(timeout=10) as client,
        client.stream("GET", f"{starlette_url}/endless") as response,
    ):
        assert len(next(response.iter_raw())) > 0
    # Leaving the block closed the half-read response, hence the connection.

    wait_for(lambda: recorder.named("finished"))
    time.sleep(0.1)  # a second request_finished would arrive by now
    assert recorder.for_path("/endless") == ["started", "finished"]


def test_concurrent_requests_each_finish_exactly_once(
    starlette_url: str, recorder: Recorder
) -> None:
    count = 24

    async def fire() -> list[str]:
        async with httpx.AsyncClient(timeout=10) as client:
            responses = await asyncio.gather(
                *(client.get(f"{starlette_url}/slow?n={n}") for n in range(count))
            )
        return [response.text for response in responses]

    assert sorted(asyncio.run(fire()), key=int) == [str(n) for n in range(count)]

    wait_for(lambda: len(recorder.named("finished")) == count)
    started = [kwargs["scope"] for _, _, kwargs in recorder.named("started")]
    finished = [kwargs["scope"] for _, _, kwargs in recorder.named("finished")]
    assert len(started) == count
    assert len({id(scope) for scope in started}) == count
    assert sorted(map(id, finished)) == sorted(map(id, started))
    assert {scope["query_string"] for scope in finished} == {
        b"n=%d" % n for n in range(count)
    }


def test_async_receivers_are_awaited_before_the_app_runs(
    starlette_url: str, client: httpx.Client
) -> None:
    gates.timeline.clear()

    async def slow_receiver(sender: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0.05)
        gates.timeline.append("async receiver done")

    with connected_to(slow_receiver, request_started):
        assert client.get(f"{starlette_url}/hello").text == "hello"

    assert gates.timeline == ["async receiver done", "app ran"]


def test_sync_receivers_run_inline_on_the_servers_event_loop(
    starlette_url: str, client: httpx.Client
) -> None:
    seen: list[tuple[str, int]] = []

    def where(sender: Any, **kwargs: Any) -> None:
        asyncio.get_running_loop()  # raises outside an event loop
        seen.append((threading.current_thread().name, threading.get_ident()))

    with connected_to(where, request_started), connected_to(where, request_finished):
        client.get(f"{starlette_url}/hello")
        wait_for(lambda: len(seen) == 2)

    # Both on uvicorn's own thread: no worker thread was involved.
    assert {name for name, _ in seen} == {"uvicorn"}
    assert len({ident for _, ident in seen}) == 1


def test_capture_records_request_signals_without_any_receiver(
    starlette_url: str, client: httpx.Client
) -> None:
    with capture(request_started, request_finished) as sent:
        client.get(f"{starlette_url}/hello")
        wait_for(lambda: len(sent) == 2)

    assert [s.signal for s in sent] == [request_started, request_finished]
    assert [s.mode for s in sent] == ["asend", "asend_robust"]
    assert sent[0].kwargs["scope"] is sent[1].kwargs["scope"]


# -- end to end, uvicorn + a raw ASGI app ----------------------------------------


def test_a_raw_asgi_app_gets_the_same_signals_with_its_class_as_sender(
    raw_url: str, client: httpx.Client, recorder: Recorder
) -> None:
    assert client.get(f"{raw_url}/chunks").text == "012"

    wait_for(lambda: recorder.named("finished"))
    assert [(name, sender) for name, sender, _ in recorder.events] == [
        ("started", RawApp),
        ("finished", RawApp),
    ]


def test_an_error_before_the_response_started_gets_uvicorns_500(
    raw_url: str, client: httpx.Client, recorder: Recorder
) -> None:
    response = client.get(f"{raw_url}/boom")

    assert response.status_code == 500
    wait_for(lambda: recorder.named("finished"))
    assert recorder.for_path("/boom") == ["started", "exception", "finished"]
    assert isinstance(recorder.named("exception")[0][2]["exception"], ValueError)


def test_lifespan_passes_through_and_sends_no_request_signal() -> None:
    phases: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        phases.append("startup")
        yield
        phases.append("shutdown")

    app = Starlette(routes=[Route("/hello", hello)], lifespan=lifespan)
    with capture(request_started, request_finished, got_request_exception) as sent:
        with uvicorn_server(RequestSignalsMiddleware(app), lifespan="on") as url:
            assert phases == ["startup"]
            httpx.get(f"{url}/hello", timeout=10)
        assert phases == ["startup", "shutdown"]

    assert [s.kwargs["scope"]["type"] for s in sent] == ["http", "http"]


# -- in process: what a server cannot easily provoke -----------------------------


def test_a_websocket_scope_passes_through_untouched() -> None:
    calls: list[tuple[Any, Any, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append((scope, receive, send))

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        pass

    scope = {"type": "websocket", "path": "/ws"}
    with capture(request_started, request_finished, got_request_exception) as sent:
        asyncio.run(RequestSignalsMiddleware(app)(scope, receive, send))

    assert calls == [(scope, receive, send)]
    assert sent == []


async def _no_message() -> dict[str, Any]:
    return {"type": "http.disconnect"}


async def _discard(message: Any) -> None:
    pass


def test_request_finished_survives_cancellation_and_is_sent_once() -> None:
    delivered: list[str] = []

    async def hangs(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(60)

    async def slow_cleanup(sender: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0.05)
        delivered.append(kwargs["scope"]["path"])

    async def main() -> None:
        middleware = RequestSignalsMiddleware(hangs)
        scope = {"type": "http", "path": "/hang"}
        task = asyncio.ensure_future(middleware(scope, _no_message, _discard))
        await asyncio.sleep(0.01)
        task.cancel()  # the request's task is cancelled while the app runs...
        await asyncio.sleep(0.01)
        task.cancel()  # ... and again while request_finished is being sent
        with pytest.raises(asyncio.CancelledError):
            await task
        assert delivered == []
        await asyncio.sleep(0.1)

    with connected_to(slow_cleanup, request_finished):
        asyncio.run(main())

    assert delivered == ["/hang"]


def test_a_failing_started_receiver_fails_the_request_and_still_finishes_it() -> None:
    ran: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        ran.append("app")

    def refuse(sender: Any, **kwargs: Any) -> None:
        raise PermissionError("not today")

    scope = {"type": "http", "path": "/"}
    with (
        connected_to(refuse, request_started),
        capture(request_finished, got_request_exception) as sent,
        pytest.raises(PermissionError, match="not today"),
    ):
        asyncio.run(RequestSignalsMiddleware(app)(scope, _no_message, _discard))

    assert ran == []
    assert [s.signal for s in sent] == [request_finished]


def test_a_failing_exception_receiver_does_not_mask_the_apps_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = KeyError("the app's own")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise error

    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("broken receiver")

    scope = {"type": "http", "path": "/"}
    with (
        connected_to(broken, got_request_exception),
        connected_to(broken, request_finished),
        pytest.raises(KeyError) as raised,
    ):
        asyncio.run(RequestSignalsMiddleware(app)(scope, _no_message, _discard))

    assert raised.value is error
    failures = [r for r in caplog.records if r.name == "tocsin"]
    assert len(failures) == 2
    assert all("broken receiver" in r.getMessage() for r in failures)


def test_the_sender_defaults_to_the_apps_class_and_can_be_given() -> None:
    assert RequestSignalsMiddleware(raw_app).sender is RawApp
    assert RequestSignalsMiddleware(raw_app, sender="shop").sender == "shop"

    with capture(request_started, sender="shop") as sent:
        middleware = RequestSignalsMiddleware(raw_app, sender="shop")
        scope = {"type": "http", "path": "/hello"}
        asyncio.run(middleware(scope, _no_message, _discard))
    assert len(sent) == 1


def test_wrapping_something_that_is_not_an_app_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="wraps an ASGI application"):
        RequestSignalsMiddleware("app:main")  # type: ignore[arg-type]


def test_async_request_receivers_run_in_tasks_of_their_own_not_the_requests() -> None:
    tasks: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        tasks["app"] = asyncio.current_task()

    async def on_started(sender: Any, **kwargs: Any) -> None:
        tasks["started"] = asyncio.current_task()

    async def on_finished(sender: Any, **kwargs: Any) -> None:
        tasks["finished"] = asyncio.current_task()

    scope = {"type": "http", "path": "/"}
    with (
        connected_to(on_started, request_started),
        connected_to(on_finished, request_finished),
    ):
        asyncio.run(RequestSignalsMiddleware(app)(scope, _no_message, _discard))

    assert len({id(tasks[name]) for name in ("app", "started", "finished")}) == 3


def test_async_finished_receivers_that_wait_all_complete_before_the_request_ends() -> (
    None
):
    done: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    async def yields_once(sender: Any, **kwargs: Any) -> str:
        await asyncio.sleep(0)
        done.append("yields once")
        return "a"

    async def sleeps(sender: Any, **kwargs: Any) -> str:
        await asyncio.sleep(0.01)
        await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        done.append("sleeps")
        return "b"

    async def fails(sender: Any, **kwargs: Any) -> str:
        await asyncio.sleep(0.005)
        raise RuntimeError("failing clean-up")

    async def main() -> None:
        scope = {"type": "http", "path": "/"}
        await RequestSignalsMiddleware(app)(scope, _no_message, _discard)
        done.append("request over")

    with (
        connected_to(yields_once, request_finished),
        connected_to(sleeps, request_finished),
        connected_to(fails, request_finished),
    ):
        asyncio.run(main())

    assert sorted(done[:2]) == ["sleeps", "yields once"]
    assert done[2:] == ["request over"]


def test_with_nobody_listening_the_request_passes_through_and_errors_are_reported() -> (
    None
):
    reported: list[tuple[Any, Any]] = []

    async def ok_app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})

    async def failing_app(scope: Any, receive: Any, send: Any) -> None:
        raise KeyError("missing")

    def on_exception(sender: Any, request: Any, exception: Any, **kwargs: Any) -> None:
        reported.append((request["path"], exception))

    sent_messages: list[Any] = []

    async def remember(message: Any) -> None:
        sent_messages.append(message)

    async def main() -> None:
        assert not request_started.has_listeners(type(ok_app))
        assert not request_finished.has_listeners(type(ok_app))
        await RequestSignalsMiddleware(ok_app)(
            {"type": "http", "path": "/ok"}, _no_message, remember
        )
        with pytest.raises(KeyError, match="missing"):
            await RequestSignalsMiddleware(failing_app)(
                {"type": "http", "path": "/fails"}, _no_message, remember
            )

    with connected_to(on_exception, got_request_exception):
        asyncio.run(main())

    assert [message["status"] for message in sent_messages] == [204]
    assert [(path, type(error)) for path, error in reported] == [("/fails", KeyError)]
