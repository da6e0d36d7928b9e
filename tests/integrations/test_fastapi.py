"""FastAPI behind the request-signal middleware, served by uvicorn on 127.0.0.1.

FastAPI is Starlette underneath; these tests prove the two ways FastAPI users
add a middleware: wrapping the app, and ``app.add_middleware``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _servers import uvicorn_server, wait_for
from fastapi import FastAPI

from tocsin.integrations.asgi import RequestSignalsMiddleware
from tocsin.signals import got_request_exception, request_finished, request_started
from tocsin.testing import connected_to


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @app.get("/broken")
    async def broken() -> None:
        raise LookupError("no such thing")

    return app


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Any, Any]] = []

    def started(self, sender: Any, scope: Any, **kwargs: Any) -> None:
        self.seen.append(("started", sender, scope["path"]))

    def finished(self, sender: Any, scope: Any, **kwargs: Any) -> None:
        self.seen.append(("finished", sender, scope["path"]))

    def failed(self, sender: Any, request: Any, exception: Any, **kwargs: Any) -> None:
        self.seen.append(("exception", type(exception), request["path"]))


@pytest.fixture
def events() -> Iterator[Events]:
    events = Events()
    with (
        connected_to(events.started, request_started),
        connected_to(events.finished, request_finished),
        connected_to(events.failed, got_request_exception),
    ):
        yield events


def test_a_wrapped_fastapi_app_sends_started_and_finished(events: Events) -> None:
    with uvicorn_server(RequestSignalsMiddleware(make_app())) as url:
        response = httpx.get(f"{url}/items/7", timeout=10)
        wait_for(lambda: len(events.seen) == 2)

    assert response.json() == {"item_id": 7}
    assert events.seen == [
        ("started", FastAPI, "/items/7"),
        ("finished", FastAPI, "/items/7"),
    ]


def test_add_middleware_works_and_an_error_still_becomes_a_500(events: Events) -> None:
    app = make_app()
    app.add_middleware(RequestSignalsMiddleware, sender=FastAPI)
    with uvicorn_server(app) as url:
        ok = httpx.get(f"{url}/items/1", timeout=10)
        failed = httpx.get(f"{url}/broken", timeout=10)
        wait_for(lambda: len(events.seen) == 5)

    assert ok.status_code == 200
    assert failed.status_code == 500
    assert events.seen == [
        ("started", FastAPI, "/items/1"),
        ("finished", FastAPI, "/items/1"),
        ("started", FastAPI, "/broken"),
        ("exception", LookupError, "/broken"),
        ("finished", FastAPI, "/broken"),
    ]
