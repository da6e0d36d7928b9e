"""A real service with and without tocsin: what the whole stack pays.

The service of :mod:`benchmarks.service` (FastAPI, SQLAlchemy ``AsyncSession``)
runs in two uvicorn subprocesses on 127.0.0.1, one with tocsin and one doing
the same work by hand, on PostgreSQL (asyncpg) and on SQLite (aiosqlite). Each
round sends the same mix of requests to each, in slices that alternate
between the two, and times it: signups (one in six a duplicate email,
rolled back), logins (two in five failing, audited) and orders (one in four
over the limit, rolled back).
"""

from __future__ import annotations

import os
import statistics
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ._harness import format_time, goal_line, markdown_table
from ._postgres import throwaway_postgres
from .service.load import SeededUser, Server, drive, mixed_steps, seed_users, serve

GOAL = 0.95  # requests per second with tocsin / by hand, on PostgreSQL, at least
VARIANTS = ("by hand", "tocsin")
SLICES = 6  # alternations between the variants per round


@dataclass
class Rounds:
    """Per variant, one figure per round."""

    per_second: dict[str, list[float]] = field(
        default_factory=lambda: {variant: [] for variant in VARIANTS}
    )
    cpu_per_request: dict[str, list[float]] = field(
        default_factory=lambda: {variant: [] for variant in VARIANTS}
    )


def measure_service(
    database_urls: dict[str, dict[str, str]],
    *,
    requests: int,
    concurrency: int,
    rounds: int,
    workdir: Path,
) -> dict[str, Rounds]:
    """Requests per second and server CPU per request, per round, per database.

    ``database_urls`` maps a database's name to one async URL per variant
    (``{"PostgreSQL": {"by hand": url, "tocsin": url}}``).

    Raises:
        RuntimeError: A request got an unexpected status, or the two
            variants did not do the same work.
    """
    results: dict[str, Rounds] = {}
    for database, urls in database_urls.items():
        with ExitStack() as stack:
            servers: dict[str, Server] = {}
            users: dict[str, list[SeededUser]] = {}
            for variant in VARIANTS:
                servers[variant] = stack.enter_context(
                    serve(
                        urls[variant],
                        with_tocsin=variant == "tocsin",
                        log=workdir / f"{database}-{variant}.log",
                    )
                )
                users[variant] = seed_users(servers[variant].url, _slug(variant), 50)
                # Warm up: connections, prepared statements, caches.
                _run(
                    variant,
                    servers[variant],
                    "warm",
                    requests // 5,
                    concurrency,
                    users[variant],
                )
            figures = Rounds()
            for round_index in range(rounds):
                seconds = dict.fromkeys(VARIANTS, 0.0)
                cpu = dict.fromkeys(VARIANTS, 0.0)
                # Each round's requests go in slices, alternating between the
                # variants, so that a busy spell of the machine (other
                # processes) falls on both rather than on one.
                for slice_index in range(SLICES):
                    turn = round_index * SLICES + slice_index
                    order = VARIANTS if turn % 2 == 0 else VARIANTS[::-1]
                    for variant in order:
                        elapsed, used = _run(
                            variant,
                            servers[variant],
                            f"r{round_index}s{slice_index}",
                            requests // SLICES,
                            concurrency,
                            users[variant],
                        )
                        seconds[variant] += elapsed
                        cpu[variant] += used
                done = requests // SLICES * SLICES
                for variant in VARIANTS:
                    figures.per_second[variant].append(done / seconds[variant])
                    figures.cpu_per_request[variant].append(cpu[variant] / done)
            _check_same_work(servers)
            results[database] = figures
    return results


def _slug(variant: str) -> str:
    return variant.replace(" ", "-")


def _run(
    variant: str,
    server: Server,
    run: str,
    requests: int,
    concurrency: int,
    users: list[SeededUser],
) -> tuple[float, float]:
    """One load: its duration and the server's CPU seconds, both in seconds."""
    steps = mixed_steps(f"{_slug(variant)}-{run}", requests, users)
    cpu_before = server_cpu(server)
    load = drive(server.url, steps, concurrency=concurrency, timeout=600)
    cpu_used = server_cpu(server) - cpu_before
    if load.unexpected():
        raise RuntimeError(
            f"{server.url}: unexpected statuses {load.unexpected()} (log: {server.log})"
        )
    return load.seconds, cpu_used


def server_cpu(server: Server) -> float:
    """CPU seconds the server process has used (user + system), from /proc.

    It depends less than throughput on what else the machine runs: waiting
    for the CPU is not counted (cache misses and smaller batches per event
    loop turn still are).
    """
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1]
    user, system = fields.split()[11:13]
    return (int(user) + int(system)) / os.sysconf("SC_CLK_TCK")


def _check_same_work(servers: dict[str, Server]) -> None:
    done = {}
    for variant, server in servers.items():
        outbox = httpx.get(f"{server.url}/_outbox", timeout=30).json()
        done[variant] = (
            len(outbox["emails"]),
            len(outbox["fulfilments"]),
            sum(outbox["started"].values()),
            sum(outbox["finished"].values()),
        )
    if len(set(done.values())) != 1:
        raise RuntimeError(
            "the two variants did not do the same work (emails, fulfilments, "
            f"requests started, finished): {done}"
        )


def run(quick: bool) -> str:
    requests = 600 if quick else 3000
    concurrency = 100
    rounds = 1 if quick else 5
    with (
        tempfile.TemporaryDirectory(prefix="tocsin-service-") as workdir,
        throwaway_postgres("max_connections=200") as postgres,
    ):
        asyncpg = postgres.replace("+psycopg", "+asyncpg")
        results = measure_service(
            {
                "PostgreSQL": dict.fromkeys(VARIANTS, asyncpg),
                "SQLite": {
                    variant: f"sqlite+aiosqlite:///{workdir}/{_slug(variant)}.db"
                    for variant in VARIANTS
                },
            },
            requests=requests,
            concurrency=concurrency,
            rounds=rounds,
            workdir=Path(workdir),
        )
    return report(results, requests=requests, concurrency=concurrency, rounds=rounds)


def paired(figures: dict[str, list[float]]) -> list[float]:
    """Each round's tocsin / by hand."""
    return [
        tocsin / by_hand
        for tocsin, by_hand in zip(figures["tocsin"], figures["by hand"], strict=True)
    ]


def report(
    results: dict[str, Rounds],
    *,
    requests: int,
    concurrency: int,
    rounds: int,
) -> str:
    rows = []
    for database, figures in results.items():
        speed = paired(figures.per_second)
        cpu = paired(figures.cpu_per_request)
        hand_cpu = statistics.median(figures.cpu_per_request["by hand"])
        tocsin_cpu = statistics.median(figures.cpu_per_request["tocsin"])
        rows.append(
            [
                database,
                f"{statistics.median(figures.per_second['by hand']):,.0f}",
                f"{statistics.median(figures.per_second['tocsin']):,.0f}",
                f"**{statistics.median(speed):.3f}x**",
                ", ".join(f"{value:.2f}" for value in speed),
                f"{format_time(hand_cpu)} / {format_time(tocsin_cpu)}",
                f"{statistics.median(cpu):.3f}x",
            ]
        )
    table = markdown_table(
        [
            "database",
            "by hand, requests/s",
            "tocsin, requests/s",
            "throughput, tocsin / by hand",
            "each round",
            "server CPU per request, by hand / tocsin",
            "CPU, tocsin / by hand",
        ],
        rows,
    )
    postgres = statistics.median(paired(results["PostgreSQL"].per_second))
    return "\n".join(
        [
            "## A service: FastAPI + SQLAlchemy AsyncSession, with and without tocsin",
            "",
            "The service of `benchmarks/service/` served by uvicorn in a "
            "subprocess on 127.0.0.1, once with tocsin (`install()`, "
            "`RequestSignalsMiddleware`, receivers: the Profile on `post_save`, "
            "the welcome email and the order fulfilment `on_commit=True`, the "
            "login audit on `user_login_failed`) and once doing the same work "
            "by hand in its handlers. Each round sends "
            f"{requests:,} requests at concurrency {concurrency} to each "
            f"variant, in {SLICES} slices that alternate between the variants "
            "(signups, a sixth of them duplicates that roll back; logins, two "
            "in five failing; orders, one in four rolled back), "
            f"{rounds} rounds. Figures are medians over the rounds; the "
            "ratios are medians of each round's ratio. *Server CPU per "
            "request* is the CPU time of the server process (user + system) "
            "over the round divided by its requests: it depends less than "
            "throughput on what else the machine runs. The client, the server "
            "and the database share this machine's CPUs, so on a busy machine "
            "single rounds scatter widely; read the median. Run this section "
            "alone with `make bench ARGS='--only service'`.",
            "",
            table,
            "",
            goal_line(
                f"with tocsin the service keeps >= {GOAL:.2f}x of its requests "
                "per second on PostgreSQL",
                postgres >= GOAL,
                f"{postgres:.3f}x",
            ),
            "",
        ]
    )
