"""Fixtures of the durable tests: a fresh outbox on SQLite or on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import _app
import pytest
from sqlalchemy import Engine, create_engine, event


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database that holds the test app's tables and outbox."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'app.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    _app.Base.metadata.drop_all(engine)
    _app.Base.metadata.create_all(engine)
    engine.dispose()
    return url


def make_engine(url: str) -> Engine:
    """An engine as an application would configure it (SQLite: WAL, a busy timeout)."""
    if not url.startswith("sqlite"):
        return create_engine(url)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _wal(connection: object, record: object) -> None:
        cursor = connection.cursor()  # type: ignore[attr-defined]
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    return engine


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """The engine of the test database, bound to the app's outbox."""
    engine = make_engine(database_url)
    _app.outbox.bind(engine)
    _app.outbox.activate()
    _app.hook = None
    yield engine
    _app.hook = None
    engine.dispose()
