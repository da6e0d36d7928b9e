"""Real HTTP servers on 127.0.0.1, each in a thread of the test process.

Receivers connected by a test run in the server's threads, so the tests can
assert what a real server made the middleware send. Startup and shutdown are
bounded in time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from support import free_port

STARTUP_TIMEOUT = 10.0
SHUTDOWN_TIMEOUT = 10.0


def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll ``condition`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.005)


@contextmanager
def uvicorn_server(app: Any, *, lifespan: str = "off") -> Iterator[str]:
    """Serve the ASGI ``app`` with uvicorn; yield its base URL."""
    import uvicorn

    async def served(scope: Any, receive: Any, send: Any) -> None:
        await app(scope, receive, send)

    port = free_port()
    config = uvicorn.Config(
        # A plain ASGI 3 function: uvicorn tells a factory from an app by
        # calling it without arguments, which an app whose __call__ is
        # wrapped (mutation testing wraps every function) would survive.
        served,
        host="127.0.0.1",
        port=port,
        lifespan=lifespan,
        log_level="critical",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), STARTUP_TIMEOUT)
        if not server.started:
            raise RuntimeError(f"uvicorn did not start on port {port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(SHUTDOWN_TIMEOUT)
        if thread.is_alive():
            raise RuntimeError("uvicorn did not stop in time")


@contextmanager
def waitress_server(app: Any, *, threads: int = 8) -> Iterator[str]:
    """Serve the WSGI ``app`` with waitress; yield its base URL."""
    import waitress.server

    port = free_port()
    server = waitress.server.create_server(
        app, host="127.0.0.1", port=port, threads=threads
    )
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:

        def close_everything() -> None:
            # Runs on the server's own loop: once its map is empty, run() returns.
            for dispatcher in list(server._map.values()):
                dispatcher.close()

        server.trigger.pull_trigger(close_everything)
        thread.join(SHUTDOWN_TIMEOUT)
        server.task_dispatcher.shutdown(timeout=SHUTDOWN_TIMEOUT)
        if thread.is_alive():
            raise RuntimeError("waitress did not stop in time")
