"""SQLAlchemy private names: only in ``_compat``, and still doing what it expects.

The first half reads the integration's source: outside ``_compat.py`` no
module may import a SQLAlchemy module that is not public API, import a
``_private`` name, read a ``_private`` attribute, or name SQLAlchemy's private
attributes in a string (``getattr(cls, "_sa_class_manager")``). The second
half runs each ``_compat`` function against the installed SQLAlchemy, so that
a release that changes those internals fails here, by name.
"""

from __future__ import annotations

import ast
import asyncio
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, ForeignKey, Table, __version__, event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    configure_mappers,
    mapped_column,
    relationship,
)
from sqlalchemy.orm.attributes import instance_state

import tocsin.integrations.sqlalchemy as tocsin_sa
from tocsin.integrations.sqlalchemy import _compat, _m2m

PACKAGE = Path(tocsin_sa.__file__).parent

# SQLAlchemy modules whose names are documented API. Anything else
# (sqlalchemy.util, sqlalchemy.orm.state, sqlalchemy.orm.collections, ...)
# belongs in _compat.
PUBLIC_MODULES = {
    "sqlalchemy",
    "sqlalchemy.engine",
    "sqlalchemy.event",
    "sqlalchemy.exc",
    "sqlalchemy.ext.asyncio",
    "sqlalchemy.orm",
    "sqlalchemy.orm.attributes",
}
# The private attributes that the integration itself defines and reads.
OWN_PRIVATE_ATTRIBUTES = {"_tocsin_wrapped"}
PYTHON_DUNDERS = {
    "__dict__",
    "__file__",
    "__init__",
    "__module__",
    "__name__",
    "__qualname__",
    "__subclasses__",
    "__wrapped__",
}

BY_NAME = {"getattr", "hasattr", "setattr", "delattr"}


def private_uses(source: str) -> list[str]:
    """What in ``source`` reaches into SQLAlchemy's (or anyone's) private names."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sqlalchemy" and (
                    alias.name not in PUBLIC_MODULES
                ):
                    found.append(f"{line}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            module = node.module or ""
            if module.split(".")[0] != "sqlalchemy":
                continue
            if module not in PUBLIC_MODULES:
                found.append(f"{line}: from {module} import ...")
            for alias in node.names:
                if alias.name.startswith("_"):
                    found.append(f"{line}: from {module} import {alias.name}")
                if f"{module}.{alias.name}" in {
                    "sqlalchemy.util",
                    "sqlalchemy.orm.collections",
                }:
                    found.append(f"{line}: from {module} import {alias.name}")
        elif isinstance(node, ast.Attribute):
            name = node.attr
            on_self = isinstance(node.value, ast.Name) and node.value.id == "self"
            if (
                name.startswith("_")
                and not on_self  # the integration's own classes
                and name not in OWN_PRIVATE_ATTRIBUTES
                and name not in PYTHON_DUNDERS
            ):
                found.append(f"{line}: .{name}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value.startswith(("_sa_", "__sqlalchemy")):
                found.append(f"{line}: {node.value!r}")
        elif isinstance(node, ast.Call):
            # getattr(obj, "_name"), cls.__dict__.get("_name"): a private name
            # read by string.
            func = node.func
            by_name = isinstance(func, ast.Name) and func.id in BY_NAME
            from_dict = (
                isinstance(func, ast.Attribute)
                and func.attr == "get"
                and isinstance(func.value, ast.Attribute)
                and func.value.attr == "__dict__"
            )
            if by_name or from_dict:
                for arg in node.args:
                    if (
                        isinstance(arg, ast.Constant)
                        and isinstance(arg.value, str)
                        and arg.value.startswith("_")
                        and arg.value not in OWN_PRIVATE_ATTRIBUTES
                        and arg.value not in PYTHON_DUNDERS
                    ):
                        found.append(f"{line}: {arg.value!r} by name")
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.glob("*.py") if p.name != "_compat.py")


def test_only_compat_uses_sqlalchemy_private_names() -> None:
    modules = _modules()
    assert len(modules) >= 10  # the whole package is read, not an empty glob
    problems = {
        path.name: uses
        for path in modules
        if (uses := private_uses(path.read_text(encoding="utf-8")))
    }
    assert problems == {}, (
        "SQLAlchemy private names outside _compat.py (move them there, with the "
        f"SQLAlchemy versions they were checked on): {problems}"
    )


@pytest.mark.parametrize(
    "source",
    [
        "session._flush()",
        "if session._is_clean(): pass",
        "states = session._new.items()",
        "modified = session.identity_map._modified",
        "mapper._is_orphan(state)",
        "for other in prop._reverse_property: pass",
        "manager = cls.__dict__.get('_sa_class_manager')",
        "manager = cls.__dict__.get('_manager')",
        "flag = getattr(state, '_orphaned_outside_of_session', False)",
        "inside = getattr(current, '__sqlalchemy_greenlet_provider__', False)",
        "import sys\nframe = sys._getframe(2)",
        "from sqlalchemy.orm import collections",
        "from sqlalchemy.orm.collections import InstrumentedSet",
        "from sqlalchemy.util import await_only",
        "import sqlalchemy.util.concurrency",
        "from sqlalchemy.orm.state import InstanceState",
        "from sqlalchemy.orm.base import _none_set",
        "from sqlalchemy.orm import _orm_constructors",
    ],
)
def test_the_check_catches_each_kind_of_private_use(source: str) -> None:
    assert private_uses(source) != []


def test_the_check_accepts_public_api() -> None:
    source = (
        "from sqlalchemy import event, inspect\n"
        "from sqlalchemy.orm import Session, Mapper\n"
        "from sqlalchemy.orm.attributes import instance_state\n"
        "from ... import _signal\n"
        "from . import _compat\n"
        "state = inspect(obj)\n"
        "keys = [k for k in state.mapper.attrs.keys() if k not in state.unmodified]\n"
        "dirty = session.dirty\n"
        "__init__._tocsin_wrapped = True\n"
        "self._active = False\n"
        "_compat.flush_inside_flush(session)\n"
    )
    assert private_uses(source) == []


# -- each _compat function, on the installed SQLAlchemy ------------------------------


class Base(DeclarativeBase):
    pass


links = Table(
    "compat_links",
    Base.metadata,
    Column("parent_id", ForeignKey("compat_parents.id"), primary_key=True),
    Column("child_id", ForeignKey("compat_children.id"), primary_key=True),
)


class Parent(Base):
    __tablename__ = "compat_parents"
    id: Mapped[int] = mapped_column(primary_key=True)
    owned: Mapped[list[Owned]] = relationship(cascade="all, delete-orphan")
    as_set: Mapped[set[Child]] = relationship(
        secondary=links, collection_class=set, back_populates="parents"
    )
    as_list: Mapped[list[Child]] = relationship(
        secondary=links, viewonly=True, order_by="Child.id"
    )


class Child(Base):
    __tablename__ = "compat_children"
    id: Mapped[int] = mapped_column(primary_key=True)
    parents: Mapped[set[Parent]] = relationship(
        secondary=links, collection_class=set, back_populates="as_set"
    )


class Owned(Base):
    __tablename__ = "compat_owned"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("compat_parents.id"))


class Listed(Base):
    __tablename__ = "compat_listed"
    id: Mapped[int] = mapped_column(primary_key=True)
    items: Mapped[list[Child]] = relationship(
        secondary=Table(
            "compat_listed_items",
            Base.metadata,
            Column("listed_id", ForeignKey("compat_listed.id"), primary_key=True),
            Column("child_id", ForeignKey("compat_children.id"), primary_key=True),
        ),
        backref="listed_in",
    )


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Engine]:
    from conftest import sqlite_engine

    engine = sqlite_engine(str(tmp_path / "compat.db"))
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def _removals(attribute: Any) -> tuple[list[bool], Callable[[], None]]:
    """Record called_from_clear() for each removal event of ``attribute``."""
    seen: list[bool] = []

    def on_remove(target: Any, value: Any, initiator: Any) -> None:
        seen.append(_compat.called_from_clear())

    event.listen(attribute, "remove", on_remove)
    return seen, lambda: event.remove(attribute, "remove", on_remove)


@pytest.mark.parametrize("kind", ["set", "list"])
def test_called_from_clear_tells_clear_from_remove(kind: str) -> None:
    attribute = Parent.as_set if kind == "set" else Listed.items
    owner: Any = Parent() if kind == "set" else Listed()
    collection = owner.as_set if kind == "set" else owner.items
    children = [Child(id=i) for i in (1, 2, 3)]
    for child in children:
        collection.add(child) if kind == "set" else collection.append(child)
    seen, stop = _removals(attribute)
    try:
        collection.remove(children[0])
        assert seen == [False], f"SQLAlchemy {__version__}: remove() looks like clear()"
        collection.clear()
        assert seen == [False, True, True], (
            f"SQLAlchemy {__version__} no longer calls remove events from a clear "
            "frame of sqlalchemy.orm.collections: update _compat.called_from_clear"
        )
    finally:
        stop()


def test_is_orphan_finds_a_child_removed_from_a_delete_orphan_collection(
    sqlite: Engine,
) -> None:
    with Session(sqlite) as session:
        parent = Parent(owned=[Owned(), Owned()])
        session.add(parent)
        session.commit()
        kept, dropped = parent.owned
        parent.owned.remove(dropped)
        assert _compat.is_orphan(instance_state(dropped)) is True
        assert _compat.is_orphan(instance_state(kept)) is False
        assert _compat.is_orphan(instance_state(parent)) is False  # no owner


def test_flush_inside_flush_writes_what_after_flush_postexec_added(
    sqlite: Engine,
) -> None:
    def add_once(session: Session, flush_context: Any) -> None:
        if not session.info.get("added"):
            session.info["added"] = True
            session.add(Owned(id=99))
            _compat.flush_inside_flush(session)

    with Session(sqlite) as session:
        event.listen(session, "after_flush_postexec", add_once)
        session.add(Owned(id=1))
        session.flush()  # a plain flush: SQLAlchemy would not flush again
        assert not session.new, f"SQLAlchemy {__version__}: Session._flush changed"
        assert session.get(Owned, 99) is not None


def test_greenlet_awaiter_awaits_on_the_session_loop_inside_async_session(
    tmp_path: Path,
) -> None:
    awaiter = _compat.greenlet_awaiter()
    assert awaiter() is None  # not inside SQLAlchemy's greenlet
    results: list[Any] = []

    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    def inside(session: Session) -> None:
        await_ = awaiter()
        assert await_ is not None, (
            f"SQLAlchemy {__version__}: in_greenlet() is False inside run_sync"
        )
        results.append(await_(answer()))

    async def main() -> None:
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
        try:
            from sqlalchemy.ext.asyncio import AsyncSession

            async with AsyncSession(engine) as session:
                await session.run_sync(inside)
        finally:
            await engine.dispose()

    asyncio.run(main())
    assert results == [42]


def test_the_public_reverse_of_a_relationship_is_sqlalchemy_s_own() -> None:
    # _m2m finds the other side of a relationship from back_populates (or the
    # backref); SQLAlchemy keeps the same in a private attribute, which only
    # this test reads, to prove the two agree.
    configure_mappers()
    for prop in (Parent.as_set.property, Child.parents.property, Listed.items.property):
        ours = set(_m2m._reverse(prop))
        assert ours == set(prop._reverse_property)
        assert ours  # each of them has a reverse side
    assert _m2m._reverse(Parent.as_list.property) == ()


def test_make_test_runs_the_oldest_sqlalchemy_that_pyproject_allows() -> None:
    # `make test` runs these tests again in a virtualenv with SA_OLDEST; it must
    # be the floor that users may install, or that floor goes untested.
    root = PACKAGE.parents[3]
    pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")
    makefile = (root / "Makefile").read_text(encoding="utf-8")
    floors = set(re.findall(r'"sqlalchemy\[asyncio\]>=([\d.]+)"', pyproject))
    oldest = re.findall(r"^SA_OLDEST := ([\d.]+)$", makefile, re.MULTILINE)
    assert len(floors) == 1
    assert oldest == list(floors)
