"""AsyncSession: async receivers are awaited on the session's own event loop.

Inside an AsyncSession operation this thread's event loop is running, and the
core refuses to block it (``send()`` there would raise). Synchronous code that
SQLAlchemy runs in its greenlet can await on that loop, though: this bridge
lets the core await async receivers (and async on-commit callbacks) there.
"""

from __future__ import annotations

from ... import _async
from . import _compat

__all__: list[str] = []

awaiter = _compat.greenlet_awaiter()
_async.register_bridge(awaiter)
