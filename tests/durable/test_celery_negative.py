"""Negative controls: the Celery settings that tocsin enforces are what save events.

The same chaos each time, made certain rather than likely: each event's first
attempt stalls inside its receiver (``DURABLE_STALL``) and the pool child
running it is killed with SIGKILL right there. The reconciler is off (the
relay republishes nothing for an hour), so only Celery can bring an event
back. With tocsin's settings it does; with late acknowledgement off, or
reject-on-worker-lost off, the broker forgets the message and the event stays
published but never done, until the reconciler is turned on.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import _app
import pytest
import redis
from _celery_processes import (
    bound_here,
    celery_environment,
    effects_by_event,
    nothing_open,
    start_celery_worker,
    stop_gracefully,
    wait_until,
)
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tocsin.durable import status

EVENTS = 2
LEASE = 8.0  # the hard time limit too: well past the kill, even on a busy machine
KILL_AFTER = 1.0  # seconds inside the receiver before the kill
NO_RECONCILER = 3600.0  # republish_after: not within the test


def kill_each_stalled_receiver(markers: Path) -> list[int]:
    """SIGKILL the pool child of each event's first attempt, a second after it
    entered the receiver; the killed process ids.

    Not at once: a child killed before its parent has read that it started
    the job is not seen as lost (billiard knows the job by the child's
    acknowledgement); the job then ends by its hard time limit, a path that
    acknowledges the message under any setting (the reconciler's case).
    """
    seen: dict[str, float] = {}
    killed: dict[str, int] = {}

    def kill_due() -> bool:
        now = time.monotonic()
        for marker in markers.iterdir():
            if not marker.suffix:
                seen.setdefault(marker.name, now)
        for name, since in seen.items():
            if name not in killed and now - since >= KILL_AFTER:
                pid = int((markers / name).read_text())
                os.kill(pid, signal.SIGKILL)
                killed[name] = pid
        return len(killed) == EVENTS

    wait_until(kill_due, 60, f"{EVENTS} receivers to stall")
    return list(killed.values())


def broker_holds_nothing(client: redis.Redis) -> bool:
    """No message queued, and none delivered but unacknowledged."""
    return client.llen("celery") == 0 and client.hlen("unacked") == 0


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("unsafe", ["", "late-ack", "reject-on-worker-lost"])
def test_a_pool_child_killed_mid_receiver_loses_its_event_only_under_unsafe_settings(
    engine: Engine, database_url: str, redis_url: str, tmp_path: Path, unsafe: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    markers = tmp_path / "stalls"
    markers.mkdir()
    env = celery_environment(
        redis_url,
        database_url,
        lease=LEASE,
        DURABLE_STALL=str(markers),
        TOCSIN_TEST_UNSAFE=unsafe,
        TOCSIN_TEST_CHECK="off",
    )
    worker = start_celery_worker(env, concurrency=1)
    try:
        with bound_here(
            engine, redis_url, lease=LEASE, republish_after=NO_RECONCILER
        ) as transport:
            relay = transport.relay(poll_interval=0.05)
            relay.start()
            try:
                for n in range(EVENTS):
                    with Session(engine) as session:
                        session.add(_app.Item(name=f"stalled{n}"))
                        session.commit()
                killed = kill_each_stalled_receiver(markers)
                if not unsafe:
                    # Celery puts each message back; the task waits out the
                    # dead child's lease, then delivers.
                    wait_until(lambda: nothing_open(engine), 60, "the events")
                else:
                    wait_until(
                        lambda: broker_holds_nothing(client), 30, "the broker to drop"
                    )
                    # Past every lease: still nobody delivers them.
                    wait_until(lambda: lapsed(engine), 2 * LEASE, "the leases to lapse")
                    lost = status(_app.outbox)
                    published_not_done = unfinished_published_rows(engine)
                    with Session(engine) as session:
                        effects = session.scalars(select(_app.Effect.note)).all()
                    # The reconciler on: it republishes what the broker lost.
                    transport.republish_after = 0.5
                    wait_until(lambda: nothing_open(engine), 60, "the reconciler")
            finally:
                relay.stop()
    finally:
        stop_gracefully(worker)
        client.close()

    assert len(set(killed)) == EVENTS
    if unsafe:
        assert (lost.running, lost.done) == (EVENTS, 0), lost
        assert published_not_done == EVENTS
        assert effects == []
    assert status(_app.outbox).done == EVENTS
    assert sorted(effects_by_event(engine).values()) == [1] * EVENTS


def lapsed(engine: Engine) -> bool:
    """Every running row's lease has lapsed."""
    c = _app.outbox.table.c
    with engine.connect() as connection:
        leases = connection.execute(
            select(c.lease_expires_at).where(c.state == "running")
        ).scalars()
        return all(lease < time.time() for lease in leases)


def unfinished_published_rows(engine: Engine) -> int:
    c = _app.outbox.table.c
    with engine.connect() as connection:
        rows = connection.execute(
            select(c.id).where(c.published_at.is_not(None), c.done_at.is_(None))
        ).all()
    return len(rows)
