"""Claim an event, run its receiver, record the outcome: the step every transport shares.

- :func:`claim` takes open rows with a lease, in one statement:
  ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING`` on
  PostgreSQL, where concurrent claims skip each other's rows; on SQLite the
  same ``UPDATE ... RETURNING`` (SQLite 3.35+) takes the database's write lock
  before it reads, so two claims never see the same row open. Rows are found
  by state, never by "id greater than the last seen": ids commit out of order.
- :func:`deliver` runs the receiver (under the sending span's trace context,
  :mod:`tocsin.durable.tracing`) with a session of its own transaction and,
  in that transaction, marks the row done only if this worker still holds its
  lease (fencing): a worker whose lease lapsed rolls back, and the receiver's
  database writes are never applied twice.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, or_, select, update

from .. import _observe
from . import payload, tracing
from ._active import DEAD, DONE, PENDING, RUNNING
from .event import Event
from .option import Binding, binding
from .policy import Policy

if TYPE_CHECKING:
    from .outbox import Outbox

__all__ = [
    "EVENT_KEY",
    "Claimed",
    "claim",
    "deliver",
    "open_rows",
    "release",
    "retire_expired",
]

#: ``event.session.info[EVENT_KEY]`` is the event being delivered, for
#: session listeners that must tell a worker's transaction from others.
EVENT_KEY = "tocsin.durable.event"

logger = logging.getLogger("tocsin.durable")


@dataclass(frozen=True)
class Claimed:
    """A row taken by a worker: what :func:`deliver` needs."""

    id: int
    event_id: str
    receiver: str
    queue: str
    payload: str
    attempts: int
    max_attempts: int
    created_at: float
    owner: str
    lease_expires_at: float
    traceparent: str | None = None


def new_owner() -> str:
    """A lease owner's id, unique to one worker thread's claim."""
    return uuid.uuid4().hex


def claim(
    outbox: Outbox,
    owner: str,
    *,
    lease: float,
    queues: Sequence[str] | None = None,
    limit: int = 1,
    ids: Sequence[int] | None = None,
) -> list[Claimed]:
    """Take up to ``limit`` open rows for ``lease`` seconds.

    Open rows are pending ones whose time has come, and running ones whose
    lease has lapsed (their worker died) with attempts left. ``ids`` narrows
    the claim to those rows (a broker message names its row): a row that is
    done, or running under a live lease, is not taken again.
    """
    now = time.time()
    c = outbox.table.c
    due = open_rows(outbox, now)
    if queues is not None:
        due = and_(due, c.queue.in_(list(queues)))
    if ids is not None:
        due = and_(due, c.id.in_(list(ids)))
    chosen = (
        select(c.id)
        .where(due)
        .order_by(c.available_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(outbox.table)
        .where(c.id.in_(chosen.scalar_subquery()))
        .values(
            state=RUNNING,
            attempts=c.attempts + 1,
            lease_owner=owner,
            lease_expires_at=now + lease,
        )
        .returning(
            c.id,
            c.event_id,
            c.receiver,
            c.queue,
            c.payload,
            c.attempts,
            c.max_attempts,
            c.created_at,
            c.traceparent,
        )
    )
    with outbox.require_engine().begin() as connection:
        rows = connection.execute(statement).all()
    return [
        Claimed(**row._asdict(), owner=owner, lease_expires_at=now + lease)
        for row in rows
    ]


def open_rows(outbox: Outbox, now: float) -> ColumnElement[bool]:
    """The condition of rows a worker may take at ``now``: pending ones whose
    time has come, and running ones whose lease lapsed with attempts left."""
    c = outbox.table.c
    return or_(
        and_(c.state == PENDING, c.available_at <= now),
        and_(
            c.state == RUNNING,
            c.lease_expires_at < now,
            c.attempts < c.max_attempts,
        ),
    )


def release(outbox: Outbox, rows: Sequence[Claimed]) -> int:
    """Give back claimed rows that were not started; returns how many.

    Their attempt is not counted, and another worker may take them at once.
    """
    if not rows:
        return 0
    c = outbox.table.c
    with outbox.require_engine().begin() as connection:
        result = connection.execute(
            update(outbox.table)
            .where(
                c.id.in_([row.id for row in rows]),
                c.lease_owner == rows[0].owner,
                c.state == RUNNING,
            )
            .values(
                state=PENDING,
                attempts=c.attempts - 1,
                lease_owner=None,
                lease_expires_at=None,
            )
        )
        return int(result.rowcount)


def retire_expired(outbox: Outbox) -> int:
    """Dead-letter running rows whose lease lapsed on their last attempt.

    Their worker stopped (killed, or lost its database) on every attempt.
    Returns how many rows died.
    """
    c = outbox.table.c
    now = time.time()
    with outbox.require_engine().begin() as connection:
        result = connection.execute(
            update(outbox.table)
            .where(
                c.state == RUNNING,
                c.lease_expires_at < now,
                c.attempts >= c.max_attempts,
            )
            .values(
                state=DEAD,
                lease_owner=None,
                done_at=now,
                last_error="the worker running this event stopped before it "
                "finished, on each of its attempts (lease expired)",
            )
        )
        return int(result.rowcount)


class _Undeliverable(Exception):
    """The event can never be delivered as it is: dead-letter it at once."""


def deliver(outbox: Outbox, row: Claimed) -> str:
    """Run the receiver of ``row`` and record the outcome.

    Returns:
        ``"done"``, ``"retry"``, ``"dead"``, or ``"lost"`` when this worker
        no longer held the lease (another worker has the event; nothing of
        this run was kept).
    """
    found = binding(row.receiver)
    session = outbox.session()
    try:
        with session:
            event = Event(
                id=row.event_id,
                row=row.id,
                receiver=row.receiver,
                queue=row.queue,
                attempt=row.attempts,
                idempotency_key=str(uuid.uuid5(uuid.UUID(row.event_id), row.receiver)),
                session=session,
                created_at=row.created_at,
            )
            session.info[EVENT_KEY] = event
            try:
                if found is None:
                    raise _Undeliverable(_missing(row.receiver))
                try:
                    sender, named = payload.decode(row.payload, session)
                except LookupError as error:
                    raise _Undeliverable(str(error)) from None
                # Under the sender's span, reported to observers as a
                # dispatch of its own: its span joins the sender's trace.
                with tracing.restored(row.traceparent):
                    result = _observe.run_elsewhere(
                        found.signal,
                        sender,
                        {**named, "event": event},
                        found.receiver,
                        "durable",
                    )
                    if inspect.isawaitable(result):
                        asyncio.run(_wait(result))
                session.flush()
                if not _finish(session, outbox, row, DONE, None, time.time()):
                    session.rollback()
                    logger.warning(
                        "Event %s (row %s) for %s: the lease lapsed while the "
                        "receiver ran; another worker has it, this run was rolled back",
                        row.event_id,
                        row.id,
                        row.receiver,
                    )
                    return "lost"
                session.commit()
                return DONE
            except _Undeliverable as error:
                session.rollback()
                return _fail(outbox, row, str(error), dead=True)
            except Exception as error:
                session.rollback()
                return _fail(outbox, row, _format(error), dead=False, found=found)
    finally:
        session.close()


async def _wait(awaitable: Any) -> Any:
    return await awaitable


def _missing(name: str) -> str:
    module = name.partition(":")[0] if ":" in name else ""
    hint = ""
    if module:
        try:
            payload.resolve(name)
            hint = (
                " The function exists but is not connected with durable=True "
                "in this worker: the app given to -A must import the module "
                "that connects it."
            )
        except LookupError as error:
            hint = f" ({error})"
    return (
        f"no durable receiver named {name!r} is connected in this worker: it was "
        f"removed or renamed since the event was written.{hint}"
    )


def _format(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)).strip()[-4000:]


def _finish(
    session: Any,
    outbox: Outbox,
    row: Claimed,
    state: str,
    error: str | None,
    now: float,
) -> bool:
    c = outbox.table.c
    result = session.connection().execute(
        update(outbox.table)
        .where(c.id == row.id, c.lease_owner == row.owner, c.state == RUNNING)
        .values(state=state, lease_owner=None, done_at=now, last_error=error)
    )
    return bool(result.rowcount == 1)


def _fail(
    outbox: Outbox,
    row: Claimed,
    error: str,
    *,
    dead: bool,
    found: Binding | None = None,
) -> str:
    now = time.time()
    last = dead or row.attempts >= row.max_attempts
    rule = found.policy if found is not None else Policy()
    delay = 0.0 if last else max(0.0, float(rule.backoff(row.attempts)))
    c = outbox.table.c
    with outbox.require_engine().begin() as connection:
        result = connection.execute(
            update(outbox.table)
            .where(c.id == row.id, c.lease_owner == row.owner, c.state == RUNNING)
            .values(
                state=DEAD if last else PENDING,
                lease_owner=None,
                lease_expires_at=None,
                available_at=now + delay,
                done_at=now if last else None,
                last_error=error,
            )
        )
    if result.rowcount != 1:
        return "lost"
    outcome = DEAD if last else "retry"
    log = logger.error if last else logger.warning
    log(
        "Event %s (row %s) for %s failed on attempt %s of %s%s: %s",
        row.event_id,
        row.id,
        row.receiver,
        row.attempts,
        row.max_attempts,
        "; it is dead (tocsin outbox replay retries it)"
        if last
        else f"; retry in {delay:.1f} s",
        error.splitlines()[-1] if error else "",
    )
    return outcome
