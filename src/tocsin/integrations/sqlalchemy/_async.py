"""AsyncSession: async receivers are awaited on the session's own event loop.

Inside an AsyncSession operation this thread's event loop is running, so the
core would run async receivers on a helper thread's loop, where they could
not use the session's connection. Await them on the session's own loop
instead, from inside SQLAlchemy's greenlet.
"""

from __future__ import annotations

from ... import _signal
from . import _compat

__all__: list[str] = []

awaiter = _compat.greenlet_awaiter()
_signal.register_async_bridge(awaiter)
