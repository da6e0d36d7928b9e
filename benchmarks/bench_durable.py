"""Durable receivers: what the outbox row costs a transaction; worker throughput and latency.

Run alone with ``python -m benchmarks --only durable --no-write``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ._harness import format_time, goal_line, markdown_table, measure, ratio

ROWS = 10
PREFETCH = (1, 4)
HERE = Path(__file__).resolve().parent


def _sqlite(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _wal(connection: Any, record: Any) -> None:
        connection.execute("PRAGMA journal_mode=WAL")

    return engine


def _transaction(
    engine: Engine, send: Callable[[Session], None] | None
) -> Callable[[], None]:
    from . import _durable_app as app

    names = [f"n{i}" for i in range(ROWS)]

    def run() -> None:
        with Session(engine) as session:
            session.add_all([app.Item(name=name) for name in names])
            session.flush()
            if send is not None:
                send(session)
            session.commit()

    return run


def _durable_send(session: Session) -> None:
    from tocsin.transaction import unit_of_work

    from . import _durable_app as app

    with unit_of_work(session):
        app.order_placed.send(sender="shop", order_id=1)


def _on_commit_send(session: Session) -> None:
    from tocsin.transaction import unit_of_work

    from . import _durable_app as app

    with unit_of_work(session):
        app.job.send(sender="shop", n=1)


def _noop(sender: Any, **kwargs: Any) -> None:
    pass


def _send_cost(engine: Engine, rounds: int) -> dict[str, float]:
    from . import _durable_app as app

    # The on-commit contender: the same send, to a receiver deferred in memory.
    app.job.disconnect(dispatch_uid="bench.job")
    app.job.connect(_noop, on_commit=True, dispatch_uid="bench.on_commit")
    try:
        return measure(
            {
                "plain": _transaction(engine, None),
                "on_commit": _transaction(engine, _on_commit_send),
                "durable": _transaction(engine, _durable_send),
            },
            number=5,
            rounds=rounds,
        )
    finally:
        app.job.disconnect(dispatch_uid="bench.on_commit")
        app.job.connect(app.on_job, durable=True, dispatch_uid="bench.job")


def _worker(url: str, *options: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent), *sys.path]))
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tocsin",
            "worker",
            "-A",
            "benchmarks._durable_app",
            "--database",
            url,
            "--loglevel",
            "warning",
            *options,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )


@contextmanager
def _workers(url: str, count: int, *options: str) -> Iterator[None]:
    processes = [_worker(url, *options) for _ in range(count)]
    try:
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)


def _done_times(engine: Engine) -> tuple[int, list[tuple[float, float]]]:
    from . import _durable_app as app

    c = app.outbox.table.c
    with engine.connect() as connection:
        open_count = connection.execute(
            select(func.count()).where(c.state != "done")
        ).scalar_one()
        times = connection.execute(
            select(c.created_at, c.done_at).where(c.state == "done")
        ).all()
    return open_count, [(a, b) for a, b in times]


def _enqueue_jobs(engine: Engine, count: int) -> None:
    from tocsin.transaction import unit_of_work

    from . import _durable_app as app

    with Session(engine) as session:
        with unit_of_work(session):
            for n in range(count):
                app.job.send(sender="bench", n=n)
        session.commit()


def _throughput(
    engine: Engine, url: str, processes: int, events: int, *options: str
) -> float:
    """Events per second with a backlog of ``events``, from first to last delivery."""
    from . import _durable_app as app

    with engine.begin() as connection:
        connection.execute(app.outbox.table.delete())
    _enqueue_jobs(engine, events)
    with _workers(url, processes, *options):
        deadline = time.monotonic() + 300
        while _done_times(engine)[0] and time.monotonic() < deadline:
            time.sleep(0.1)
    _, times = _done_times(engine)
    done = sorted(b for _, b in times)
    return (len(done) - 1) / (done[-1] - done[0])


def _latency(engine: Engine, url: str, events: int) -> list[float]:
    """Seconds from commit to handled, for events committed one by one at 20/s."""
    from . import _durable_app as app

    with engine.begin() as connection:
        connection.execute(app.outbox.table.delete())
    with _workers(url, 1):
        time.sleep(2)  # the worker is up and idle
        for _ in range(events):
            _enqueue_jobs(engine, 1)
            time.sleep(0.05)
        deadline = time.monotonic() + 60
        while _done_times(engine)[0] and time.monotonic() < deadline:
            time.sleep(0.1)
    _, times = _done_times(engine)
    return sorted(done - created for created, done in times)


def _measure(engine: Engine, url: str, quick: bool) -> dict[str, Any]:
    from . import _durable_app as app

    app.Base.metadata.drop_all(engine)
    app.Base.metadata.create_all(engine)
    app.outbox.bind(engine)
    rounds = 5 if quick else 21
    events = 200 if quick else 600
    result: dict[str, Any] = {"rounds": rounds, "events": events}
    result["cost"] = _send_cost(engine, rounds)
    for prefetch in PREFETCH:
        option = ("--prefetch", str(prefetch))
        result[1, prefetch] = _throughput(engine, url, 1, events, *option)
        result[2, prefetch] = _throughput(engine, url, 2, events, *option)
    latencies = _latency(engine, url, 40 if quick else 200)
    result["count"] = len(latencies)
    result["median"] = statistics.median(latencies)
    result["p99"] = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    engine.dispose()
    return result


def run(quick: bool) -> str:
    from . import _durable_app as app
    from ._postgres import PostgresUnavailable, throwaway_postgres

    workdir = Path(tempfile.mkdtemp(prefix="tocsin-bench-durable-"))
    path = workdir / "bench.db"
    results = {"SQLite": _measure(_sqlite(path), f"sqlite:///{path}", quick)}
    try:
        # Durable commits (fsync on), as in production: the outbox's point.
        with throwaway_postgres("fsync=on") as url:
            results["PostgreSQL"] = _measure(create_engine(url), url, quick)
    except PostgresUnavailable:
        pass  # the section says PostgreSQL was not measured
    rounds = results["SQLite"]["rounds"]
    send_rows = []
    for label, key in [
        (f"{ROWS} rows, no receiver", "plain"),
        (f"{ROWS} rows + a send to an on_commit receiver", "on_commit"),
        (f"{ROWS} rows + a send to a durable receiver (one outbox row)", "durable"),
    ]:
        row = [label]
        for result in results.values():
            cost = result["cost"]
            row.append(f"{format_time(cost[key])} ({ratio(cost[key], cost['plain'])})")
        send_rows.append(row)
    worker_rows = [
        [
            name,
            *[
                f"{result[1, p]:.0f} / {result[2, p]:.0f} "
                f"({ratio(result[2, p], result[1, p])})"
                for p in PREFETCH
            ],
            format_time(result["median"]),
            format_time(result["p99"]),
        ]
        for name, result in results.items()
    ]
    goals = []
    for name, result in results.items():
        cost = result["cost"]
        goals += [
            goal_line(
                f"{name}: a durable send costs the transaction at most 1.2x",
                cost["durable"] <= 1.2 * cost["plain"],
                ratio(cost["durable"], cost["plain"]),
            ),
            *[
                goal_line(
                    f"{name}: two worker processes deliver at least 1.7x one "
                    f"(--prefetch {p})",
                    result[2, p] >= 1.7 * result[1, p],
                    ratio(result[2, p], result[1, p]),
                )
                for p in PREFETCH
            ],
            goal_line(
                f"{name}: latency from commit to handled, median and p99 under 1 s",
                result["p99"] < 1.0,
                f"median {format_time(result['median'])}, "
                f"p99 {format_time(result['p99'])}",
            ),
        ]
    missing = (
        []
        if "PostgreSQL" in results
        else ["PostgreSQL was not measured: its server binaries are not installed.", ""]
    )
    first = results["SQLite"]
    return "\n".join(
        [
            "## Durable receivers",
            "",
            "SQLite is a file database in WAL mode; PostgreSQL a throwaway local "
            "server with fsync on: commits are real, the outbox row is durable "
            "when `commit()` returns. The sending transaction writes "
            f"{ROWS} rows with model signals installed, then commits; the durable "
            "contender also sends a custom signal to one durable receiver, which "
            "writes one outbox row in that transaction; the on_commit contender "
            "sends the same signal to a receiver connected with "
            f"`on_commit=True`. Medians of {rounds} interleaved rounds.",
            "",
            *missing,
            markdown_table(["Transaction", *results], send_rows),
            "",
            "Workers are `tocsin worker` processes (concurrency 1, default "
            "polling), claiming one event at a time (the default) or four "
            f"(`--prefetch 4`). Throughput: a backlog of {first['events']} events whose "
            f"receiver waits {app.EXTERNAL_CALL * 1000:.0f} ms (an external "
            "call), from the first delivery to the last. Latency: "
            f"{first['count']} events committed one by one at 20/s to an idle "
            "worker, from the outbox insert to the done mark.",
            "",
            markdown_table(
                [
                    "Database",
                    *[f"events/s, 1 / 2 workers, --prefetch {p}" for p in PREFETCH],
                    "latency median",
                    "latency p99",
                ],
                worker_rows,
            ),
            "",
            *goals,
        ]
    )
