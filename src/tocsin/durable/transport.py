"""The seam between the outbox and what delivers its events.

The outbox is the source of truth whatever the transport: a send writes the
rows, and the transport only carries the news. A transport

- writes each row in the sending transaction and announces it
  (:meth:`Transport.write`): the embedded transport sends a PostgreSQL
  ``NOTIFY`` with the transaction's first row, which PostgreSQL delivers only
  if the transaction commits; a broker transport would publish the row's id
  once the transaction commits;
- serves events until told to stop (:meth:`Transport.serve`), delivering each
  with :func:`tocsin.durable.delivery.deliver`, which runs the receiver and
  marks the row done in one transaction.

The embedded transport (:class:`tocsin.durable.worker.Embedded`) needs no
server: its workers claim rows from the table.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from .outbox import Outbox

__all__ = ["Settings", "Transport"]


@dataclass(frozen=True)
class Settings:
    """What ``tocsin worker`` asks of a transport.

    Args:
        queues: The queues to serve; ``None`` serves every queue.
        concurrency: Events delivered at the same time (threads).
        lease: Seconds a claimed event stays with its worker; past them
            another worker may take it over (the first one can no longer
            mark it done). Longer than the slowest receiver.
        poll_interval: Seconds between two looks at an idle outbox.
        prefetch: Events each thread claims at once (one claim, one commit);
            more delivers faster, but an event waits in its thread's hand
            while the ones before it run, within its lease.

    .. versionadded:: 0.1
    """

    queues: tuple[str, ...] | None = None
    concurrency: int = 1
    lease: float = 60.0
    poll_interval: float = 0.5
    prefetch: int = 1

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.prefetch < 1:
            raise ValueError(
                f"concurrency and prefetch must be at least 1, not "
                f"{self.concurrency} and {self.prefetch}."
            )
        if self.lease <= 0 or self.poll_interval <= 0:
            raise ValueError("lease and poll_interval are positive numbers of seconds.")


class Transport(ABC):
    """How events travel from the outbox to the code that delivers them.

    .. versionadded:: 0.1
    """

    def write(self, session: Session, outbox: Outbox, row: dict[str, Any]) -> None:
        """Insert one outbox row on the connection of ``session``'s transaction.

        The default only inserts: workers find the row when they next poll.
        Override it to also tell the consumers, in or after the transaction.
        """
        session.connection().execute(insert(outbox.table), row)

    @abstractmethod
    def serve(self, outbox: Outbox, settings: Settings, stop: threading.Event) -> None:
        """Deliver events of ``outbox`` until ``stop`` is set, then return.

        On return nothing may be left half-done: every event taken is either
        delivered or given back (its lease lapses at the latest).
        """
