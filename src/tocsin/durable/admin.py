"""Inspect the outbox and replay dead events: ``tocsin outbox`` as functions."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, select, update

from .outbox import DEAD, DONE, PENDING, RUNNING, Outbox

__all__ = ["DeadEvent", "Status", "dead", "replay", "status"]


@dataclass(frozen=True)
class Status:
    """How many events are in each state.

    Attributes:
        pending: Never attempted yet.
        retrying: Failed at least once, waiting for their next attempt.
        running: Held by a worker now.
        done: Delivered.
        dead: Out of attempts, or undeliverable; see :func:`dead`.
        oldest_pending_age: Seconds since the oldest pending or retrying event
            was written (``None`` when there is none).

    .. versionadded:: 0.1
    """

    pending: int
    retrying: int
    running: int
    done: int
    dead: int
    oldest_pending_age: float | None


@dataclass(frozen=True)
class DeadEvent:
    """A dead event and why it died.

    .. versionadded:: 0.1
    """

    row: int
    event_id: str
    receiver: str
    queue: str
    attempts: int
    created_at: float
    died_at: float | None
    last_error: str


def status(outbox: Outbox) -> Status:
    """Count the events of ``outbox`` by state.

    .. versionadded:: 0.1
    """
    c = outbox.table.c
    tried = case((c.attempts > 0, 1), else_=0).label("tried")
    kind = select(c.state, tried, func.count(), func.min(c.created_at)).group_by(
        c.state, tried
    )
    counts = {PENDING: 0, "retrying": 0, RUNNING: 0, DONE: 0, DEAD: 0}
    oldest: float | None = None
    with outbox.require_engine().connect() as connection:
        for state, tried, count, first in connection.execute(kind):
            key = "retrying" if state == PENDING and tried else state
            counts[key] = counts.get(key, 0) + count
            if state == PENDING and (oldest is None or first < oldest):
                oldest = first
    return Status(
        pending=counts[PENDING],
        retrying=counts["retrying"],
        running=counts[RUNNING],
        done=counts[DONE],
        dead=counts[DEAD],
        oldest_pending_age=None if oldest is None else max(0.0, time.time() - oldest),
    )


def dead(outbox: Outbox, limit: int | None = None) -> list[DeadEvent]:
    """The dead events of ``outbox``, oldest first, with their last error.

    .. versionadded:: 0.1
    """
    c = outbox.table.c
    query = (
        select(
            c.id,
            c.event_id,
            c.receiver,
            c.queue,
            c.attempts,
            c.created_at,
            c.done_at,
            c.last_error,
        )
        .where(c.state == DEAD)
        .order_by(c.id)
        .limit(limit)
    )
    with outbox.require_engine().connect() as connection:
        return [
            DeadEvent(*row[:-1], last_error=row[-1] or "")
            for row in connection.execute(query)
        ]


def replay(outbox: Outbox, rows: list[int] | None = None) -> int:
    """Give dead events a fresh set of attempts; all of them by default.

    Args:
        rows: The outbox row ids of the events to replay (as listed by
            :func:`dead`); ``None`` replays every dead event.

    Returns:
        How many events are pending again.

    Raises:
        LookupError: A row in ``rows`` does not exist or is not dead.

    .. versionadded:: 0.1
    """
    c = outbox.table.c
    where: Any = c.state == DEAD
    if rows is not None:
        where = and_(where, c.id.in_(rows))
    with outbox.require_engine().begin() as connection:
        if rows is not None:
            found = set(connection.execute(select(c.id).where(where)).scalars())
            missing = sorted(set(rows) - found)
            if missing:
                raise LookupError(
                    f"No dead event with row id {', '.join(map(str, missing))} in "
                    f"{outbox.table.name}: `tocsin outbox dead` lists them."
                )
        result = connection.execute(
            update(outbox.table)
            .where(where)
            .values(
                state=PENDING,
                attempts=0,
                available_at=time.time(),
                done_at=None,
                lease_owner=None,
                lease_expires_at=None,
            )
        )
        return int(result.rowcount)
