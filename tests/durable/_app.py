"""The application of the durable tests, imported by them and by their workers.

A worker process runs ``tocsin worker -A _app --database URL`` (with this
directory on ``PYTHONPATH``); ``DURABLE_CRASH`` and ``DURABLE_DELAY`` in its
environment make its receivers crash or dawdle at the chosen point;
``DURABLE_STALL=DIR`` makes ``record_item`` write its process id to
``DIR/<event id>`` on an event's first attempt and then wait a minute, for a
test to kill that very process mid-receiver.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import String, event
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from tocsin import Signal, receiver
from tocsin.durable import Backoff, Event, Outbox, Policy
from tocsin.integrations import sqlalchemy as model_signals
from tocsin.signals import post_delete, post_save


class Base(DeclarativeBase):
    pass


class Item(Base):
    """What the sending transactions write."""

    __tablename__ = "durable_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


class Effect(Base):
    """What durable receivers write through ``event.session``: one per delivery kept."""

    __tablename__ = "durable_effects"
    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36))
    receiver: Mapped[str] = mapped_column(String(50))
    note: Mapped[str] = mapped_column(String(200))


model_signals.install(Base)
outbox = Outbox(Base.metadata)

#: Retries come back at once, and chaos never exhausts the attempts.
QUICK = Policy(max_attempts=50, backoff=Backoff(initial=0.05, factor=1, jitter=0))

order_placed = Signal(name="order_placed", doc="sender: a str; order_id: an int.")

CRASH = os.environ.get("DURABLE_CRASH", "")
DELAY = float(os.environ.get("DURABLE_DELAY", "0"))
STALL = os.environ.get("DURABLE_STALL", "")
BUSY = os.environ.get("DURABLE_BUSY", "")

#: In-process tests put a function here; receivers call it with their event.
hook: Callable[..., Any] | None = None


def _dawdle(seconds: float) -> None:
    # With DURABLE_BUSY, a file named for this process exists while it
    # dawdles: a chaos test kills such a process, certain to interrupt a
    # delivery. A killed process leaves its file; its pid is no child any more.
    marker = Path(BUSY) / str(os.getpid()) if BUSY else None
    if marker is not None:
        marker.touch()
    time.sleep(seconds)
    if marker is not None:
        marker.unlink(missing_ok=True)


def _stall(marker: Path) -> None:
    # Written whole, then renamed: the test never reads half a process id.
    partial = marker.with_suffix(".partial")
    partial.write_text(str(os.getpid()))
    partial.rename(marker)
    time.sleep(60)


def _kill_myself() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@receiver(post_save, sender=Item, durable=QUICK)
def record_item(
    sender: type[Item],
    instance: Item | None,
    created: bool,
    event: Event,
    **kwargs: Any,
) -> None:
    if DELAY:
        _dawdle(DELAY)
    if STALL and event.attempt == 1:
        _stall(Path(STALL) / event.id)
    name = "gone" if instance is None else instance.name
    event.session.add(Effect(event_id=event.id, receiver="record_item", note=name))
    if hook is not None:
        hook(event, instance=instance, created=created, **kwargs)
    if CRASH == "during-receiver" and event.attempt == 1:
        event.session.flush()
        _kill_myself()
    if CRASH == "after-receiver-commit":

        @event_listens(event.session, "after_commit")
        def _after(session: Session) -> None:
            _kill_myself()


def event_listens(target: Any, name: str) -> Callable[[Any], Any]:
    def register(func: Any) -> Any:
        event.listen(target, name, func)
        return func

    return register


@receiver(post_delete, sender=Item, durable=QUICK, dispatch_uid="items.deleted")
def item_deleted(
    sender: type[Item], instance: Item, event: Event, **kwargs: Any
) -> None:
    event.session.add(
        Effect(
            event_id=event.id,
            receiver="items.deleted",
            note=f"{instance.id}:{instance.name}",
        )
    )
    if hook is not None:
        hook(event, instance=instance, **kwargs)


@receiver(
    order_placed,
    durable=Policy(queue="orders", max_attempts=3),
    dispatch_uid="orders.ship",
)
def ship(sender: str, order_id: int, event: Event, **kwargs: Any) -> None:
    event.session.add(
        Effect(event_id=event.id, receiver="orders.ship", note=str(order_id))
    )
    if hook is not None:
        hook(event, order_id=order_id, **kwargs)
