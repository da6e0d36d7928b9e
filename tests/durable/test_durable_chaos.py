"""Chaos: worker processes killed with SIGKILL while transactions commit and roll back.

300 transactions save an Item each (one in five rolls back); two worker
processes deliver the durable receiver, which writes an Effect through
``event.session``; every 1 to 2 seconds one of them is killed with SIGKILL
and a new one started. At the end every committed event was handled exactly
once, no rolled-back one was, and the kills did interrupt deliveries.
"""

from __future__ import annotations

import collections
import random
import subprocess
import time

import _app
from _processes import start_worker
from _transactions import Transactions
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tocsin.durable import Status, status

TRANSACTIONS = 300
ROLLED_BACK_EVERY = 5  # 20%
DELAY = 0.02


def _open(now: Status) -> int:
    return now.pending + now.retrying + now.running


def _wait_for_a_delivery(deadline: float) -> None:
    while time.monotonic() < deadline and not status(_app.outbox).running:
        time.sleep(0.005)


def test_no_committed_event_is_lost_or_applied_twice_while_workers_are_killed(
    engine: Engine, database_url: str
) -> None:
    random.seed(9)
    # Receivers take 20 ms and transactions commit about as fast as two workers
    # deliver them, so the workers are busy when they are killed.
    workers = [start_worker(database_url, delay=DELAY) for _ in range(2)]
    kills = 0
    producer = Transactions(
        engine, TRANSACTIONS, rolled_back_every=ROLLED_BACK_EVERY, pause=0.005
    )
    producer.start()
    try:
        while producer.producing.is_set() or kills < 4:
            time.sleep(random.uniform(1, 2))
            # Kill while an event is in hand (a loaded machine may leave the
            # workers idle at a random moment): then both, since the row does
            # not say which process holds it.
            _wait_for_a_delivery(time.monotonic() + 5)
            for victim in range(len(workers)):
                workers[victim].kill()
                workers[victim].communicate()
                kills += 1
                workers[victim] = start_worker(database_url, delay=DELAY)
        producer.join()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not _open(status(_app.outbox)):
                break
            time.sleep(0.1)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.communicate()
        producer.join()

    with Session(engine) as session:
        handled = collections.Counter(
            session.scalars(
                select(_app.Effect.note).where(_app.Effect.receiver == "record_item")
            )
        )
        table = _app.outbox.table
        events, attempts = session.execute(
            select(func.count(), func.sum(table.c.attempts))
        ).one()
    assert len(producer.committed) == TRANSACTIONS - TRANSACTIONS // ROLLED_BACK_EVERY
    assert set(handled) == set(producer.committed)  # none lost, none from a rollback
    assert set(handled.values()) == {1}  # one database effect per event
    assert events == len(producer.committed)
    assert attempts > events, "no kill interrupted a delivery: the run proved nothing"
    final = status(_app.outbox)
    assert (final.pending, final.retrying, final.running, final.dead) == (0, 0, 0, 0)
    assert final.done == len(producer.committed)
