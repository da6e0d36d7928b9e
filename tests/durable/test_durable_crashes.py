"""Deterministic crash points: a process killed with SIGKILL at each step of an event's life."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import _app
from _processes import HERE, environment, start_worker, wait_dead
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tocsin.durable import Worker, status

SIGKILLED = -9


def outbox_rows(engine: Engine) -> list[tuple[str, int]]:
    table = _app.outbox.table
    with engine.connect() as connection:
        return [
            (row.state, row.attempts)
            for row in connection.execute(select(table).order_by(table.c.id))
        ]


def effect_notes(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(select(_app.Effect.note)))


def send_and_die(url: str, point: str) -> None:
    process = subprocess.run(
        [sys.executable, str(HERE / "_send_and_die.py"), url, point],
        env=environment(),
        capture_output=True,
        timeout=60,
    )
    assert process.returncode == SIGKILLED, process.stderr.decode()


def test_a_sender_killed_after_the_insert_before_the_commit_leaves_no_event(
    engine: Engine, database_url: str
) -> None:
    send_and_die(database_url, "before-commit")
    assert outbox_rows(engine) == []
    with Session(engine) as session:
        assert session.scalars(select(_app.Item)).all() == []


def test_a_sender_killed_right_after_the_commit_leaves_its_event_for_a_worker(
    engine: Engine, database_url: str
) -> None:
    send_and_die(database_url, "after-commit")
    assert outbox_rows(engine) == [("pending", 0)]
    assert Worker(_app.outbox).run_once() == 1
    assert outbox_rows(engine) == [("done", 1)]
    assert effect_notes(engine) == ["after-commit"]


def test_a_worker_killed_during_the_receiver_loses_its_writes_and_the_event_comes_back(
    engine: Engine, database_url: str
) -> None:
    worker = start_worker(database_url, crash="during-receiver", lease=0.5)
    with Session(engine) as session:
        session.add(_app.Item(name="interrupted"))
        session.commit()
    assert wait_dead(worker)[0] == SIGKILLED
    assert outbox_rows(engine) == [("running", 1)]
    assert effect_notes(engine) == []  # flushed, never committed
    assert Worker(_app.outbox).run_once() == 0  # still leased
    time.sleep(0.6)
    assert Worker(_app.outbox).run_once() == 1
    assert outbox_rows(engine) == [("done", 2)]
    assert effect_notes(engine) == ["interrupted"]


def test_a_worker_killed_after_the_receivers_commit_does_not_redeliver(
    engine: Engine, database_url: str
) -> None:
    worker = start_worker(database_url, crash="after-receiver-commit", lease=0.2)
    with Session(engine) as session:
        session.add(_app.Item(name="once"))
        session.commit()
    assert wait_dead(worker)[0] == SIGKILLED
    assert outbox_rows(engine) == [("done", 1)]
    time.sleep(0.3)  # the lease would have lapsed: the row is done anyway
    assert Worker(_app.outbox).run_once() == 0
    assert effect_notes(engine) == ["once"]
    assert status(_app.outbox).done == 1


def wait_running(engine: Engine) -> None:
    deadline = time.monotonic() + 30
    while outbox_rows(engine) != [("running", 1)]:
        assert time.monotonic() < deadline, outbox_rows(engine)
        time.sleep(0.02)


def test_sigterm_lets_the_worker_finish_the_event_in_hand_and_exit_cleanly(
    engine: Engine, database_url: str
) -> None:
    worker = start_worker(database_url, delay=0.5)
    with Session(engine) as session:
        session.add(_app.Item(name="finished"))
        session.commit()
    wait_running(engine)
    worker.send_signal(signal.SIGTERM)
    returncode, stderr = wait_dead(worker)
    assert returncode == 0, stderr
    assert "SIGTERM: finishing the events in hand" in stderr
    assert outbox_rows(engine) == [("done", 1)]
    assert effect_notes(engine) == ["finished"]


def test_a_second_sigint_quits_at_once_and_the_lease_gives_the_event_back(
    engine: Engine, database_url: str
) -> None:
    worker = start_worker(database_url, delay=30, lease=0.5)
    with Session(engine) as session:
        session.add(_app.Item(name="abandoned"))
        session.commit()
    wait_running(engine)
    worker.send_signal(signal.SIGINT)
    time.sleep(0.1)
    worker.send_signal(signal.SIGINT)
    returncode, stderr = wait_dead(worker, timeout=5)
    assert returncode == 1
    assert "SIGINT: finishing the events in hand (again to quit now)" in stderr
    time.sleep(0.5)
    assert Worker(_app.outbox).run_once() == 1
    assert outbox_rows(engine) == [("done", 2)]
