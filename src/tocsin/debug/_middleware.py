"""``TimelineMiddleware`` (ASGI) and ``TimelineWSGIMiddleware``: record each
request's dispatches and serve them under ``/_tocsin/``.

Off unless ``debug=True``: then the middleware is a pass-through and no
observer is installed, so production pays nothing. When on, only clients
that ``allow`` accepts (loopback addresses by default) see the pages and the
``Server-Timing``/``X-Tocsin-Trace`` headers; others get 404 there.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from typing import Any

from ._pages import index_page, trace_json, waterfall_page
from ._recorder import Recorder, RequestTrace, _current

__all__ = ["TimelineMiddleware", "TimelineWSGIMiddleware", "loopback_only"]

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]
_TRACE_PATH = re.compile(r"/r/(\d+)(\.json)?")


def loopback_only(host: str | None) -> bool:
    """Whether ``host`` (the client's address) is a loopback address."""
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Timeline:
    """What both middlewares share: the recorder and the pages."""

    def __init__(
        self,
        debug: bool,
        mount: str,
        max_requests: int,
        allow: Callable[[str | None], bool],
    ) -> None:
        if not mount.startswith("/") or mount.endswith("/"):
            raise ValueError(
                f"mount={mount!r}: give a path that starts with / and does not "
                "end with one, such as '/_tocsin'."
            )
        self.debug = debug
        self.mount = mount
        self.allow = allow
        self.recorder = Recorder(max_requests)
        if debug:
            self.recorder.start()

    def close(self) -> None:
        """Stop recording (remove the observer)."""
        self.recorder.stop()

    def serves(self, path: str) -> bool:
        return path == self.mount or path.startswith(self.mount + "/")

    def page(self, path: str) -> tuple[int, str, str]:
        """``(status, content type, body)`` for a path under the mount."""
        rest = path[len(self.mount) :]
        if rest in ("", "/"):
            return (
                200,
                "text/html",
                index_page(list(self.recorder.requests), self.mount),
            )
        match = _TRACE_PATH.fullmatch(rest)
        trace = self.recorder.find(int(match.group(1))) if match else None
        if trace is None:
            return (
                404,
                "text/plain",
                "Not Found: no such request (the timeline keeps the recent ones)",
            )
        if match and match.group(2):
            return 200, "application/json", trace_json(trace)
        return 200, "text/html", waterfall_page(trace, self.mount)

    @staticmethod
    def headers(trace: RequestTrace) -> list[tuple[bytes, bytes]]:
        total = trace.receivers_ns() / 1e6
        count = trace.call_count
        noun = "receiver" if count == 1 else "receivers"
        timing = f'tocsin;dur={total:.2f};desc="{count} {noun}"'
        return [
            (b"server-timing", timing.encode()),
            (b"x-tocsin-trace", str(trace.id).encode()),
        ]


class TimelineMiddleware(_Timeline):
    """Record the dispatches of each HTTP request of ``app``; serve them.

    Wrap the application outermost, outside
    :class:`~tocsin.integrations.asgi.RequestSignalsMiddleware`, so that
    ``request_started`` and ``request_finished`` are recorded too::

        app = TimelineMiddleware(RequestSignalsMiddleware(app), debug=DEBUG)

    Args:
        app: The ASGI 3 application.
        debug: Record and serve only when true; otherwise a pass-through.
        mount: Where the pages are served: ``{mount}/`` lists the recent
            requests, ``{mount}/r/<id>`` shows one as a waterfall and
            ``{mount}/r/<id>.json`` gives it as JSON.
        max_requests: How many recent requests are kept (a ring buffer).
        allow: Given the client's address, whether it may see the pages and
            the headers. By default, loopback clients only.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        debug: bool = False,
        mount: str = "/_tocsin",
        max_requests: int = 50,
        allow: Callable[[str | None], bool] = loopback_only,
    ) -> None:
        super().__init__(debug, mount, max_requests, allow)
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if not self.debug or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or (None,))[0]
        allowed = self.allow(client)
        path = scope.get("path", "")
        if self.serves(path):
            status, kind, body = (
                self.page(path) if allowed else (404, "text/plain", "Not Found")
            )
            await _respond(send, status, kind, body)
            return
        token = self.recorder.begin(scope.get("method", "?"), path, client)
        trace = _current.get()
        assert trace is not None

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                trace.status = message.get("status")
                if allowed:
                    message = {
                        **message,
                        "headers": [*message.get("headers", []), *self.headers(trace)],
                    }
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            trace.end_ns = time.perf_counter_ns()
            _current.reset(token)


class TimelineWSGIMiddleware(_Timeline):
    """:class:`TimelineMiddleware` for a WSGI application (same arguments).

    A request's recording ends when the server closes the response, after
    ``request_finished`` (sent by
    :class:`~tocsin.integrations.wsgi.RequestSignalsMiddleware` on close).

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        *,
        debug: bool = False,
        mount: str = "/_tocsin",
        max_requests: int = 50,
        allow: Callable[[str | None], bool] = loopback_only,
    ) -> None:
        super().__init__(debug, mount, max_requests, allow)
        self.app = app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if not self.debug:
            return self.app(environ, start_response)
        client = environ.get("REMOTE_ADDR")
        allowed = self.allow(client)
        path = environ.get("PATH_INFO", "")
        if self.serves(path):
            status, kind, body = (
                self.page(path) if allowed else (404, "text/plain", "Not Found")
            )
            data = body.encode()
            start_response(
                f"{status} {'OK' if status == 200 else 'Not Found'}",
                [
                    ("content-type", f"{kind}; charset=utf-8"),
                    ("content-length", str(len(data))),
                ],
            )
            return [data]
        self.recorder.begin(environ.get("REQUEST_METHOD", "?"), path, client)
        trace = _current.get()
        assert trace is not None

        def start_with_headers(status: str, headers: list[Any], *rest: Any) -> Any:
            trace.status = int(status.split()[0])
            if allowed:
                headers = [
                    *headers,
                    *((k.decode(), v.decode()) for k, v in self.headers(trace)),
                ]
            return start_response(status, headers, *rest)

        try:
            response = self.app(environ, start_with_headers)
        except BaseException:
            trace.end_ns = time.perf_counter_ns()
            _current.set(None)
            raise
        return _Recorded(response, trace)


class _Recorded:
    """The response body; closing it ends the request's recording."""

    def __init__(self, body: Iterable[bytes], trace: RequestTrace) -> None:
        self.body = body
        self.trace = trace

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.trace.end_ns = time.perf_counter_ns()
            _current.set(None)


async def _respond(send: Any, status: int, kind: str, body: str) -> None:
    data = body.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", f"{kind}; charset=utf-8".encode()),
                (b"content-length", str(len(data)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
