"""Request signals for any ASGI application: Starlette, FastAPI, Quart, Django.

Wrap the application once, outermost::

    from tocsin.integrations.asgi import RequestSignalsMiddleware

    app = RequestSignalsMiddleware(app)

Then, for each HTTP request:

1. ``request_started`` is sent (``sender``, ``scope=``) before the application
   is called;
2. ``got_request_exception`` is sent (``sender=None``, ``request=`` the scope)
   if the application raises an exception, which then propagates unchanged;
3. ``request_finished`` is sent (``sender``, ``scope=``) exactly once, after
   the application has returned: the response has been completely sent
   (streamed bodies included), the client went away, or the application
   failed.

This module needs no extra: it is plain ASGI 3 and imports nothing beyond the
standard library. It needs an asyncio event loop (uvicorn, hypercorn's asyncio
worker, daphne, granian), as :meth:`tocsin.Signal.asend` does.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .. import _async
from ..signals import got_request_exception, request_finished, request_started

__all__ = ["RequestSignalsMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_UNSET: Any = object()

# Deliveries of request_finished that outlived a cancelled request: the loop
# holds tasks only weakly, so they are kept here until they are done.
_in_flight: set[asyncio.Task[Any]] = set()


class RequestSignalsMiddleware:
    """Send tocsin's request signals around every HTTP request of ``app``.

    Args:
        app: The ASGI 3 application to wrap.
        sender: The sender of ``request_started`` and ``request_finished``.
            Defaults to the class of ``app`` (as Django sends its handler's
            class). Give it explicitly when the wrapped object is not the
            class your receivers filter on, for instance when a framework's
            ``add_middleware`` hands this middleware its inner stack.

    What receivers get:

    - ``request_started(sender, scope)``: before ``app`` is called. Async
      receivers are awaited; synchronous ones run on the event loop, so they
      hold it for as long as they run (keep them short, or make them async).
      If one raises, the exception propagates, ``app`` is not called, and
      ``request_finished`` is still sent.
    - ``got_request_exception(sender=None, request=scope)``: when ``app``
      raises an ``Exception``. Sent robustly: a failing receiver is logged to
      the ``tocsin`` logger and the application's own exception propagates
      unchanged. Not sent for cancellation.
    - ``request_finished(sender, scope)``: exactly once per request, after
      ``app`` has returned or raised, so after the last body message was
      handed to the server. Sent robustly, so that every clean-up receiver
      runs. It is shielded from cancellation: if the request's task is
      cancelled meanwhile, the delivery completes in its own task and the
      cancellation propagates.

    Only ``http`` scopes are signalled: ``lifespan`` and ``websocket`` scopes
    (and any other type) pass straight through, untouched.

    If neither ``request_started`` nor ``request_finished`` has a receiver
    when a request arrives, the middleware steps aside for that request: it
    only watches for an exception to send as ``got_request_exception``, and
    sends no ``request_finished``. Receivers connected meanwhile hear from
    the next request on.

    The middleware keeps no state between requests; it can wrap several
    applications and serve concurrent requests.

    Raises:
        TypeError: ``app`` is not callable.

    .. versionadded:: 0.1
    """

    def __init__(self, app: ASGIApp, *, sender: Any = _UNSET) -> None:
        if not callable(app):
            raise TypeError(
                "RequestSignalsMiddleware wraps an ASGI application (an async "
                f"callable taking scope, receive and send), got {app!r}."
            )
        self.app = app
        self.sender = type(app) if sender is _UNSET else sender

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.app!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sender = self.sender
        # Looked up once: has_listeners() costs a few microseconds per call
        # when a receiver is connected, about 0.1% of a real request each.
        started = request_started.has_listeners(sender)
        if not (started or request_finished.has_listeners(sender)):
            # Nobody to tell about the request itself: only watch for errors
            # (a try block costs nothing until something is raised).
            try:
                await self.app(scope, receive, send)
            except Exception as error:
                await _report(scope, error)
                raise
            return
        try:
            if started:
                await request_started.asend(sender, scope=scope)
            try:
                await self.app(scope, receive, send)
            except Exception as error:
                await _report(scope, error)
                raise
        finally:
            if request_finished.has_listeners(sender):
                await _finish(sender, scope)


async def _report(scope: Scope, error: Exception) -> None:
    if got_request_exception.has_listeners(None):
        await got_request_exception.asend_robust(None, request=scope, exception=error)


async def _finish(sender: Any, scope: Scope) -> None:
    """Send request_finished exactly once, whatever cancels the request.

    The send runs in a task of its own, shielded: cancelling the request then
    cancels only the waiting, not the delivery. Where Python has eager tasks
    (3.12+) that task starts at once, so a send whose receivers never wait is
    done without a loop iteration.
    """
    delivery = request_finished.asend_robust(sender, scope=scope)
    loop = asyncio.get_running_loop()
    task = _async.start_task(delivery, contextvars.copy_context(), loop)
    if task.done():
        task.result()
        return
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            _in_flight.add(task)
            task.add_done_callback(_in_flight.discard)
        raise
