"""Celery worker and relay processes of the Celery tests, and the test transport."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import _app
from _processes import environment
from celery import Celery
from sqlalchemy import Engine, func, select

from tocsin.durable import status
from tocsin.integrations.celery import CeleryTransport, bind

CELERY = str(Path(sys.executable).with_name("celery"))


def celery_environment(
    broker: str,
    database: str,
    *,
    lease: float = 2.0,
    republish: float = 2.0,
    **extra: str,
) -> dict[str, str]:
    return environment(
        TOCSIN_TEST_BROKER=broker,
        TOCSIN_TEST_DATABASE=database,
        TOCSIN_TEST_LEASE=str(lease),
        TOCSIN_TEST_REPUBLISH=str(republish),
        **extra,
    )


def start_celery_worker(
    env: dict[str, str], *, pool: str = "prefork", concurrency: int = 2
) -> subprocess.Popen[bytes]:
    """``celery -A _celery_app worker`` in a session of its own (so that a
    kill of its group takes the pool children too)."""
    return subprocess.Popen(
        [
            CELERY, "-A", "_celery_app", "worker",
            "--pool", pool, "--concurrency", str(concurrency),
            "--without-heartbeat", "--without-gossip", "--without-mingle",
            "--loglevel", "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # a full pipe would block a busy worker
        start_new_session=True,
    )  # fmt: skip


def start_relay(env: dict[str, str], *options: str) -> subprocess.Popen[bytes]:
    """``tocsin relay -A _celery_app`` (``python -m tocsin``)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tocsin", "relay", "-A", "_celery_app",
         "--poll", "0.05", "--loglevel", "error", *options],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # a full pipe would block a busy worker
        start_new_session=True,
    )  # fmt: skip


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and everything in its session; reap it."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def stop_gracefully(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    process.terminate()
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout)
    kill_group(process)


@contextmanager
def bound_here(
    engine: Engine,
    broker: str,
    *,
    lease: float = 300.0,
    republish_after: float | None = None,
) -> Iterator[CeleryTransport]:
    """The test app's outbox bound to a Celery app of this process; the
    previous transport restored afterwards."""
    app = Celery("tocsin_tests_here", broker=broker)
    previous = _app.outbox.transport
    transport = bind(
        app, _app.outbox, lease=lease, republish_after=republish_after, check=False
    )
    try:
        yield transport
    finally:
        _app.outbox.transport = previous
        app.close()


def wait_until(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def nothing_open(engine: Engine) -> bool:
    now = status(_app.outbox)
    return now.pending + now.retrying + now.running == 0


def effects_by_event(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(_app.Effect.event_id, func.count()).group_by(_app.Effect.event_id)
        ).all()
    return dict(rows)
