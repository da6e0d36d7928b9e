"""The WSGI middleware with bare callables: which sender receivers are filtered
on, what reaches the app when nobody listens, and what close() reports."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from tocsin.integrations.wsgi import RequestSignalsMiddleware
from tocsin.signals import got_request_exception, request_finished, request_started
from tocsin.testing import capture, connected_to


def start_response(status: str, headers: list[Any], exc_info: Any = None) -> Any:
    return lambda data: None


def listed(environ: Any, start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [])
    return [b"listed"]


def generated(environ: Any, start_response: Any) -> Iterator[bytes]:
    start_response("200 OK", [])
    yield b"generated"


def failing(environ: Any, start_response: Any) -> Iterable[bytes]:
    raise RuntimeError("view failed")


class Flask:
    """Stands for the framework class that receivers filter on."""


@pytest.mark.parametrize("app", [listed, generated, failing])
def test_receivers_filtered_on_the_given_sender_hear_the_whole_request(
    app: Any,
) -> None:
    heard: list[tuple[str, Any]] = []

    def started(sender: Any, environ: Any, **kwargs: Any) -> None:
        heard.append(("started", environ))

    def finished(sender: Any, environ: Any, **kwargs: Any) -> None:
        heard.append(("finished", environ))

    environ = {"PATH_INFO": "/"}
    with (
        connected_to(started, request_started, sender=Flask),
        connected_to(finished, request_finished, sender=Flask),
    ):
        middleware = RequestSignalsMiddleware(app, sender=Flask)
        try:
            body = middleware(environ, start_response)
        except RuntimeError:
            pass
        else:
            list(body)
            body.close()  # type: ignore[attr-defined]
    assert heard == [("started", environ), ("finished", environ)]


def test_receivers_filtered_on_another_sender_hear_nothing() -> None:
    with capture(request_started, request_finished, sender=type(listed)) as sent:
        body = RequestSignalsMiddleware(listed, sender=Flask)({}, start_response)
        body.close()  # type: ignore[attr-defined]
    assert sent == []


def test_with_nobody_listening_the_app_gets_the_servers_environ_and_start_response() -> (
    None
):
    got: list[tuple[Any, Any]] = []

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        got.append((environ, start_response))
        return []

    environ = {"PATH_INFO": "/"}
    RequestSignalsMiddleware(app)(environ, start_response)
    assert got == [(environ, start_response)]


def test_closing_a_response_without_close_of_its_own_finishes_the_request() -> None:
    environ = {"PATH_INFO": "/listed"}
    with capture(request_finished) as sent:
        body = RequestSignalsMiddleware(listed)(environ, start_response)
        assert list(body) == [b"listed"]
        body.close()  # type: ignore[attr-defined]
    assert [(s.sender, s.kwargs) for s in sent] == [
        (type(listed), {"environ": environ})
    ]


def test_a_failing_close_is_reported_with_the_request_and_the_error() -> None:
    error = OSError("close failed")

    class FailingClose:
        def __iter__(self) -> Iterator[bytes]:
            return iter([b"a"])

        def close(self) -> None:
            raise error

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        return FailingClose()

    environ = {"PATH_INFO": "/"}
    with capture(got_request_exception) as sent:
        body = RequestSignalsMiddleware(app)(environ, start_response)
        with pytest.raises(OSError, match="close failed"):
            body.close()  # type: ignore[attr-defined]
    assert [s.kwargs for s in sent] == [{"request": environ, "exception": error}]


def test_the_middleware_repr_shows_the_wrapped_app() -> None:
    assert repr(RequestSignalsMiddleware(listed)) == (
        f"RequestSignalsMiddleware({listed!r})"
    )


def test_wrapping_something_that_is_not_callable_says_what_a_wsgi_app_is() -> None:
    expected = (
        "RequestSignalsMiddleware wraps a WSGI application (a callable taking "
        "environ and start_response), got 'app'."
    )
    with pytest.raises(TypeError, match=f"^{re.escape(expected)}$"):
        RequestSignalsMiddleware("app")  # type: ignore[arg-type]


@pytest.mark.parametrize("signal", [request_started, request_finished])
def test_a_receiver_of_either_request_signal_is_enough_to_hear_it(signal: Any) -> None:
    heard: list[tuple[Any, Any]] = []

    def on_request(sender: Any, environ: Any, **kwargs: Any) -> None:
        heard.append((sender, environ))

    environ = {"PATH_INFO": "/"}
    with connected_to(on_request, signal, sender=Flask):
        body = RequestSignalsMiddleware(listed, sender=Flask)(environ, start_response)
        body.close()  # type: ignore[attr-defined]
    assert heard == [(Flask, environ)]
