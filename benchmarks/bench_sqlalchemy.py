"""SQLAlchemy model signals: what installing them costs a flush and a load.

Two identical models on two in-memory SQLite engines: one on a declarative
base given to ``tocsin.integrations.sqlalchemy.install``, the other on a base
that is not, which is plain SQLAlchemy. Run alone with
``python -m benchmarks --only sqlalchemy --no-write``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import String, create_engine, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from ._harness import (
    format_time,
    goal_line,
    markdown_table,
    measure,
    ratio,
)

FLUSH_ROWS = 1_000
LOAD_ROWS = 10_000


def _model(base: type[Any]) -> type[Any]:
    class Item(base):  # type: ignore[misc, valid-type]
        __tablename__ = "items"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(40))
        email: Mapped[str | None] = mapped_column(String(40))
        score: Mapped[int] = mapped_column(default=0)

    return Item


def _setup() -> tuple[Engine, type[Any], Engine, type[Any]]:
    import tocsin.integrations.sqlalchemy as tocsin_sa

    class PlainBase(DeclarativeBase):
        pass

    class SignalBase(DeclarativeBase):
        pass

    tocsin_sa.install(SignalBase)
    plain_model, signal_model = _model(PlainBase), _model(SignalBase)
    plain_engine, signal_engine = create_engine("sqlite://"), create_engine("sqlite://")
    PlainBase.metadata.create_all(plain_engine)
    SignalBase.metadata.create_all(signal_engine)
    for engine, model in ((plain_engine, plain_model), (signal_engine, signal_model)):
        with Session(engine) as session:
            session.add_all(
                model(name=f"n{i}", email=f"{i}@example.org", score=i)
                for i in range(LOAD_ROWS)
            )
            session.commit()
    return plain_engine, plain_model, signal_engine, signal_model


def _flush(engine: Engine, model: type[Any]) -> Callable[[], None]:
    names = [f"new{i}" for i in range(FLUSH_ROWS)]

    def flush() -> None:
        with Session(engine) as session:
            session.add_all([model(name=name, email=None) for name in names])
            session.flush()
            session.rollback()

    return flush


def _update(engine: Engine, model: type[Any]) -> Callable[[], None]:
    query = select(model).where(model.id <= FLUSH_ROWS)

    def update() -> None:
        with Session(engine) as session:
            for item in session.scalars(query):
                item.email = "changed@example.org"
            session.flush()
            session.rollback()

    return update


def _load(engine: Engine, model: type[Any]) -> Callable[[], None]:
    query = select(model)

    def load() -> None:
        with Session(engine) as session:
            rows = session.scalars(query).all()
            assert len(rows) == LOAD_ROWS

    return load


def _receiver(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    pass


def _changes_receiver(sender: Any, changes: Any, **kwargs: Any) -> None:
    assert changes["email"][1] == "changed@example.org"


def run(quick: bool) -> str:
    from tocsin.signals import post_save

    plain_engine, plain_model, signal_engine, signal_model = _setup()
    rounds = 5 if quick else 21

    def compare(
        case: Callable[[Engine, type[Any]], Callable[[], None]],
        receiver: Callable[..., None] | None = None,
    ) -> dict[str, float]:
        """Time ``case`` on both bases, with ``receiver`` on post_save if given."""
        if receiver is not None:
            post_save.connect(receiver, sender=signal_model)
        try:
            return measure(
                {
                    "plain": case(plain_engine, plain_model),
                    "tocsin": case(signal_engine, signal_model),
                },
                number=1,
                rounds=rounds,
            )
        finally:
            if receiver is not None:
                post_save.disconnect(receiver, sender=signal_model)

    flush = compare(_flush)
    flush_receiver = compare(_flush, _receiver)
    update_receiver = compare(_update, _changes_receiver)
    load = compare(_load)
    plain_engine.dispose()
    signal_engine.dispose()

    cases = [
        (
            f"Create and flush {FLUSH_ROWS:,} objects, no receiver",
            flush,
            1.05,
        ),
        (
            f"Create and flush {FLUSH_ROWS:,} objects, one post_save receiver",
            flush_receiver,
            1.3,
        ),
        (
            f"Load and update {FLUSH_ROWS:,} objects, one post_save receiver "
            "reading changes",
            update_receiver,
            # Each changed object costs its update_fields and changes (read
            # from SQLAlchemy's attribute history) and a send; the same case
            # sending update_fields alone measured 1.4x.
            1.5,
        ),
        (f"Load {LOAD_ROWS:,} rows, no init receiver", load, 1.05),
    ]
    rows = [
        [
            name,
            format_time(times["plain"]),
            format_time(times["tocsin"]),
            ratio(times["tocsin"], times["plain"]),
        ]
        for name, times, _goal in cases
    ]
    goals = [
        goal_line(
            f"{name}: at most {goal:.2f}x plain SQLAlchemy",
            times["tocsin"] <= goal * times["plain"],
            ratio(times["tocsin"], times["plain"]),
        )
        for name, times, goal in cases
    ]
    return "\n".join(
        [
            "## SQLAlchemy model signals",
            "",
            "The same model on two in-memory SQLite engines: one on a declarative "
            "base given to `tocsin.integrations.sqlalchemy.install()`, one on a "
            "base that is not (plain SQLAlchemy). A flush case builds the objects "
            "(so `pre_init`/`post_init` are included), adds them, flushes and "
            "rolls back; the update case loads 1,000 rows into a new session, "
            "changes one column of each, flushes (its receiver reads the "
            "`changes` of each object) and rolls back; a load case selects every "
            "row into a new session. "
            "tocsin's session listeners are registered on the `Session` class, so "
            "the plain contender runs them too: per flush they look up each new "
            "object's class and skip it (about 0.5% of these flushes), per "
            "statement they return at once. "
            f"Medians of {rounds} interleaved rounds.",
            "",
            markdown_table(
                ["Case", "plain SQLAlchemy", "with tocsin", "ratio"],
                rows,
            ),
            "",
            *goals,
        ]
    )
