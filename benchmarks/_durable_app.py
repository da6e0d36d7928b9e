"""The application of the durable benchmark, imported by it and by its workers."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tocsin import Signal, receiver
from tocsin.durable import Event, Outbox
from tocsin.integrations import sqlalchemy as model_signals


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "bench_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))


model_signals.install(Base)
outbox = Outbox(Base.metadata)

order_placed = Signal(name="order_placed")
job = Signal(name="job")

#: What a typical durable receiver waits for: an email or HTTP API call.
EXTERNAL_CALL = 0.005


@receiver(order_placed, durable=True, dispatch_uid="bench.order_placed")
def on_order(sender: Any, order_id: int, event: Event, **kwargs: Any) -> None:
    pass


@receiver(job, durable=True, dispatch_uid="bench.job")
def on_job(sender: Any, n: int, event: Event, **kwargs: Any) -> None:
    time.sleep(EXTERNAL_CALL)
