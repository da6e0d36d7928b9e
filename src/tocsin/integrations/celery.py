"""Durable receivers delivered by Celery workers: the outbox stays the truth.

One call binds an outbox to the application's Celery app::

    from tocsin.integrations.celery import bind
    transport = bind(celery_app, outbox)

and events travel this way:

1. a send writes its outbox rows in the sending transaction, as always;
2. the **relay** (``tocsin relay -A proj``, or :meth:`CeleryTransport.relay`
   as a thread) reads committed rows that are due and not yet published,
   publishes a message per row carrying only ``(row id, event id)``, and
   records ``published_at``;
3. a Celery worker (``celery -A proj worker``) runs the task ``tocsin.deliver``:
   it claims the row (a row already done is left alone, so a redelivered
   message does nothing; a row running under a live lease is looked at again
   when the lease lapses, which is how a killed pool child's event comes
   back), runs the receiver with
   ``event.session`` and marks the row done in the same transaction, with
   :func:`tocsin.durable.delivery.deliver`, the step every transport shares
   (with OpenTelemetry, under the sender's span: the row carries its
   ``traceparent``, never the message);
4. the relay is also the **reconciler**: a row published but still not done
   ``republish_after`` seconds later is published again. A message lost by
   the broker (Redis without fsync, a ``FLUSHALL``, a worker killed between
   receive and ack) delays its event; it never loses it.

Failures are retried by the outbox, not by Celery: a failed attempt puts the
row back to pending with its backoff, and the relay publishes it again when
it is due.

:func:`check_configuration` lists the Celery settings that lose messages; it
runs when a Celery worker starts (a worker with an unsafe configuration
refuses to start) and as ``tocsin check``.

This module is in the delivery layer (it builds on :mod:`tocsin.durable`),
although it lives beside the emitters. Needs ``pip install "tocsin[celery]"``.

.. versionadded:: 0.1
"""

from __future__ import annotations

from tocsin.integrations import require

require("celery", extra="celery", package="Celery")
require("sqlalchemy", extra="sqlalchemy", package="SQLAlchemy")

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from celery import Celery, signals
from sqlalchemy import and_, or_, select, update

from tocsin.durable import delivery
from tocsin.durable.outbox import RUNNING, Outbox
from tocsin.durable.transport import Settings, Transport

if TYPE_CHECKING:
    from celery import Task

__all__ = [
    "TASK_NAME",
    "CeleryTransport",
    "Relay",
    "UnsafeConfiguration",
    "bind",
    "check_configuration",
]

#: The name of the Celery task that delivers one outbox row.
TASK_NAME = "tocsin.deliver"

logger = logging.getLogger("tocsin.celery")


class UnsafeConfiguration(RuntimeError):
    """The Celery app is configured in a way that loses messages.

    .. versionadded:: 0.1
    """


class CeleryTransport(Transport):
    """Events published to Celery by a relay and delivered by Celery workers.

    Made by :func:`bind`; see the module's documentation.

    Attributes:
        app: The Celery app.
        task: The ``tocsin.deliver`` task registered on it.
        lease: Seconds a Celery worker holds a row it runs; also the task's
            hard time limit.
        republish_after: Seconds after which a row published but not done is
            published again.
        routes: Outbox queue (``Policy(queue=...)``) -> Celery queue.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        app: Celery,
        outbox: Outbox,
        *,
        lease: float,
        republish_after: float,
        routes: Mapping[str, str],
    ) -> None:
        self.app = app
        self.outbox = outbox
        self.lease = lease
        self.republish_after = republish_after
        self.routes = dict(routes)
        self.task = self._register()

    def celery_queue(self, queue: str) -> str:
        """The Celery queue of an outbox queue: its route, else the app's
        default queue for ``default``, else the same name."""
        if queue in self.routes:
            return self.routes[queue]
        if queue == "default":
            return str(self.app.conf.task_default_queue)
        return queue

    def serve(self, outbox: Outbox, settings: Settings, stop: threading.Event) -> None:
        raise RuntimeError(
            "the events of this outbox are delivered by Celery: run "
            "`celery -A <your app> worker` for the workers and "
            "`tocsin relay -A <your app>` to publish the events"
        )

    def relay(
        self,
        *,
        poll_interval: float = 0.2,
        batch: int = 100,
        queues: Sequence[str] | None = None,
    ) -> Relay:
        """A :class:`Relay` of this transport (``start()`` runs it in a thread)."""
        return Relay(self, poll_interval=poll_interval, batch=batch, queues=queues)

    def run(self, row_id: int, event_id: str) -> str:
        """Deliver outbox row ``row_id``: what the task does in the worker.

        Returns:
            The outcome of :func:`tocsin.durable.delivery.deliver`, or
            ``"skipped"`` when the row is not open (done, dead, running under
            another worker's live lease, or waiting for its backoff).
        """
        owner = delivery.new_owner()
        rows = delivery.claim(self.outbox, owner, lease=self.lease, ids=[row_id])
        if not rows:
            return "skipped"
        row = rows[0]
        if row.event_id != event_id:
            # The message names a row of another database (a reset, or two
            # apps sharing one broker): give the row back untouched.
            delivery.release(self.outbox, rows)
            logger.error(
                "tocsin.deliver: row %s holds event %s, not %s; message ignored",
                row_id,
                row.event_id,
                event_id,
            )
            return "skipped"
        return delivery.deliver(self.outbox, row)

    def lease_left(self, row_id: int) -> float | None:
        """Seconds until the lease of running row ``row_id`` lapses; ``None``
        when the row is not running under a live lease."""
        c = self.outbox.table.c
        with self.outbox.require_engine().connect() as connection:
            expires = connection.execute(
                select(c.lease_expires_at).where(c.id == row_id, c.state == RUNNING)
            ).scalar()
        left = None if expires is None else float(expires) - time.time()
        return left if left is not None and left > 0 else None

    def _register(self) -> Task:
        transport = self

        def deliver(task: Task, row_id: int, event_id: str) -> str:
            outcome = transport.run(row_id, event_id)
            if outcome == "skipped":
                left = transport.lease_left(row_id)
                if left is not None:
                    # Running under a lease: most often this message came back
                    # because the pool child running it was killed. Look again
                    # when the lease lapses rather than wait for the relay.
                    raise task.retry(countdown=left + 0.1, max_retries=None)
            return outcome

        # Late ack and reject-on-worker-lost: the message leaves the broker
        # only once the attempt is recorded in the database, and a pool child
        # killed mid-task puts it back. Failures are the outbox's to retry.
        task: Task = self.app.task(
            name=TASK_NAME,
            # This app's only: a shared task would join every Celery app
            # created later, bound to this outbox.
            shared=False,
            acks_late=True,
            reject_on_worker_lost=True,
            acks_on_failure_or_timeout=True,
            serializer="json",
            time_limit=self.lease,
            ignore_result=True,
            bind=True,
        )(deliver)
        return task


class Relay:
    """Publish committed outbox rows to Celery; republish the lost ones.

    Each pass publishes up to ``batch`` rows that a worker may take now and
    that were never published, were published before they last became due
    (a retry after its backoff), or were published more than
    ``republish_after`` seconds ago (the message was lost, or its worker
    died). Several relays may run: on PostgreSQL they skip each other's rows
    (``FOR UPDATE SKIP LOCKED``), and ``queues`` gives a relay the rows of
    those outbox queues only (by default every queue's), so that a busy
    queue can have relays of its own. A pass records ``published_at``, commits,
    then publishes: a relay killed in between leaves the rows to the
    reconciler (a later pass, after ``republish_after``), and a message
    published twice is ignored by the task once the row is done.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        transport: CeleryTransport,
        *,
        poll_interval: float,
        batch: int,
        queues: Sequence[str] | None = None,
    ) -> None:
        if poll_interval <= 0 or batch < 1:
            raise ValueError(
                f"poll_interval must be positive and batch at least 1, not "
                f"{poll_interval} and {batch}."
            )
        if queues is not None and (isinstance(queues, str) or not queues):
            raise ValueError(
                f"queues={queues!r}: a list of outbox queue names, or None for "
                "every queue."
            )
        self.transport = transport
        self.poll_interval = poll_interval
        self.batch = batch
        self.queues = None if queues is None else tuple(queues)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Publish what is due now; returns how many messages were sent."""
        transport = self.transport
        outbox = transport.outbox
        c = outbox.table.c
        now = time.time()
        mine = [] if self.queues is None else [c.queue.in_(self.queues)]
        unpublished = or_(
            c.published_at.is_(None),
            c.published_at < c.available_at,
            c.published_at < now - transport.republish_after,
        )
        chosen = (
            select(c.id, c.event_id, c.queue)
            .where(and_(delivery.open_rows(outbox, now), unpublished, *mine))
            .order_by(c.available_at)
            .limit(self.batch)
            .with_for_update(skip_locked=True)
        )
        delivery.retire_expired(outbox)
        engine = outbox.require_engine()
        stamp = time.time()
        with engine.begin() as connection:
            rows = connection.execute(chosen).all()
            if not rows:
                return 0
            ids = [row.id for row in rows]
            connection.execute(
                update(outbox.table).where(c.id.in_(ids)).values(published_at=stamp)
            )
        # Published once the mark is committed, never inside its transaction:
        # a worker quicker than the commit would find the row locked, skip
        # it, and leave it to the reconciler. A relay killed here leaves it
        # to the reconciler too (after republish_after).
        sent = 0
        try:
            with transport.app.producer_or_acquire() as producer:
                for row in rows:
                    transport.task.apply_async(
                        (row.id, row.event_id),
                        queue=transport.celery_queue(row.queue),
                        producer=producer,
                    )
                    sent += 1
        except Exception:
            # The broker is away: unmark what was not sent, so that the next
            # pass publishes it rather than the reconciler, much later.
            with engine.begin() as connection:
                connection.execute(
                    update(outbox.table)
                    .where(c.id.in_(ids[sent:]), c.published_at == stamp)
                    .values(published_at=None)
                )
            raise
        return len(rows)

    def run(self, stop: threading.Event | None = None) -> None:
        """Publish until ``stop`` (or :meth:`stop`) is set."""
        stop = stop or self._stop
        while not stop.is_set():
            try:
                published = self.run_once()
            except Exception as error:
                # The database or the broker is away: try again shortly;
                # nothing is lost, the rows wait in the outbox.
                logger.error("tocsin relay: %s", error)
                published = 0
            if published < self.batch:
                stop.wait(self.poll_interval)

    def start(self) -> None:
        """Run the relay in a daemon thread of this process."""
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run, name="tocsin-relay", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread started by :meth:`start` and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def bind(
    app: Celery,
    outbox: Outbox,
    *,
    lease: float = 300.0,
    republish_after: float | None = None,
    routes: Mapping[str, str] | None = None,
    check: bool = True,
) -> CeleryTransport:
    """Deliver the events of ``outbox`` with Celery app ``app``.

    Registers the task ``tocsin.deliver`` on ``app``, makes the Celery
    transport the outbox's, and (with ``check``) makes Celery workers of
    ``app`` refuse to start on an unsafe configuration
    (:func:`check_configuration`). Call it where the Celery app is created,
    in the module given to ``celery -A``.

    Args:
        app: The application's Celery app.
        outbox: The outbox, with its engine (the workers use it).
        lease: Seconds a worker holds a row while its receiver runs, and the
            task's hard time limit: longer than the slowest receiver.
        republish_after: Seconds after which a row published but not done is
            published again (a lost message); by default twice ``lease``.
        routes: Outbox queue -> Celery queue. By default the outbox queue
            ``default`` goes to the app's default queue (``celery``) and any
            other queue to the Celery queue of the same name (serve it with
            ``celery -A proj worker -Q celery,mail``).
        check: Check the configuration when a worker starts.

    Returns:
        The transport; ``transport.relay().start()`` runs a relay thread.

    .. versionadded:: 0.1
    """
    if lease <= 0:
        raise ValueError(f"lease={lease}: a positive number of seconds.")
    if republish_after is None:
        republish_after = 2 * lease
    if republish_after <= 0:
        raise ValueError(
            f"republish_after={republish_after}: a positive number of seconds."
        )
    transport = CeleryTransport(
        app, outbox, lease=lease, republish_after=republish_after, routes=routes or {}
    )
    outbox.transport = transport
    if check:
        _refuse_unsafe_workers(app)
    _fresh_connections_after_fork(outbox)
    return transport


def _fresh_connections_after_fork(outbox: Outbox) -> None:
    def on_process_init(**kwargs: Any) -> None:
        # A prefork child must not use connections its parent opened (two
        # processes on one socket): forget them without closing them.
        if outbox.engine is not None:
            outbox.engine.dispose(close=False)

    signals.worker_process_init.connect(on_process_init, weak=False)


def _refuse_unsafe_workers(app: Celery) -> None:
    def on_worker_init(sender: Any = None, **kwargs: Any) -> None:
        worker_app = getattr(sender, "app", None)
        if worker_app is not app:
            return
        problems = check_configuration(app)
        if problems:
            # Celery logs (and swallows) exceptions of signal receivers: a
            # SystemExit is what stops the worker from starting.
            message = "tocsin: this Celery configuration loses events:\n" + "\n".join(
                f"  - {problem}" for problem in problems
            )
            logger.critical(message)
            raise SystemExit(message)

    signals.worker_init.connect(on_worker_init, weak=False)


#: Pickle by its name and by its content type.
_PICKLE = {"pickle", "application/x-python-serialize"}
_REDIS_SCHEMES = ("redis://", "rediss://", "redis+socket://", "sentinel://")


def check_configuration(app: Celery) -> list[str]:
    """The settings of ``app`` that lose durable events; empty when safe.

    Each problem names the setting and how to fix it: the ``tocsin.deliver``
    task without late acknowledgement or without reject-on-worker-lost (a
    ``task_annotations`` entry can turn them off), ``pickle`` accepted (a
    message could run code on the worker), an ``sqla+`` broker (kombu's
    database transport loses in-flight tasks), and a Redis visibility timeout
    shorter than twice the longest task time limit (Redis would deliver a
    task again while it still runs).

    .. versionadded:: 0.1
    """
    problems = []
    conf = app.conf
    task = app.tasks.get(TASK_NAME)
    if task is None:
        problems.append(
            f"the task {TASK_NAME} is not registered: call "
            "tocsin.integrations.celery.bind(app, outbox) in the module given to -A"
        )
    else:
        if not task.acks_late:
            problems.append(
                f"{TASK_NAME} runs without late acknowledgement (acks_late is "
                "off, by task_annotations or the task): a worker killed mid-task "
                "loses its message; remove the override"
            )
        if not task.reject_on_worker_lost:
            problems.append(
                f"{TASK_NAME} runs without reject-on-worker-lost "
                "(reject_on_worker_lost is off, by task_annotations or the task): "
                "a pool child killed mid-task acknowledges its message; remove "
                "the override"
            )
    accepted = {str(kind).lower() for kind in conf.accept_content or ()}
    accepted |= {str(kind).lower() for kind in conf.result_accept_content or ()}
    if accepted & _PICKLE:
        problems.append(
            "pickle is accepted (accept_content or result_accept_content): "
            "unpickling a message runs code; accept only json"
        )
    broker = str(conf.broker_url or "")
    if broker.startswith("sqla+"):
        problems.append(
            f"the broker {broker.split('://')[0]}:// is kombu's database "
            "transport, which loses in-flight tasks and has no visibility "
            "timeout: use Redis or RabbitMQ"
        )
    if broker.startswith(_REDIS_SCHEMES):
        options = conf.broker_transport_options or {}
        timeout = float(options.get("visibility_timeout", 3600))
        longest, name = _longest_time_limit(app)
        if longest is not None and timeout < 2 * longest:
            problems.append(
                f"the Redis visibility timeout ({timeout:g} s, "
                "broker_transport_options['visibility_timeout']) is shorter "
                f"than twice the longest task time limit ({longest:g} s, "
                f"{name}): Redis would hand a running task to a second "
                f"worker; set it to at least {2 * longest:g}"
            )
    return problems


def _longest_time_limit(app: Celery) -> tuple[float | None, str]:
    default = app.conf.task_time_limit
    longest: float | None = None
    where = ""
    for name, task in app.tasks.items():
        limit = task.time_limit if task.time_limit is not None else default
        if limit is not None and (longest is None or float(limit) > longest):
            longest, where = float(limit), name
    return longest, where
