"""The embedded worker: threads that claim outbox rows and deliver them.

No server: the outbox table is the queue. Each thread claims one row at a
time, delivers it (:func:`tocsin.durable.delivery.deliver`) and claims the
next; an idle thread sleeps ``poll_interval`` seconds between looks, or less
when PostgreSQL notifies a commit (``LISTEN``; polling stays the safety net,
since a notification can be missed while reconnecting).

Run it as ``tocsin worker -A app.module`` or, in development and tests, in
the application's own process::

    worker = Worker(outbox)
    worker.start()
    ...
    worker.stop()
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import Insert, Table, bindparam, func, insert, select
from sqlalchemy import inspect as sa_inspect

from . import delivery
from .transport import Settings, Transport

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from .outbox import Outbox

__all__ = ["Embedded", "Worker"]

logger = logging.getLogger("tocsin.durable")

CHANNEL = "tocsin_outbox"
_NOTIFIED = "tocsin.durable.notified"


class Embedded(Transport):
    """The default transport: workers that read the outbox table.

    .. versionadded:: 0.1
    """

    def write(self, session: Session, outbox: Outbox, row: dict[str, Any]) -> None:
        connection = session.connection()
        # Per savepoint too: a rolled-back savepoint takes its NOTIFY along.
        current = session.get_nested_transaction() or session.get_transaction()
        if (
            connection.dialect.name != "postgresql"
            or session.info.get(_NOTIFIED) is current
        ):
            super().write(session, outbox, row)
            return
        # The transaction's first row also wakes the workers: PostgreSQL
        # delivers the NOTIFY at commit, and drops it on rollback. One
        # statement, so that it costs the sender no extra round trip.
        session.info[_NOTIFIED] = current
        connection.execute(_insert_and_notify(outbox.table, tuple(row)), row)

    def serve(self, outbox: Outbox, settings: Settings, stop: threading.Event) -> None:
        worker = Worker(outbox, settings)
        worker.start()
        stop.wait()
        worker.stop()


@functools.cache
def _insert_and_notify(table: Table, columns: tuple[str, ...]) -> Insert:
    values = select(*[bindparam(name, type_=table.c[name].type) for name in columns])
    return insert(table).from_select(
        list(columns), values.select_from(func.pg_notify(CHANNEL, ""))
    )


class Worker:
    """Deliver the events of an outbox from threads of this process.

    Args:
        outbox: The outbox, with its engine.
        settings: Queues, concurrency, lease and polling interval.

    .. versionadded:: 0.1
    """

    def __init__(self, outbox: Outbox, settings: Settings | None = None) -> None:
        self.outbox = outbox
        self.settings = settings or Settings()
        self.listening = threading.Event()
        """Set while the PostgreSQL listener is subscribed (``LISTEN``)."""
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._threads: list[threading.Thread] = []
        outbox.require_engine()

    def start(self) -> None:
        """Start the delivering threads (and the listener, on PostgreSQL).

        Raises:
            RuntimeError: The outbox table does not exist.
        """
        engine = self.outbox.require_engine()
        table = self.outbox.table
        if not sa_inspect(engine).has_table(table.name, schema=table.schema):
            raise RuntimeError(
                f"The table {table.name} does not exist in "
                f"{engine.url.render_as_string()}: create it with a migration, "
                "Outbox.create(), or `tocsin outbox create`."
            )
        self._stop.clear()
        for number in range(self.settings.concurrency):
            thread = threading.Thread(
                target=self._run, name=f"tocsin-worker-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
            listener = threading.Thread(
                target=self._listen, name="tocsin-listener", daemon=True
            )
            listener.start()
            self._threads.append(listener)

    def stop(self, timeout: float | None = None) -> bool:
        """Stop claiming; wait for the events being delivered to finish.

        Returns:
            ``True`` if every thread finished within ``timeout``. Events of a
            thread still running are delivered when it finishes, or taken
            over by another worker once their lease lapses.
        """
        self._stop.set()
        self.wake()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)
        alive = [thread for thread in self._threads if thread.is_alive()]
        self._threads = alive
        return not alive

    def wake(self) -> None:
        """Make idle threads look at the outbox now."""
        with self._wake:
            self._wake.notify_all()

    def run_once(self) -> int:
        """Deliver what is due now, in this thread; return how many events."""
        done = 0
        while True:
            rows = self._claim()
            if not rows:
                return done
            for row in rows:
                delivery.deliver(self.outbox, row)
                done += 1

    def __enter__(self) -> Worker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _claim(self) -> list[delivery.Claimed]:
        return delivery.claim(
            self.outbox,
            delivery.new_owner(),
            lease=self.settings.lease,
            queues=self.settings.queues,
            limit=self.settings.prefetch,
        )

    def _deliver(self, rows: list[delivery.Claimed]) -> None:
        for index, row in enumerate(rows):
            if self._stop.is_set():
                delivery.release(self.outbox, rows[index:])
                return
            if time.time() > row.lease_expires_at - self.settings.lease / 10:
                # Its lease (nearly) lapsed while earlier events ran: leave it
                # to whoever takes it next rather than race them.
                continue
            delivery.deliver(self.outbox, row)

    def _run(self) -> None:
        last_sweep = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() - last_sweep > self.settings.lease / 2:
                    last_sweep = time.monotonic()
                    delivery.retire_expired(self.outbox)
                rows = self._claim()
                self._deliver(rows)
            except Exception as error:
                # The database is unreachable or restarting: wait and retry;
                # what this thread held comes back when its lease lapses.
                logger.error("tocsin worker: the outbox could not be read: %s", error)
                rows = []
            if not rows:
                with self._wake:
                    if not self._stop.is_set():
                        self._wake.wait(self.settings.poll_interval)

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                raw: Any = self.outbox.require_engine().raw_connection()
                try:
                    connection = raw.driver_connection
                    connection.autocommit = True
                    connection.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    while not self._stop.is_set():
                        for _ in connection.notifies(timeout=0.5, stop_after=1):
                            self.wake()
                finally:
                    self.listening.clear()
                    raw.invalidate()
            except Exception:
                logger.exception("tocsin worker: LISTEN failed; polling only")
                self._stop.wait(self.settings.poll_interval)
