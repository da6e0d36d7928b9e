"""Models and engines for the SQLAlchemy integration tests.

The models mirror those of the Django trace in the design notes (Tag, User
with tags, Post, Comment, Audit with SET NULL) plus Profile, joined-table
inheritance (Vehicle, Car) and an association-class many-to-many (Team).
Every engine fixture is parametrized over SQLite and PostgreSQL.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any, ClassVar

import httpx
import pytest
from sqlalchemy import Column, ForeignKey, String, Table, create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

import tocsin.integrations.sqlalchemy as tocsin_sa
from tocsin.testing import capture


class Base(DeclarativeBase):
    pass


# The models are installed by the `installed` fixture, once they are all
# defined: install() sends their class_prepared then. (test_sqlalchemy_init
# covers models mapped after install(), which send it when they are mapped.)

user_tags = Table(
    "user_tags",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
)


class Tag(Base):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), default="t")
    users: Mapped[set[User]] = relationship(
        secondary=user_tags, back_populates="tags", collection_class=set
    )

    def __repr__(self) -> str:
        return f"Tag({self.id})"


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    email: Mapped[str | None] = mapped_column(String(50), default=None)
    tags: Mapped[set[Tag]] = relationship(
        secondary=user_tags, back_populates="users", collection_class=set
    )
    posts: Mapped[list[Post]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="Post.id"
    )
    audits: Mapped[list[Audit]] = relationship(back_populates="user")
    profile: Mapped[Profile | None] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"User({self.id})"


class Profile(Base):
    __tablename__ = "profiles"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    user: Mapped[User] = relationship(back_populates="profile")

    def __repr__(self) -> str:
        return f"Profile({self.id})"


class Post(Base):
    __tablename__ = "posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(50), default="t")
    user: Mapped[User] = relationship(back_populates="posts")
    comments: Mapped[list[Comment]] = relationship(
        cascade="all, delete-orphan", order_by="Comment.id"
    )

    def __repr__(self) -> str:
        return f"Post({self.id})"


class Comment(Base):
    __tablename__ = "comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"))

    def __repr__(self) -> str:
        return f"Comment({self.id})"


class Audit(Base):
    __tablename__ = "audits"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    user: Mapped[User | None] = relationship(back_populates="audits")

    def __repr__(self) -> str:
        return f"Audit({self.id})"


class Vehicle(Base):
    __tablename__ = "vehicles"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    wheels: Mapped[int] = mapped_column(default=4)
    __mapper_args__: ClassVar[dict[str, Any]] = {
        "polymorphic_on": "kind",
        "polymorphic_identity": "vehicle",
    }


class Car(Vehicle):
    __tablename__ = "cars"
    id: Mapped[int] = mapped_column(ForeignKey("vehicles.id"), primary_key=True)
    seats: Mapped[int] = mapped_column(default=5)
    __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_identity": "car"}


class Membership(Base):
    """An association class: m2m_changed's sender for Team.members."""

    __tablename__ = "memberships"
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    members: Mapped[set[User]] = relationship(
        secondary="memberships", collection_class=set, viewonly=False
    )


MODEL_SIGNALS_NAMES = (
    "pre_init",
    "post_init",
    "pre_save",
    "post_save",
    "pre_delete",
    "post_delete",
    "m2m_changed",
)


def sqlite_engine(path: str, **kwargs: Any) -> Engine:
    """A SQLite engine whose savepoints work on every Python version.

    SQLAlchemy's documented recipe: let pysqlite leave transactions alone and
    emit BEGIN ourselves (pysqlite before Python 3.12 commits at SAVEPOINT).
    """
    engine = create_engine(f"sqlite:///{path}", **kwargs)

    @event.listens_for(engine, "connect")
    def _no_pysqlite_transactions(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine


@pytest.fixture(scope="session")
def installed() -> Iterator[tocsin_sa.Installation]:
    """The test models send model signals for the whole session, then stop."""
    installation = tocsin_sa.install(Base)
    yield installation
    installation.uninstall()


@pytest.fixture
def install() -> Iterator[Callable[..., tocsin_sa.Installation]]:
    """``tocsin_sa.install`` for one test: what it installed is uninstalled after."""
    made: list[tocsin_sa.Installation] = []

    def installing(*bases: Any, **kwargs: Any) -> tocsin_sa.Installation:
        installation = tocsin_sa.install(*bases, **kwargs)
        made.append(installation)
        return installation

    yield installing
    for installation in reversed(made):
        installation.uninstall()


@pytest.fixture(scope="session")
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_engine(postgres_url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def _truncate(engine: Engine) -> None:
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(
    request: pytest.FixtureRequest, tmp_path: Any, installed: Any
) -> Iterator[Engine]:
    """A fresh, empty database with the test models, on SQLite or PostgreSQL."""
    if request.param == "sqlite":
        sqlite = sqlite_engine(str(tmp_path / "test.db"))
        Base.metadata.create_all(sqlite)
        yield sqlite
        sqlite.dispose()
    else:
        pg: Engine = request.getfixturevalue("pg_engine")
        _truncate(pg)
        yield pg


@pytest.fixture(params=["sqlite", "postgresql"])
def async_url(request: pytest.FixtureRequest, tmp_path: Any, installed: Any) -> str:
    """A URL for create_async_engine (aiosqlite or asyncpg) on an empty database."""
    if request.param == "sqlite":
        path = tmp_path / "async.db"
        sync = create_engine(f"sqlite:///{path}")
        Base.metadata.create_all(sync)
        sync.dispose()
        return f"sqlite+aiosqlite:///{path}"
    pg: Engine = request.getfixturevalue("pg_engine")
    _truncate(pg)
    return pg.url.set(drivername="postgresql+asyncpg").render_as_string(
        hide_password=False
    )


class Recorder:
    """The model signals sent during a test, and a readable summary of them."""

    def __init__(self, sent: list[Any]) -> None:
        self.sent = sent

    def trace(self, *names: str) -> list[tuple[Any, ...]]:
        return trace(self.sent, *names)

    def clear(self) -> None:
        self.sent.clear()


@pytest.fixture
def recorded() -> Iterator[Recorder]:
    """Capture every model signal (receivers still run)."""
    from tocsin import signals

    with capture(*(getattr(signals, name) for name in MODEL_SIGNALS_NAMES)) as sent:
        yield Recorder(sent)


@pytest.fixture
def models(installed: Any) -> SimpleNamespace:
    """The test models, installed on ``Base``."""
    return SimpleNamespace(
        Base=Base,
        Tag=Tag,
        User=User,
        Profile=Profile,
        Post=Post,
        Comment=Comment,
        Audit=Audit,
        Vehicle=Vehicle,
        Car=Car,
        Membership=Membership,
        Team=Team,
        user_tags=user_tags,
    )


def trace(sent: list[Any], *names: str) -> list[tuple[Any, ...]]:
    """(signal name, sender name, interesting kwargs) for the given signals."""
    rows = []
    for item in sent:
        name = item.signal.name
        if names and name not in names:
            continue
        sender = getattr(item.sender, "__name__", None) or getattr(
            item.sender, "name", item.sender
        )
        kwargs = item.kwargs
        if name in ("pre_save", "post_save"):
            detail: tuple[Any, ...] = (
                kwargs["instance"],
                kwargs.get("created"),
                kwargs["update_fields"],
            )
        elif name in ("pre_delete", "post_delete"):
            detail = (kwargs["instance"], kwargs["origin"])
        elif name == "m2m_changed":
            detail = (
                kwargs["action"],
                kwargs["instance"],
                kwargs["reverse"],
                kwargs["model"].__name__,
                kwargs["pk_set"],
            )
        elif name == "pre_init":
            detail = (kwargs["args"], kwargs["kwargs"])
        else:
            detail = (kwargs.get("instance"),)
        rows.append((name, sender, *detail))
    return rows


PY312 = sys.version_info >= (3, 12)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """An HTTP client for the servers the web tests start on 127.0.0.1."""
    with httpx.Client(timeout=10) as client:
        yield client
