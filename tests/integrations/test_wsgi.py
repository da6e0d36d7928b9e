"""Request signals from the WSGI RequestSignalsMiddleware, under a real waitress."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator
from typing import Any

import flask
import httpx
import pytest
from _recording import Gates, Recorder, recording
from _servers import wait_for, waitress_server

from tocsin.integrations.wsgi import RequestSignalsMiddleware
from tocsin.signals import got_request_exception, request_finished, request_started
from tocsin.testing import capture, connected_to

# -- the Flask application under test -------------------------------------------


gates = Gates()
flask_app = flask.Flask(__name__)
# Let errors reach the WSGI server (and the middleware) instead of Flask's own
# 500 page, as in Django's handler the middleware sees what the server sees.
flask_app.config["PROPAGATE_EXCEPTIONS"] = True


@flask_app.get("/hello")
def hello() -> str:
    gates.timeline.append("app ran")
    return "hello"


@flask_app.get("/boom")
def boom() -> str:
    raise RuntimeError("boom from a view")


@flask_app.get("/slow")
def slow() -> str:
    time.sleep(0.05)
    return flask.request.args["n"]


@flask_app.get("/stream")
def gated_stream() -> flask.Response:
    def chunks() -> Iterator[bytes]:
        yield b"first\n"
        gates.release_last_chunk.wait(5)
        yield b"last\n"
        gates.timeline.append("last chunk sent")

    return flask.Response(chunks())


@flask_app.get("/stream-boom")
def failing_stream() -> flask.Response:
    def chunks() -> Iterator[bytes]:
        yield b"first\n"
        raise LookupError("failed mid-stream")

    return flask.Response(chunks())


@flask_app.get("/endless")
def endless_stream() -> flask.Response:
    def chunks() -> Iterator[bytes]:
        for _ in range(500):  # bounded: 5 s at most
            yield b"x" * 1024
            time.sleep(0.01)

    return flask.Response(chunks())


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with waitress_server(RequestSignalsMiddleware(flask_app)) as url:
        yield url


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    def path_of(kwargs: dict[str, Any]) -> str:
        path: str = kwargs.get("environ", kwargs.get("request"))["PATH_INFO"]
        return path

    with recording(gates, path_of) as recorder:
        yield recorder


# -- end to end, waitress + Flask ------------------------------------------------


def test_a_request_sends_started_then_finished_with_its_environ(
    url: str, client: httpx.Client, recorder: Recorder
) -> None:
    assert client.get(f"{url}/hello").text == "hello"

    wait_for(lambda: recorder.named("finished"))
    (started, finished) = recorder.events
    assert (started[0], started[1]) == ("started", flask.Flask)
    assert (finished[0], finished[1]) == ("finished", flask.Flask)
    assert started[2]["environ"] is finished[2]["environ"]
    assert started[2]["environ"]["PATH_INFO"] == "/hello"
    assert gates.timeline == ["started", "app ran", "finished"]


def test_request_finished_waits_for_the_last_streamed_chunk(
    url: str, client: httpx.Client, recorder: Recorder
) -> None:
    with client.stream("GET", f"{url}/stream") as response:
        chunks = response.iter_bytes()
        assert next(chunks) == b"first\n"
        time.sleep(0.1)
        assert recorder.named("finished") == []

        gates.release_last_chunk.set()
        assert b"".join(chunks) == b"last\n"

    wait_for(lambda: recorder.named("finished"))
    assert gates.timeline == ["started", "last chunk sent", "finished"]


def test_an_exception_is_delivered_propagates_and_still_gives_a_500(
    url: str, client: httpx.Client, recorder: Recorder
) -> None:
    response = client.get(f"{url}/boom")

    assert response.status_code == 500  # waitress's own error page
    wait_for(lambda: recorder.named("finished"))
    assert recorder.for_path("/boom") == ["started", "exception", "finished"]
    (_, sender, kwargs) = recorder.named("exception")[0]
    assert sender is None
    assert kwargs["request"] is recorder.events[0][2]["environ"]
    assert isinstance(kwargs["exception"], RuntimeError)
    assert str(kwargs["exception"]) == "boom from a view"


def test_an_exception_while_streaming_is_delivered_and_finishes_the_request(
    url: str, client: httpx.Client, recorder: Recorder
) -> None:
    # The status line is gone already: the server can only cut the response.
    with pytest.raises(httpx.HTTPError):
        client.get(f"{url}/stream-boom")

    wait_for(lambda: recorder.named("finished"))
    assert recorder.for_path("/stream-boom") == ["started", "exception", "finished"]
    exception = recorder.named("exception")[0][2]["exception"]
    assert isinstance(exception, LookupError)


def test_a_client_that_leaves_mid_stream_still_finishes_the_request_once(
    url: str, recorder: Recorder
) -> None:
    with (
        httpx.Client(timeout=10) as client,
        client.stream("GET", f"{url}/endless") as response,
    ):
        assert len(next(response.iter_raw())) > 0

    wait_for(lambda: recorder.named("finished"), timeout=8)
    time.sleep(0.1)
    assert recorder.for_path("/endless") == ["started", "finished"]


def test_concurrent_requests_each_finish_exactly_once(
    url: str, recorder: Recorder
) -> None:
    count = 24

    async def fire() -> list[str]:
        async with httpx.AsyncClient(timeout=10) as client:
            responses = await asyncio.gather(
                *(client.get(f"{url}/slow?n={n}") for n in range(count))
            )
        return [response.text for response in responses]

    assert sorted(asyncio.run(fire()), key=int) == [str(n) for n in range(count)]

    wait_for(lambda: len(recorder.named("finished")) == count)
    started = [kwargs["environ"] for _, _, kwargs in recorder.named("started")]
    finished = [kwargs["environ"] for _, _, kwargs in recorder.named("finished")]
    assert len({id(environ) for environ in started}) == count
    assert sorted(map(id, finished)) == sorted(map(id, started))
    assert {environ["QUERY_STRING"] for environ in finished} == {
        f"n={n}" for n in range(count)
    }


# -- in process: the response iterable's contract ------------------------------


def _environ(path: str = "/") -> dict[str, Any]:
    return {"REQUEST_METHOD": "GET", "PATH_INFO": path}


def _start_response(status: str, headers: list[Any], exc_info: Any = None) -> Any:
    return lambda data: None


class ClosingBody:
    """A response iterable with its own close(), as PEP 3333 allows."""

    def __init__(self, chunks: list[bytes], log: list[str]) -> None:
        self.chunks = chunks
        self.log = log

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def close(self) -> None:
        self.log.append("app closed")


def test_close_closes_the_apps_iterable_first_then_finishes_once() -> None:
    log: list[str] = []

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        return ClosingBody([b"a", b"b"], log)

    def finished(sender: Any, **kwargs: Any) -> None:
        log.append("finished")

    with connected_to(finished, request_finished):
        body = RequestSignalsMiddleware(app)(_environ(), _start_response)
        assert list(body) == [b"a", b"b"]
        assert log == []
        body.close()  # type: ignore[attr-defined]
        body.close()  # type: ignore[attr-defined]

    assert log == ["app closed", "finished"]


def test_an_exception_from_the_apps_close_is_delivered_and_finishes() -> None:
    class FailingClose(ClosingBody):
        def close(self) -> None:
            raise OSError("close failed")

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        return FailingClose([b"a"], [])

    with capture(got_request_exception, request_finished) as sent:
        body = RequestSignalsMiddleware(app)(_environ(), _start_response)
        list(body)
        with pytest.raises(OSError, match="close failed"):
            body.close()  # type: ignore[attr-defined]

    assert [s.signal for s in sent] == [got_request_exception, request_finished]


def test_the_length_of_the_response_is_forwarded_when_it_has_one() -> None:
    def listed(environ: Any, start_response: Any) -> Iterable[bytes]:
        return [b"one body"]

    def generated(environ: Any, start_response: Any) -> Iterable[bytes]:
        yield b"one body"

    with capture(request_finished):
        assert len(RequestSignalsMiddleware(listed)(_environ(), _start_response)) == 1  # type: ignore[arg-type]
        body = RequestSignalsMiddleware(generated)(_environ(), _start_response)
        assert not hasattr(body, "__len__")


def test_an_exception_from_calling_the_app_is_delivered_then_finishes() -> None:
    error = ZeroDivisionError("in the view")

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        raise error

    environ = _environ()
    with (
        capture(got_request_exception, request_finished) as sent,
        pytest.raises(ZeroDivisionError) as raised,
    ):
        RequestSignalsMiddleware(app)(environ, _start_response)

    assert raised.value is error
    assert [s.signal for s in sent] == [got_request_exception, request_finished]
    assert sent[0].kwargs == {"request": environ, "exception": error}
    assert sent[1].kwargs == {"environ": environ}


def test_a_failing_started_receiver_fails_the_request_and_still_finishes_it() -> None:
    ran: list[str] = []

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        ran.append("app")
        return []

    def refuse(sender: Any, **kwargs: Any) -> None:
        raise PermissionError("not today")

    with (
        connected_to(refuse, request_started),
        capture(request_finished, got_request_exception) as sent,
        pytest.raises(PermissionError, match="not today"),
    ):
        RequestSignalsMiddleware(app)(_environ(), _start_response)

    assert ran == []
    assert [s.signal for s in sent] == [request_finished]


def test_with_nobody_listening_the_apps_own_response_is_returned() -> None:
    body = [b"untouched"]

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        return body

    middleware = RequestSignalsMiddleware(app)
    assert middleware(_environ(), _start_response) is body
    with capture(request_finished):
        assert middleware(_environ(), _start_response) is not body


def test_wrapping_something_that_is_not_an_app_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="wraps a WSGI application"):
        RequestSignalsMiddleware(None)  # type: ignore[arg-type]
