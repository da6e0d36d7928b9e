"""Durable receivers: a committed event is never lost.

``@receiver(post_save, sender=User, durable=True)`` turns a receiver into an
outbox row written in the sender's transaction; a worker (``tocsin worker``)
delivers it after the commit, retries it with backoff, and keeps it as
*dead*, with its error, when it runs out of attempts. See ``docs/durable.md``.

Importing this module registers the ``durable=`` connect option; it needs the
``sqlalchemy`` extra.

.. versionadded:: 0.1
"""

from __future__ import annotations

from tocsin.integrations import require

require("sqlalchemy", extra="sqlalchemy", package="SQLAlchemy")

from .admin import DeadEvent, Status, dead, replay, status  # noqa: E402
from .event import Event  # noqa: E402
from .option import DurableError  # noqa: E402
from .outbox import Outbox, active_outbox, outbox_table  # noqa: E402
from .payload import PayloadError  # noqa: E402
from .policy import Backoff, Policy  # noqa: E402
from .transport import Settings, Transport  # noqa: E402
from .worker import Embedded, Worker  # noqa: E402

__all__ = [
    "Backoff",
    "DeadEvent",
    "DurableError",
    "Embedded",
    "Event",
    "Outbox",
    "PayloadError",
    "Policy",
    "Settings",
    "Status",
    "Transport",
    "Worker",
    "active_outbox",
    "dead",
    "outbox_table",
    "replay",
    "status",
]

# Show the public names as ``tocsin.durable.Outbox``, where users import them.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("tocsin.durable."):
        _obj.__module__ = __name__
del _name, _obj
