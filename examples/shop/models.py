"""The shop's tables. Nothing here knows about signals, except the outbox of
the durable receivers, which is a table of this database like the others."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from tocsin.durable import Outbox


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    profile: Mapped[Profile | None] = relationship(back_populates="user")

    def __repr__(self) -> str:
        return f"User({self.email})"


class Profile(Base):
    __tablename__ = "profiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    user: Mapped[User] = relationship(back_populates="profile")

    def __repr__(self) -> str:
        return f"Profile({self.display_name})"


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    total_cents: Mapped[int]
    user: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"Order(#{self.id}, {self.total_cents / 100:.2f} EUR)"


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    event: Mapped[str] = mapped_column(String(50))
    detail: Mapped[str] = mapped_column(String(500))

    def __repr__(self) -> str:
        return f"AuditEntry({self.event})"


# Durable receivers (signals.py) write their events to this table in the
# sending transaction; a worker delivers them after the commit.
outbox = Outbox(Base.metadata)
