"""The ASGI middleware with bare ASGI callables: which sender receivers are
filtered on, and what reaches the app when the middleware steps aside."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

import pytest

from tocsin.integrations.asgi import RequestSignalsMiddleware
from tocsin.signals import got_request_exception, request_finished, request_started
from tocsin.testing import capture, connected_to


class Recording:
    """An ASGI app that keeps what it was called with."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[Any, Any, Any]] = []
        self.error = error

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls.append((scope, receive, send))
        if self.error is not None:
            raise self.error


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: Any) -> None:
    pass


class Quart:
    """Stands for the framework class that receivers filter on."""


@pytest.mark.parametrize("error", [None, RuntimeError("view failed")])
def test_receivers_filtered_on_the_given_sender_hear_the_whole_request(
    error: Exception | None,
) -> None:
    heard: list[tuple[str, Any, Any]] = []

    def started(sender: Any, scope: Any, **kwargs: Any) -> None:
        heard.append(("started", sender, scope))

    async def finished(sender: Any, scope: Any, **kwargs: Any) -> None:
        heard.append(("finished", sender, scope))

    app = Recording(error)
    scope = {"type": "http", "path": "/"}
    with (
        connected_to(started, request_started, sender=Quart),
        connected_to(finished, request_finished, sender=Quart),
        capture(got_request_exception) as reported,
        pytest.raises(RuntimeError) if error else contextlib.nullcontext(),
    ):
        asyncio.run(RequestSignalsMiddleware(app, sender=Quart)(scope, receive, send))
    assert heard == [("started", Quart, scope), ("finished", Quart, scope)]
    assert app.calls == [(scope, receive, send)]
    expected = [] if error is None else [{"request": scope, "exception": error}]
    assert [s.kwargs for s in reported] == expected


@pytest.mark.parametrize("listening", ["only finished", "only started"])
def test_a_receiver_of_either_request_signal_is_enough_to_hear_it(
    listening: str,
) -> None:
    signal = request_finished if listening == "only finished" else request_started
    heard: list[tuple[Any, Any]] = []

    def on_request(sender: Any, scope: Any, **kwargs: Any) -> None:
        heard.append((sender, scope))

    scope = {"type": "http", "path": "/"}
    with connected_to(on_request, signal, sender=Quart):
        asyncio.run(
            RequestSignalsMiddleware(Recording(), sender=Quart)(scope, receive, send)
        )
    assert heard == [(Quart, scope)]


def test_a_cancelled_requests_finished_delivery_ends_without_loop_errors() -> None:
    delivered: list[str] = []
    loop_errors: list[dict[str, Any]] = []

    async def hangs(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(60)

    async def slow_cleanup(sender: Any, scope: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0.05)
        delivered.append(scope["path"])

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(
            lambda loop, context: loop_errors.append(context)
        )
        scope = {"type": "http", "path": "/hang"}
        task = asyncio.ensure_future(
            RequestSignalsMiddleware(hangs)(scope, receive, send)
        )
        await asyncio.sleep(0.01)
        task.cancel()  # the app is cancelled: request_finished starts...
        await asyncio.sleep(0.01)
        task.cancel()  # ... and the request is cancelled again while it waits
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.2)

    with connected_to(slow_cleanup, request_finished):
        asyncio.run(main())
    assert delivered == ["/hang"]
    assert loop_errors == []


def test_receivers_filtered_on_another_sender_hear_nothing() -> None:
    scope = {"type": "http", "path": "/"}
    with capture(request_started, request_finished, sender=Recording) as sent:
        asyncio.run(
            RequestSignalsMiddleware(Recording(), sender=Quart)(scope, receive, send)
        )
    assert sent == []


@pytest.mark.parametrize("scope_type", ["http", "websocket", "lifespan"])
def test_with_nobody_listening_the_app_gets_the_servers_scope_receive_and_send(
    scope_type: str,
) -> None:
    app = Recording()
    scope = {"type": scope_type, "path": "/"}
    asyncio.run(RequestSignalsMiddleware(app)(scope, receive, send))
    assert app.calls == [(scope, receive, send)]


def test_a_websocket_scope_sends_nothing_even_with_receivers() -> None:
    app = Recording()
    scope = {"type": "websocket", "path": "/ws"}
    with capture(request_started, request_finished) as sent:
        asyncio.run(RequestSignalsMiddleware(app)(scope, receive, send))
    assert sent == []
    assert app.calls == [(scope, receive, send)]


def test_with_nobody_listening_an_error_is_still_reported_with_its_scope() -> None:
    error = LookupError("no route")
    scope = {"type": "http", "path": "/missing"}
    with (
        capture(got_request_exception) as sent,
        pytest.raises(LookupError),
    ):
        asyncio.run(RequestSignalsMiddleware(Recording(error))(scope, receive, send))
    assert [(s.sender, s.kwargs) for s in sent] == [
        (None, {"request": scope, "exception": error})
    ]


def test_the_middleware_repr_shows_the_wrapped_app() -> None:
    app = Recording()
    assert repr(RequestSignalsMiddleware(app)) == f"RequestSignalsMiddleware({app!r})"


def test_wrapping_something_that_is_not_callable_says_what_an_asgi_app_is() -> None:
    expected = (
        "RequestSignalsMiddleware wraps an ASGI application (an async callable "
        "taking scope, receive and send), got 'app'."
    )
    with pytest.raises(TypeError, match=f"^{re.escape(expected)}$"):
        RequestSignalsMiddleware("app")  # type: ignore[arg-type]
