"""install() returns a handle; uninstall() stops the signals and leaves models working."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, ForeignKey, Table, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

import tocsin.integrations.sqlalchemy as tocsin_sa
from tocsin import signals
from tocsin.testing import capture

ALL = (
    signals.class_prepared,
    signals.pre_init,
    signals.post_init,
    signals.pre_save,
    signals.post_save,
    signals.pre_delete,
    signals.post_delete,
    signals.m2m_changed,
)


class Base(DeclarativeBase):
    pass


labels = Table(
    "install_labels",
    Base.metadata,
    Column("note_id", ForeignKey("install_notes.id"), primary_key=True),
    Column("label_id", ForeignKey("install_label.id"), primary_key=True),
)


class Label(Base):
    __tablename__ = "install_label"
    id: Mapped[int] = mapped_column(primary_key=True)


class Note(Base):
    __tablename__ = "install_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str]
    labels: Mapped[set[Label]] = relationship(secondary=labels, collection_class=set)


@pytest.fixture
def another_base() -> Iterator[None]:
    """Another installed base: the listeners on Session stay while Base is uninstalled."""

    class Other(DeclarativeBase):
        pass

    other = tocsin_sa.install(Other)
    yield
    other.uninstall()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Engine]:
    from conftest import sqlite_engine

    engine = sqlite_engine(str(tmp_path / "install.db"))
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def _use_models(engine: Engine) -> list[str]:
    """Create, change, relate, delete and load notes; the names of the signals sent."""
    with capture(*ALL) as sent:
        with Session(engine) as session:
            note, label = Note(text="a"), Label()
            session.add_all([note, label])
            session.commit()
            note.text = "b"
            note.labels.add(label)
            session.commit()
            session.delete(note)
            session.commit()
        with Session(engine) as session:
            assert session.scalars(select(Label)).all()[0] is not None
    return [item.signal.name for item in sent]


def test_uninstall_stops_every_signal_and_the_models_keep_working(
    db: Engine, another_base: None
) -> None:
    installation = tocsin_sa.install(Base)
    assert installation.bases == (Base,)
    assert Base in tocsin_sa.installed_bases()
    assert "m2m_changed" in _use_models(db)  # installed: the m2m listener exists

    installation.uninstall()

    assert not installation.active
    assert Base not in tocsin_sa.installed_bases()
    assert _use_models(db) == []
    assert not hasattr(Note.__init__, "_tocsin_wrapped")  # its own __init__ again
    with Session(db) as session:
        assert [label.id for label in session.scalars(select(Label))] == [1, 2]
    installation.uninstall()  # a second call does nothing


def test_a_collection_change_made_before_uninstall_sends_nothing_after(
    db: Engine, another_base: None
) -> None:
    installation = tocsin_sa.install(Base)
    with capture(signals.m2m_changed) as sent, Session(db) as session:
        note = Note(text="a", labels={Label()})  # recorded for the flush
        session.add(note)
        installation.uninstall()
        session.commit()
    assert sent == []


def test_installing_again_after_uninstall_prepares_the_models_again(
    db: Engine,
) -> None:
    tocsin_sa.install(Base).uninstall()
    with capture(signals.class_prepared) as prepared:
        again = tocsin_sa.install(Base)
    try:
        assert {item.sender for item in prepared} == {Label, Note}
        names = _use_models(db)
        assert names.count("post_save") == 3  # note and label created, note changed
    finally:
        again.uninstall()


def test_a_base_stays_installed_until_every_handle_that_claims_it_uninstalls(
    db: Engine,
) -> None:
    first = tocsin_sa.install(Base)
    second = tocsin_sa.install(Base)  # changes nothing
    assert second is not first
    with capture(signals.class_prepared) as prepared:
        tocsin_sa.install(Base).uninstall()
    assert prepared == []
    first.uninstall()
    assert "post_save" in _use_models(db)
    second.uninstall()
    assert _use_models(db) == []


def _run_python(script: str) -> str:
    """Run ``script`` in a fresh interpreter (this one has test models installed)."""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_last_uninstall_removes_the_session_listeners_and_on_commit_support(
    tmp_path: Path,
) -> None:
    script = textwrap.dedent(
        """
        from sqlalchemy import event
        from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
        import tocsin.integrations.sqlalchemy as tocsin_sa
        from tocsin.integrations.sqlalchemy import _flush
        from tocsin.signals import post_save
        from tocsin.testing import capture
        from tocsin.transaction import on_commit

        class Base(DeclarativeBase):
            pass

        class Item(Base):
            __tablename__ = "items"
            id: Mapped[int] = mapped_column(primary_key=True)

        installation = tocsin_sa.install(Base)
        assert event.contains(Session, "before_flush", _flush.before_flush)
        installation.uninstall()
        assert not event.contains(Session, "before_flush", _flush.before_flush)
        session = Session()
        try:
            on_commit(print, using=session)
        except TypeError as error:
            print("on_commit:", error)
        with capture(post_save) as sent:
            Item(id=1)
        print("sent:", len(sent))
        """
    )
    output = _run_python(script)
    assert "on_commit: Cannot find a transaction in <sqlalchemy.orm" in output
    assert "install() has run" in output
    assert "sent: 0" in output


def test_the_handle_names_its_bases_and_state() -> None:
    installation = tocsin_sa.install(Base)
    try:
        assert "Installation of Base" in repr(installation)
    finally:
        installation.uninstall()
    assert repr(installation).endswith("(uninstalled)>")


def test_importing_the_test_models_installs_nothing() -> None:
    # The tests' models are installed by the `installed` fixture, not as a
    # side effect of importing conftest.
    here = Path(__file__).parent
    script = (
        f"import sys; sys.path[:0] = [{str(here)!r}, {str(here.parent)!r}]\n"
        "import conftest, tocsin.integrations.sqlalchemy as tocsin_sa\n"
        "wrapped = hasattr(conftest.User.__init__, '_tocsin_wrapped')\n"
        "print(tocsin_sa.installed_bases(), wrapped)\n"
    )
    output = _run_python(script)
    assert output.split() == ["()", "False"]


def test_the_public_names_are_the_curated_all() -> None:
    public = {
        name
        for name, value in vars(tocsin_sa).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public - {"annotations"} == set(tocsin_sa.__all__)
    assert tocsin_sa.Installation.__module__ == "tocsin.integrations.sqlalchemy"
    assert tocsin_sa.ReceiverLoopError.__module__ == "tocsin.integrations.sqlalchemy"
