"""Request signals for any WSGI application: Flask, Django, Pyramid, Bottle.

Wrap the application once, outermost::

    from tocsin.integrations.wsgi import RequestSignalsMiddleware

    app.wsgi_app = RequestSignalsMiddleware(app.wsgi_app)  # Flask
    application = RequestSignalsMiddleware(application)  # anything else

Then, for each request:

1. ``request_started`` is sent (``sender``, ``environ=``) before the
   application is called;
2. ``got_request_exception`` is sent (``sender=None``, ``request=`` the
   environ) if calling the application, iterating its response or closing it
   raises an exception, which then propagates unchanged;
3. ``request_finished`` is sent (``sender``, ``environ=``) exactly once, when
   the server closes the response (PEP 3333 servers always do, after the last
   chunk was written or the client went away), or at once if calling the
   application raised.

This module needs no extra: it imports nothing beyond the standard library.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..signals import got_request_exception, request_finished, request_started

__all__ = ["RequestSignalsMiddleware"]

Environ = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

_UNSET: Any = object()


class RequestSignalsMiddleware:
    """Send tocsin's request signals around every request of ``app``.

    Args:
        app: The WSGI application to wrap.
        sender: The sender of ``request_started`` and ``request_finished``.
            Defaults to the class of ``app`` (as Django sends its handler's
            class); for a Flask app wrapped as ``app.wsgi_app``, pass
            ``sender=flask.Flask`` or your subclass.

    What receivers get:

    - ``request_started(sender, environ)``: before ``app`` is called. If a
      receiver raises, the exception propagates, ``app`` is not called, and
      ``request_finished`` is still sent.
    - ``got_request_exception(sender=None, request=environ)``: when calling
      ``app``, iterating its response or closing it raises an
      ``Exception``. Sent robustly: a failing receiver is logged to the
      ``tocsin`` logger and the application's exception propagates unchanged.
      Frameworks that turn errors into 500 responses themselves (Flask
      without ``PROPAGATE_EXCEPTIONS``, Django) never let them reach this
      middleware.
    - ``request_finished(sender, environ)``: exactly once, when the server
      calls ``close()`` on the response, after the application's own
      ``close()`` (as Django does). Sent robustly, so that every clean-up
      receiver runs.

    The response is wrapped in an iterable that forwards ``close()`` and
    ``len()``; a server's ``wsgi.file_wrapper`` fast path is not taken for a
    wrapped response. If none of the three signals has a receiver when a
    request arrives, the middleware steps aside for that request: the
    application's response is returned as is and nothing is sent, not even
    ``request_finished``.

    Raises:
        TypeError: ``app`` is not callable.

    .. versionadded:: 0.1
    """

    def __init__(self, app: WSGIApp, *, sender: Any = _UNSET) -> None:
        if not callable(app):
            raise TypeError(
                "RequestSignalsMiddleware wraps a WSGI application (a callable "
                f"taking environ and start_response), got {app!r}."
            )
        self.app = app
        self.sender = type(app) if sender is _UNSET else sender

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.app!r})"

    def __call__(
        self, environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        sender = self.sender
        if not (
            request_started.has_listeners(sender)
            or request_finished.has_listeners(sender)
            or got_request_exception.has_listeners(None)
        ):
            return self.app(environ, start_response)
        try:
            if request_started.has_listeners(sender):
                request_started.send(sender, environ=environ)
            try:
                iterable = self.app(environ, start_response)
            except Exception as error:
                _report_exception(environ, error)
                raise
        except BaseException:
            _send_finished(sender, environ)
            raise
        if hasattr(iterable, "__len__"):
            return _SizedResponse(iterable, sender, environ)
        return _Response(iterable, sender, environ)


class _Response:
    """The application's response, with ``close()`` sending request_finished."""

    __slots__ = ("_environ", "_finished", "_iterable", "_sender")

    def __init__(self, iterable: Iterable[bytes], sender: Any, environ: Environ):
        self._iterable = iterable
        self._sender = sender
        self._environ = environ
        self._finished = False

    def __iter__(self) -> Iterator[bytes]:
        # A for loop, not ``yield from``: closing this generator must not
        # close the application's iterator a second time.
        try:
            for chunk in self._iterable:  # noqa: UP028
                yield chunk
        except Exception as error:
            _report_exception(self._environ, error)
            raise

    def close(self) -> None:
        if self._finished:
            return
        self._finished = True
        try:
            close = getattr(self._iterable, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as error:
                    _report_exception(self._environ, error)
                    raise
        finally:
            _send_finished(self._sender, self._environ)


class _SizedResponse(_Response):
    """A response whose length the server may use (``len(body) == 1``)."""

    __slots__ = ()

    def __len__(self) -> int:
        return len(self._iterable)  # type: ignore[arg-type]


def _report_exception(environ: Environ, error: Exception) -> None:
    if got_request_exception.has_listeners(None):
        got_request_exception.send_robust(None, request=environ, exception=error)


def _send_finished(sender: Any, environ: Environ) -> None:
    if request_finished.has_listeners(sender):
        request_finished.send_robust(sender, environ=environ)
