"""What a durable receiver gets as ``event=``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["Event"]


@dataclass(frozen=True)
class Event:
    """One delivery of one send to one durable receiver.

    A worker passes it to the receiver as ``event=``, with the signal's own
    arguments.

    Attributes:
        id: The event's id, shared by the durable receivers of one send.
        row: The id of the outbox row (one per durable receiver of a send).
        receiver: The receiver's name in the outbox.
        queue: The queue of the event.
        attempt: 1 for the first delivery, 2 for the first retry, and so on
            (a worker killed while running the receiver also counts).
        idempotency_key: Unique per event and receiver and the same on every
            attempt: pass it to external services that deduplicate.
        session: A SQLAlchemy session in the worker's transaction. Writes
            made through it commit together with the event's "done" mark,
            or not at all: a redelivered event never applies them twice.
        created_at: When the sending transaction wrote the event (seconds
            since the epoch).

    .. versionadded:: 0.1
    """

    id: str
    row: int
    receiver: str
    queue: str
    attempt: int
    idempotency_key: str
    session: Session
    created_at: float
