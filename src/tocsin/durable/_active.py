"""The states of an outbox row, and the outbox that sends write to.

Kept apart from :mod:`.outbox` so that the connect option and the delivery
step, which the outbox's worker imports, can read them without importing the
outbox module (which would make an import cycle).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .outbox import Outbox

__all__ = ["DEAD", "DONE", "PENDING", "RUNNING", "activate", "active_outbox"]

PENDING = "pending"
RUNNING = "running"
DONE = "done"
DEAD = "dead"

_active: Outbox | None = None
_lock = threading.Lock()


def activate(outbox: Outbox) -> None:
    """Make sends to durable receivers write to ``outbox``."""
    global _active
    with _lock:
        _active = outbox


def active_outbox() -> Outbox:
    """The outbox that sends write to: the last one created or activated.

    Raises:
        RuntimeError: No outbox was created.

    .. versionadded:: 0.1
    """
    outbox = _active
    if outbox is None:
        raise RuntimeError(
            "A durable receiver was sent to, but there is no outbox: create one "
            "with tocsin.durable.Outbox(Base.metadata) where your models are "
            "defined, and create its table (Outbox.create() or a migration)."
        )
    return outbox
