"""The debug timeline: what each request sent and ran, served under /_tocsin/."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import DeclarativeBase, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tocsin import Signal, _observe
from tocsin.debug import TimelineMiddleware, TimelineWSGIMiddleware
from tocsin.integrations import sqlalchemy as model_signals
from tocsin.integrations.asgi import RequestSignalsMiddleware
from tocsin.integrations.wsgi import RequestSignalsMiddleware as WSGISignals
from tocsin.signals import request_finished, request_started
from tocsin.transaction import unit_of_work

outer = Signal(name="outer")
inner = Signal(name="inner")
hostile = Signal(name="<script>alert(1)</script>")
placed = Signal(name="placed")
REPO = Path(__file__).parents[2]


def send_inner(sender: Any, **kwargs: Any) -> str:
    inner.send(sender=sender)
    return "sent inner"


def on_inner(sender: Any, **kwargs: Any) -> None: ...


def fails(sender: Any, **kwargs: Any) -> None:
    raise ValueError("boom")


async def slow_async(sender: Any, **kwargs: Any) -> None:
    await asyncio.sleep(0.001)


def after_commit(sender: Any, **kwargs: Any) -> None: ...


def log_request(sender: Any, **kwargs: Any) -> None: ...


@pytest.fixture(autouse=True)
def wiring() -> Iterator[None]:
    # The request middlewares send only when someone listens.
    request_started.connect(log_request)
    request_finished.connect(log_request)
    outer.connect(send_inner)
    inner.connect(on_inner)
    hostile.connect(fails)
    placed.connect(after_commit, on_commit=True)
    yield
    outer.disconnect(send_inner)
    inner.disconnect(on_inner)
    hostile.disconnect(fails)
    placed.disconnect(after_commit)
    request_started.disconnect(log_request)
    request_finished.disconnect(log_request)


async def nested(request: Request) -> Response:
    await outer.asend(sender=f"req-{request.query_params.get('n', '0')}")
    return PlainTextResponse("ok")


async def concurrent(request: Request) -> Response:
    n = request.query_params["n"]
    signal = Signal(name=f"s{n}")
    signal.connect(slow_async, weak=False)
    for _ in range(3):
        await signal.asend(sender=f"req-{n}")
        await asyncio.sleep(0)
    return PlainTextResponse(n)


def in_thread(request: Request) -> Response:  # Starlette runs it in a thread pool
    outer.send(sender="thread")
    return PlainTextResponse("ok")


async def failing(request: Request) -> Response:
    hostile.send_robust(sender="<b>bold</b>")
    return PlainTextResponse("ok")


class Base(DeclarativeBase):
    pass


async def commit(request: Request) -> Response:
    engine = create_engine("sqlite://")
    with Session(engine) as session:
        session.begin()
        with unit_of_work(session):
            placed.send(sender="shop")
        session.commit()
    return PlainTextResponse("ok")


ROUTES = [
    Route("/nested", nested),
    Route("/concurrent", concurrent),
    Route("/thread", in_thread),
    Route("/failing", failing),
    Route("/commit", commit),
]


def make_app(**options: Any) -> TimelineMiddleware:
    app = RequestSignalsMiddleware(Starlette(routes=ROUTES))
    return TimelineMiddleware(app, **{"debug": True, **options})


def client(app: Any, host: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def trace_of(http: httpx.AsyncClient, response: httpx.Response) -> Any:
    trace_id = response.headers["x-tocsin-trace"]
    return (await http.get(f"/_tocsin/r/{trace_id}.json")).json()


def signals_of(trace: dict[str, Any]) -> list[tuple[str, int]]:
    return [(d["signal"], d["depth"]) for d in trace["dispatches"]]


def test_nested_dispatches_are_recorded_in_order_with_depth_and_offsets() -> None:
    app = make_app()

    async def main() -> Any:
        async with client(app) as http:
            return await trace_of(http, await http.get("/nested?n=1"))

    try:
        trace = asyncio.run(main())
    finally:
        app.close()
    assert signals_of(trace) == [
        ("request_started", 0),
        ("outer", 0),
        ("inner", 1),
        ("request_finished", 0),
    ]
    started, out, inn, _ = trace["dispatches"]
    assert inn["parent"] == out["id"]
    assert out["sender"] == "req-1"
    assert [c["receiver"] for c in out["calls"]] == [f"{__name__}.send_inner"]
    assert out["calls"][0]["result"] == "'sent inner'"
    assert started["start_ms"] <= out["start_ms"] <= inn["start_ms"]
    assert inn["start_ms"] + inn["duration_ms"] <= out["start_ms"] + out["duration_ms"]
    assert trace["status"] == 200


def test_twenty_concurrent_requests_never_mix() -> None:
    app = make_app(max_requests=100)

    async def main() -> list[tuple[str, Any]]:
        async with client(app) as http:
            responses = await asyncio.gather(
                *(http.get(f"/concurrent?n={n}") for n in range(20))
            )
            return [(r.text, await trace_of(http, r)) for r in responses]

    try:
        results = asyncio.run(main())
    finally:
        app.close()
    for n, trace in results:
        own = [d for d in trace["dispatches"] if d["signal"].startswith("s")]
        assert [d["signal"] for d in own] == [f"s{n}"] * 3
        assert {d["sender"] for d in own} == {f"req-{n}"}
        assert all(len(d["calls"]) == 1 for d in own)


def test_a_thread_pool_endpoint_is_recorded() -> None:
    app = make_app()

    async def main() -> Any:
        async with client(app) as http:
            return await trace_of(http, await http.get("/thread"))

    try:
        trace = asyncio.run(main())
    finally:
        app.close()
    assert ("outer", 0) in signals_of(trace)
    assert ("inner", 1) in signals_of(trace)


def test_a_failing_receiver_is_a_red_row_with_its_exception_and_names_are_escaped() -> (
    None
):
    app = make_app()

    async def main() -> tuple[Any, str]:
        async with client(app) as http:
            response = await http.get("/failing")
            trace = await trace_of(http, response)
            page = await http.get(f"/_tocsin/r/{trace['id']}")
            return trace, page.text

    try:
        trace, page = asyncio.run(main())
    finally:
        app.close()
    failed = next(d for d in trace["dispatches"] if d["signal"] == hostile.name)
    assert failed["calls"][0]["error"] == "ValueError: boom"
    assert re.search(r'<tr class="call error"[^>]*>.*ValueError: boom', page)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page


def test_an_on_commit_receiver_is_scheduled_then_runs_after_the_commit() -> None:
    installation = model_signals.install(Base)  # SQLAlchemy sessions as units of work
    app = make_app()

    async def main() -> Any:
        async with client(app) as http:
            return await trace_of(http, await http.get("/commit"))

    try:
        trace = asyncio.run(main())
    finally:
        app.close()
        installation.uninstall()
    sent = [d for d in trace["dispatches"] if d["signal"] == "placed"]
    scheduled, ran = sent
    assert scheduled["mode"] == "send"
    assert scheduled["calls"][0]["deferred"] == "on_commit"
    assert ran["mode"] == "on_commit"
    assert ran["origin"] == scheduled["id"]
    assert ran["calls"][0]["receiver"] == f"{__name__}.after_commit"
    assert ran["start_ms"] >= scheduled["start_ms"] + scheduled["duration_ms"]


def test_server_timing_counts_the_receivers() -> None:
    app = make_app()

    async def main() -> httpx.Response:
        async with client(app) as http:
            return await http.get("/nested")

    try:
        response = asyncio.run(main())
    finally:
        app.close()
    timing = response.headers["server-timing"]
    # At response start: log_request, send_inner and on_inner ran (the
    # receiver of request_finished not yet).
    assert re.fullmatch(r'tocsin;dur=\d+\.\d\d;desc="3 receivers"', timing), timing


def test_a_client_that_is_not_loopback_gets_404_and_no_headers() -> None:
    app = make_app()

    async def main() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        async with client(app, host="203.0.113.5") as http:
            page = await http.get("/_tocsin/")
            response = await http.get("/nested")
        async with client(app) as http:
            local = await http.get("/_tocsin/")
        return page, response, local

    try:
        page, response, local = asyncio.run(main())
    finally:
        app.close()
    assert page.status_code == 404
    assert "server-timing" not in response.headers
    assert "x-tocsin-trace" not in response.headers
    assert local.status_code == 200


def test_disabled_means_no_observer_and_a_pass_through() -> None:
    before = _observe.observers()
    app = make_app(debug=False)
    assert _observe.observers() == before

    async def main() -> tuple[httpx.Response, httpx.Response]:
        async with client(app) as http:
            return await http.get("/nested"), await http.get("/_tocsin/")

    response, page = asyncio.run(main())
    assert "x-tocsin-trace" not in response.headers
    assert page.status_code == 404  # the app's own 404: nothing is mounted
    enabled = make_app()
    assert len(_observe.observers()) == len(before) + 1
    enabled.close()
    assert _observe.observers() == before


def test_the_ring_buffer_keeps_the_most_recent_requests() -> None:
    app = make_app(max_requests=3)

    async def main() -> tuple[list[str], str, int]:
        async with client(app) as http:
            ids = [
                (await http.get(f"/nested?n={n}")).headers["x-tocsin-trace"]
                for n in range(5)
            ]
            index = (await http.get("/_tocsin/")).text
            gone = (await http.get(f"/_tocsin/r/{ids[0]}")).status_code
        return ids, index, gone

    try:
        ids, index, gone = asyncio.run(main())
    finally:
        app.close()
    assert gone == 404
    listed = re.findall(r'href="/_tocsin/r/(\d+)"', index)
    assert listed == [ids[4], ids[3], ids[2]]


def test_the_wsgi_twin_records_until_the_response_is_closed() -> None:
    def application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        outer.send(sender="wsgi")
        start_response("201 Created", [("content-type", "text/plain")])
        return [b"made"]

    app = TimelineWSGIMiddleware(WSGISignals(application), debug=True)
    try:
        with httpx.Client(
            transport=httpx.WSGITransport(app=app), base_url="http://testserver"
        ) as http:
            response = http.get("/things")
            trace = http.get(
                f"/_tocsin/r/{response.headers['x-tocsin-trace']}.json"
            ).json()
    finally:
        app.close()
    assert response.status_code == 201
    assert signals_of(trace) == [
        ("request_started", 0),
        ("outer", 0),
        ("inner", 1),
        ("request_finished", 0),
    ]
    assert trace["status"] == 201


def test_a_saved_timeline_feeds_tocsin_graph_trace(tmp_path: Path) -> None:
    app = make_app()

    async def main() -> str:
        async with client(app) as http:
            response = await http.get("/nested?n=7")
            url = f"/_tocsin/r/{response.headers['x-tocsin-trace']}.json"
            return (await http.get(url)).text

    try:
        saved = tmp_path / "trace.json"
        saved.write_text(asyncio.run(main()))
    finally:
        app.close()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "tocsin",
            "-A",
            "inspected",
            "graph",
            "--trace",
            str(saved),
        ],
        cwd=REPO / "tests" / "cli" / "apps",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert '(["req-7"])' in run.stdout
    assert f'["{__name__}.send_inner' in run.stdout
    assert json.loads(saved.read_text())["version"] == 1
