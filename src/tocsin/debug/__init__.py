"""Debug tools: a live, per-request timeline of the signals sent.

:class:`TimelineMiddleware` (ASGI) and :class:`TimelineWSGIMiddleware` record,
for each request, every dispatch and receiver (timing, nesting, on-commit
scheduling and run, errors) through :func:`tocsin.observe`, and serve the
recent requests as pages under ``/_tocsin/``. See docs/timeline.md.

Where things are: ``_recorder`` (the observer and the rows it keeps),
``_pages`` (HTML and JSON), ``_middleware`` (ASGI and WSGI).

.. versionadded:: 0.1
"""

from ._middleware import TimelineMiddleware, TimelineWSGIMiddleware, loopback_only
from ._recorder import Recorder, RequestTrace, current_trace

__all__ = [
    "Recorder",
    "RequestTrace",
    "TimelineMiddleware",
    "TimelineWSGIMiddleware",
    "current_trace",
    "loopback_only",
]
