"""What a got_request_exception receiver sees, from either middleware, with bare
WSGI and ASGI callables: no extra is needed, so these run on every install.

docs/web.md promises that synchronous receivers can still read the error with
``sys.exc_info()``, as in Django, and that the exception sent is the app's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from tocsin.integrations import asgi, wsgi
from tocsin.signals import got_request_exception, request_finished, request_started
from tocsin.testing import capture, connected_to


def start_response(status: str, headers: list[Any], exc_info: Any = None) -> Any:
    return lambda data: None


def exc_info_reader(seen: list[tuple[object, object]]) -> Any:
    def report(sender: Any, request: Any, exception: Exception, **kwargs: Any) -> None:
        seen.append((exception, sys.exc_info()[1]))

    return report


def test_wsgi_exception_receivers_can_read_the_error_from_sys_exc_info() -> None:
    error = KeyError("no such page")

    def broken(environ: Any, start_response: Any) -> Iterable[bytes]:
        raise error

    seen: list[tuple[object, object]] = []
    with (
        connected_to(exc_info_reader(seen), got_request_exception),
        pytest.raises(KeyError),
    ):
        wsgi.RequestSignalsMiddleware(broken)({"PATH_INFO": "/"}, start_response)
    assert seen == [(error, error)]


def test_wsgi_exception_while_streaming_is_in_sys_exc_info_too() -> None:
    error = LookupError("failed mid-stream")

    def streaming(environ: Any, start_response: Any) -> Iterator[bytes]:
        yield b"first"
        raise error

    seen: list[tuple[object, object]] = []
    with connected_to(exc_info_reader(seen), got_request_exception):
        body = wsgi.RequestSignalsMiddleware(streaming)({}, start_response)
        with pytest.raises(LookupError):
            list(body)
        body.close()  # type: ignore[attr-defined]
    assert seen == [(error, error)]


def test_wsgi_with_only_an_exception_receiver_the_error_is_still_reported() -> None:
    error = ValueError("bad form")

    def broken(environ: Any, start_response: Any) -> Iterable[bytes]:
        raise error

    environ = {"PATH_INFO": "/form"}
    with (
        capture(got_request_exception) as sent,
        pytest.raises(ValueError, match="bad form"),
    ):
        wsgi.RequestSignalsMiddleware(broken)(environ, start_response)
    assert [(s.sender, s.kwargs) for s in sent] == [
        (None, {"request": environ, "exception": error})
    ]


class Broken:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        raise self.error


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: Any) -> None:
    pass


@pytest.mark.parametrize("listening", [True, False])
def test_asgi_exception_receivers_can_read_the_error_from_sys_exc_info(
    listening: bool,
) -> None:
    # With and without request_started/request_finished receivers: the
    # middleware takes a shorter path when nobody listens to those.
    error = KeyError("no such page")
    seen: list[tuple[object, object]] = []
    app = asgi.RequestSignalsMiddleware(Broken(error))
    with (
        connected_to(exc_info_reader(seen), got_request_exception),
        capture(request_started) if listening else contextlib.nullcontext(),
        pytest.raises(KeyError),
    ):
        asyncio.run(app({"type": "http", "path": "/"}, receive, send))
    assert seen == [(error, error)]


def test_asgi_the_app_exception_and_its_scope_are_what_receivers_get() -> None:
    error = ValueError("bad form")
    scope = {"type": "http", "path": "/form"}
    app = asgi.RequestSignalsMiddleware(Broken(error))
    with (
        capture(got_request_exception, request_finished) as sent,
        pytest.raises(ValueError, match="bad form"),
    ):
        asyncio.run(app(scope, receive, send))
    assert [(s.signal, s.sender, s.kwargs) for s in sent] == [
        (got_request_exception, None, {"request": scope, "exception": error}),
        (request_finished, Broken, {"scope": scope}),
    ]
