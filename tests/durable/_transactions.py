"""The sending side of the chaos tests: transactions that each save an Item."""

from __future__ import annotations

import threading
import time

import _app
from sqlalchemy import Engine
from sqlalchemy.orm import Session


class Transactions(threading.Thread):
    """``count`` transactions in a thread, each saving an Item named ``t<n>``;
    every ``rolled_back_every``-th one (from the first) rolls back after its
    flush has written the outbox row. ``producing`` is set until the last one."""

    def __init__(
        self, engine: Engine, count: int, *, rolled_back_every: int, pause: float
    ) -> None:
        super().__init__(name="transactions")
        self.engine = engine
        self.count = count
        self.rolled_back_every = rolled_back_every
        self.pause = pause
        self.committed: list[str] = []
        self.rolled_back: list[str] = []
        self.producing = threading.Event()
        self.producing.set()

    def run(self) -> None:
        try:
            for n in range(self.count):
                name = f"t{n}"
                with Session(self.engine) as session:
                    session.add(_app.Item(name=name))
                    session.flush()  # the outbox row is written here
                    if n % self.rolled_back_every == 0:
                        session.rollback()
                        self.rolled_back.append(name)
                    else:
                        session.commit()
                        self.committed.append(name)
                time.sleep(self.pause)
        finally:
            self.producing.clear()
