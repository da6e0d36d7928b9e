"""The outbox: a table in the application's database that is the queue.

One row per durable receiver of a send, written in the sending transaction.
A row is ``pending`` (``attempts`` 0, or a retry waiting for
``available_at``), ``running`` (claimed by ``lease_owner`` until
``lease_expires_at``), ``done`` or ``dead``. Rows are never deleted by tocsin.
A broker transport records in ``published_at`` when it last sent the row's id;
``traceparent`` holds the sender's span (see :mod:`tocsin.durable.tracing`).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from . import _active
from ._active import DEAD, DONE, PENDING, RUNNING, active_outbox
from .transport import Transport

__all__ = [
    "DEAD",
    "DONE",
    "PENDING",
    "RUNNING",
    "Outbox",
    "active_outbox",
    "outbox_table",
]


def outbox_table(metadata: MetaData, name: str = "tocsin_outbox") -> Table:
    """Define the outbox table on ``metadata`` (so Alembic autogenerate sees it).

    .. versionadded:: 0.1
    """
    return Table(
        name,
        metadata,
        Column(
            "id",
            BigInteger().with_variant(Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        Column("event_id", String(36), nullable=False),
        Column("receiver", String(255), nullable=False),
        Column("queue", String(100), nullable=False),
        Column("payload", Text, nullable=False),
        Column("state", String(10), nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("max_attempts", Integer, nullable=False),
        # Times are seconds since the epoch: comparable the same way on every
        # database, and exact.
        Column("created_at", Float, nullable=False),
        Column("available_at", Float, nullable=False),
        Column("lease_owner", String(64)),
        Column("lease_expires_at", Float),
        Column("done_at", Float),
        Column("last_error", Text),
        # When a broker transport last published the row (the Celery relay);
        # the embedded worker leaves it empty.
        Column("published_at", Float),
        # The W3C traceparent of the sending span (tocsin.durable.tracing),
        # NULL without OpenTelemetry.
        Column("traceparent", String(55)),
        UniqueConstraint("event_id", "receiver", name=f"{name}_event_receiver"),
        # What a worker's claim reads: open rows of its queues, oldest first.
        Index(f"{name}_claim", "state", "queue", "available_at"),
    )


class Outbox:
    """The outbox of an application: its table, and the database the worker uses.

    Create it once, where the models are defined::

        outbox = Outbox(Base.metadata)

    The table joins ``metadata`` (``metadata.create_all()`` and Alembic see
    it; :meth:`create` makes it for an app without either). Creating an
    outbox makes it the active one: sends to durable receivers write to it.

    Args:
        metadata: The application's ``MetaData``; a private one by default.
        engine: The database that ``tocsin worker`` and :meth:`session` use;
            ``tocsin worker --database URL`` can give it instead.
        table_name: The name of the table.
        session_factory: Makes the sessions given to receivers as
            ``event.session``; by default ``Session(engine)``.
        transport: What carries events to the code that delivers them; by
            default the embedded workers of ``tocsin worker``.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        metadata: MetaData | None = None,
        *,
        engine: Engine | None = None,
        table_name: str = "tocsin_outbox",
        session_factory: Callable[[], Session] | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.metadata = MetaData() if metadata is None else metadata
        existing = self.metadata.tables.get(table_name)
        self.table = (
            existing
            if existing is not None
            else outbox_table(self.metadata, table_name)
        )
        self.engine = engine
        self._session_factory = session_factory
        if transport is None:
            from .worker import Embedded

            transport = Embedded()
        self.transport = transport
        self.activate()

    def activate(self) -> None:
        """Make sends to durable receivers write to this outbox."""
        _active.activate(self)

    def bind(self, engine: Engine) -> None:
        """Use ``engine`` for the worker and :meth:`session`."""
        self.engine = engine

    def require_engine(self) -> Engine:
        if self.engine is None:
            raise RuntimeError(
                f"{self!r} has no database: pass Outbox(..., engine=engine), or "
                "--database URL to the tocsin command."
            )
        return self.engine

    def create(self, engine: Engine | None = None) -> None:
        """Create the table if it does not exist, for apps without migrations."""
        self.table.create(engine or self.require_engine(), checkfirst=True)

    def session(self) -> Session:
        """A new session for a receiver's event (``event.session``)."""
        if self._session_factory is not None:
            return self._session_factory()
        return Session(self.require_engine())

    def __repr__(self) -> str:
        where = self.engine.url.render_as_string() if self.engine else "no database"
        return f"<tocsin.durable.Outbox {self.table.name} on {where}>"
