"""``using``: names for engines, two engines in one session, install() input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Session

import tocsin.integrations.sqlalchemy as tocsin_sa


def test_two_engines_in_one_session_name_their_own_database(
    engine: Engine, models: Any, recorded: Any, tmp_path: Path, install: Any
) -> None:
    archive = create_engine(f"sqlite:///{tmp_path / 'archive.db'}")
    models.Base.metadata.create_all(archive)
    install(models.Base, databases={engine: "primary", archive: "archive"})
    try:
        with Session(binds={models.User: engine, models.Tag: archive}) as session:
            session.add_all([models.User(name="u"), models.Tag(name="t")])
            session.commit()
        using = {
            (s.signal.name, s.sender.__name__): s.kwargs["using"]
            for s in recorded.sent
            if s.signal.name in ("pre_save", "post_save")
        }
        assert using == {
            ("pre_save", "User"): "primary",
            ("post_save", "User"): "primary",
            ("pre_save", "Tag"): "archive",
            ("post_save", "Tag"): "archive",
        }
    finally:
        archive.dispose()


def test_an_engine_without_a_name_is_default(
    engine: Engine, models: Any, recorded: Any
) -> None:
    with Session(engine) as session:
        session.add(models.Tag())
        session.commit()
    assert {s.kwargs["using"] for s in recorded.sent if "using" in s.kwargs} == {
        "default"
    }


def test_an_async_engine_or_a_connection_stands_for_its_engine(
    models: Any, tmp_path: Path, install: Any
) -> None:
    names = tocsin_sa._state.engine_names
    async_engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    sync_engine = create_engine(f"sqlite:///{tmp_path / 's.db'}")
    try:
        with sync_engine.connect() as connection:
            first = install(
                models.Base, databases={async_engine: "async", connection: "sync"}
            )
        assert names[async_engine.sync_engine] == "async"
        assert names[sync_engine] == "sync"
        again = install(models.Base, databases={sync_engine: "sync"})  # same name
        with pytest.raises(ValueError, match="already named 'sync'"):
            install(models.Base, databases={sync_engine: "other"})
        first.uninstall()  # the second call still names sync_engine
        assert names.get(async_engine.sync_engine) is None
        assert names[sync_engine] == "sync"
        again.uninstall()
        assert names.get(sync_engine) is None
        assert models.Base in tocsin_sa.installed_bases()  # the session's install
    finally:
        sync_engine.dispose()


@pytest.mark.parametrize(
    ("databases", "message"),
    [
        ({"sqlite://": "x"}, "keys must be engines"),
        ([("engine", "x")], "mapping from engines to names"),
    ],
)
def test_install_rejects_bad_database_names(
    models: Any, databases: Any, message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        tocsin_sa.install(models.Base, databases=databases)


def test_a_database_name_must_be_a_string(models: Any) -> None:
    engine = create_engine("sqlite://")
    with pytest.raises(TypeError, match="names must be strings"):
        tocsin_sa.install(models.Base, databases={engine: 1})
