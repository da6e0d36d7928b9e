"""Chaos with Celery: workers and the relay killed with SIGKILL, Redis emptied.

300 transactions on PostgreSQL, 100 on SQLite (about 40 s and 25 s here,
under load). Transactions save an Item each (one in five rolls back) while two
``celery -A _celery_app worker`` processes (prefork, two children each)
deliver the durable receiver and a ``tocsin relay`` process publishes. Every
1 to 2 seconds a pool child is killed with SIGKILL, or a whole worker (its
main process and its children) and a new one started; the relay is killed
once and restarted; Redis loses every message once (``FLUSHALL``). At the end every committed event was handled
exactly once for its database effects, no rolled-back one was, and the kills
did interrupt deliveries. The reconciler (the relay republishing rows
published but not done) is what recovers the messages Redis lost.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import time
from pathlib import Path

import _app
import pytest
import redis
from _celery_processes import (
    celery_environment,
    kill_group,
    nothing_open,
    start_celery_worker,
    start_relay,
    stop_gracefully,
    wait_until,
)
from _transactions import Transactions
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tocsin.durable import status

ROLLED_BACK_EVERY = 5  # 20%
#: A worker takes about 3 s to start here: kill whole workers that have run
#: this long, and pool children in between.
WORKER_LIFE = 4.0
DELAY = 0.1  # receivers busy most of the run, so that kills hit them
PAUSE = 0.01  # between transactions: the sends spread over the chaos


def pool_children(pid: int) -> list[int]:
    """The pool processes of a Celery worker (its child processes)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            return [int(child) for child in listing.read().split()]
    except OSError:
        return []


@pytest.mark.parametrize(
    ("database_url", "transactions"),
    [("postgresql", 300), ("sqlite", 100)],
    indirect=["database_url"],
)
def test_no_committed_event_is_lost_or_applied_twice_when_celery_workers_die_and_redis_forgets(
    engine: Engine,
    database_url: str,
    redis_url: str,
    transactions: int,
    tmp_path: Path,
) -> None:
    random.seed(10)
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    env = celery_environment(
        redis_url,
        database_url,
        lease=2,
        republish=2,
        DURABLE_DELAY=str(DELAY),
        DURABLE_BUSY=str(tmp_path),
    )
    workers = [start_celery_worker(env) for _ in range(2)]
    started = [time.monotonic()] * 2
    relay = start_relay(env)
    worker_kills = child_kills = tick = 0
    relay_killed = flushed = False
    producer = Transactions(
        engine, transactions, rolled_back_every=ROLLED_BACK_EVERY, pause=PAUSE
    )
    producer.start()
    try:
        while producer.producing.is_set() or worker_kills < 2 or child_kills < 3:
            time.sleep(random.uniform(1, 2))
            victim = started.index(min(started))
            tick += 1
            if tick % 3 == 0 and time.monotonic() - started[victim] > WORKER_LIFE:
                kill_group(workers[victim])
                worker_kills += 1
                workers[victim] = start_celery_worker(env)
                started[victim] = time.monotonic()
            else:
                children = [c for w in workers for c in pool_children(w.pid)]
                # A child inside a receiver if there is one: on a loaded
                # machine a random pick often finds only idle ones.
                busy = [c for c in children if (tmp_path / str(c)).exists()]
                if children:
                    os.kill(random.choice(busy or children), signal.SIGKILL)
                    child_kills += 1
            if worker_kills == 1 and not relay_killed:
                kill_group(relay)
                relay_killed = True
                relay = start_relay(env)
            if worker_kills + child_kills == 4 and not flushed:
                client.flushall()  # every queued and unacknowledged message
                flushed = True
        producer.join()
        wait_until(lambda: nothing_open(engine), 60, "every event to be done")
    finally:
        for worker in workers:
            stop_gracefully(worker)
        stop_gracefully(relay)
        producer.join()
        client.close()

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
    assert relay_killed
    assert worker_kills >= 2
    assert child_kills >= 3
    assert flushed
    assert len(producer.committed) == transactions - transactions // ROLLED_BACK_EVERY
    assert set(handled) == set(producer.committed)  # none lost, none from a rollback
    assert set(handled.values()) == {1}  # one database effect per event
    assert events == len(producer.committed)
    assert attempts > events, "no kill interrupted a delivery: the run proved nothing"
    final = status(_app.outbox)
    assert (final.pending, final.retrying, final.running, final.dead) == (0, 0, 0, 0)
    assert final.done == len(producer.committed)
