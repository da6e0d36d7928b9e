"""Durable receivers delivered by Celery workers on Redis, beside the embedded worker.

Run alone with ``python -m benchmarks --only celery --no-write``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from celery import Celery
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from . import bench_durable
from ._harness import format_time, goal_line, markdown_table, ratio
from .bench_durable import HERE, _done_times, _enqueue_jobs, _sqlite


@contextmanager
def _celery_workers(broker: str, url: str, count: int) -> Iterator[None]:
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(HERE.parent), *sys.path]),
        BENCH_BROKER=broker,
        BENCH_DATABASE=url,
    )
    celery = str(Path(sys.executable).with_name("celery"))
    command = [
        celery, "-A", "benchmarks._durable_celery", "worker",
        "--pool", "prefork", "--concurrency", "1",
        "--without-heartbeat", "--without-gossip", "--without-mingle",
        "--loglevel", "warning",
    ]  # fmt: skip
    processes = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(count)
    ]
    try:
        time.sleep(4)  # the workers are up and idle
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)


@contextmanager
def _relay(engine: Engine, broker: str) -> Iterator[None]:
    from tocsin.integrations.celery import bind

    from . import _durable_app as app

    celery_app = Celery("tocsin_bench_relay", broker=broker)
    previous = app.outbox.transport
    relay = bind(celery_app, app.outbox, check=False).relay(poll_interval=0.05)
    relay.start()
    try:
        yield
    finally:
        relay.stop()
        app.outbox.transport = previous
        celery_app.close()


def _wait_all_done(engine: Engine, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _done_times(engine)[0] and time.monotonic() < deadline:
        time.sleep(0.1)


def _throughput(
    engine: Engine, url: str, broker: str, workers: int, events: int
) -> float:
    from . import _durable_app as app

    with engine.begin() as connection:
        connection.execute(app.outbox.table.delete())
    with _celery_workers(broker, url, workers):
        _enqueue_jobs(engine, events)  # committed while the relay is off
        with _relay(engine, broker):
            _wait_all_done(engine, 300)
    _, times = _done_times(engine)
    done = sorted(b for _, b in times)
    return (len(done) - 1) / (done[-1] - done[0])


def _latency(engine: Engine, url: str, broker: str, events: int) -> list[float]:
    from . import _durable_app as app

    with engine.begin() as connection:
        connection.execute(app.outbox.table.delete())
    with _celery_workers(broker, url, 1), _relay(engine, broker):
        for _ in range(events):
            _enqueue_jobs(engine, 1)
            time.sleep(0.05)
        _wait_all_done(engine, 60)
    _, times = _done_times(engine)
    return sorted(done - created for created, done in times)


def _measure(
    engine: Engine, url: str, broker: str, quick: bool
) -> dict[str, dict[str, Any]]:
    from . import _durable_app as app

    app.Base.metadata.drop_all(engine)
    app.Base.metadata.create_all(engine)
    app.outbox.bind(engine)
    events = 200 if quick else 600
    count = 40 if quick else 200
    celery: dict[str, Any] = {"events": events, "lost": 0}
    embedded: dict[str, Any] = {"events": events, "lost": 0}
    # Interleaved, so that both meet the machine's good and bad moments.
    for workers in (1, 2):
        celery[workers] = _throughput(engine, url, broker, workers, events)
        celery["lost"] += _undone(engine)
        embedded[workers] = bench_durable._throughput(
            engine, url, workers, events, "--prefetch", "1"
        )
        embedded["lost"] += _undone(engine)
    _percentiles(celery, _latency(engine, url, broker, count))
    celery["lost"] += _undone(engine)
    _percentiles(embedded, bench_durable._latency(engine, url, count))
    embedded["lost"] += _undone(engine)
    engine.dispose()
    return {"Celery": celery, "embedded worker": embedded}


def _undone(engine: Engine) -> int:
    return _done_times(engine)[0]


def _percentiles(result: dict[str, Any], latencies: list[float]) -> None:
    result["count"] = len(latencies)
    result["median"] = statistics.median(latencies)
    result["p99"] = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]


def run(quick: bool) -> str:
    from . import _durable_app as app
    from ._postgres import PostgresUnavailable, throwaway_postgres
    from ._redis import throwaway_redis

    results: dict[str, dict[str, Any]] = {}
    load_before = os.getloadavg()[0]
    with throwaway_redis() as broker:
        try:
            with throwaway_postgres("fsync=on") as url:
                for how, result in _measure(
                    create_engine(url), url, broker, quick
                ).items():
                    results[f"PostgreSQL, {how}"] = result
        except PostgresUnavailable:
            path = Path(tempfile.mkdtemp(prefix="tocsin-bench-celery-")) / "bench.db"
            url = f"sqlite:///{path}"
            for how, result in _measure(_sqlite(path), url, broker, quick).items():
                results[f"SQLite, {how}"] = result
    rows = [
        [
            name,
            f"{result[1]:.0f} / {result[2]:.0f} ({ratio(result[2], result[1])})",
            format_time(result["median"]),
            format_time(result["p99"]),
        ]
        for name, result in results.items()
    ]
    goals = [
        goal_line(
            f"{name}: latency from commit to handled, p99 under 1 s, no event "
            "left undelivered",
            result["p99"] < 1.0 and result["lost"] == 0,
            f"median {format_time(result['median'])}, p99 "
            f"{format_time(result['p99'])}, {result['lost']} undelivered",
        )
        for name, result in results.items()
    ]
    load = max(load_before, os.getloadavg()[0])
    first = next(iter(results.values()))
    return "\n".join(
        [
            "## Durable receivers on Celery",
            "",
            "The same outbox and receiver as in *Durable receivers*, delivered by "
            "`celery -A ... worker` processes (prefork, one child each) on a "
            "throwaway `redis-server`, with the relay as a thread of the "
            "benchmark (polling every 50 ms). Throughput: a backlog of "
            f"{first['events']} events whose receiver waits "
            f"{app.EXTERNAL_CALL * 1000:.0f} ms, from the first delivery to the "
            f"last. Latency: {first['count']} events committed one by one at "
            "20/s, from the outbox insert to the done mark (relay poll, Redis, "
            "the task's claim and commit). The embedded worker's rows are "
            "measured in the same run, on the same database, interleaved with "
            "Celery's (`tocsin worker`, `--prefetch 1`): each Celery delivery "
            "adds a publish, a claim by id and the relay's `published_at` "
            "update.",
            "",
            f"The machine's load average reached {load:.1f} during the run, on "
            f"{os.cpu_count()} CPUs"
            + (
                ": other work shared it, so the absolute figures (and the "
                "embedded worker's, against its own section) are lower than an "
                "idle machine's; the rows here were measured together."
                if load > (os.cpu_count() or 1)
                else "."
            ),
            "",
            markdown_table(
                [
                    "Database, delivered by",
                    "events/s, 1 / 2 workers",
                    "latency median",
                    "latency p99",
                ],
                rows,
            ),
            "",
            *goals,
        ]
    )
