"""The service of benchmarks/service under load: every count is exact.

A real uvicorn server (a subprocess on 127.0.0.1) serves the service on
SQLite and on PostgreSQL; a few hundred mixed requests at concurrency 50
include rolled-back signups and orders, failed logins, and clients that
disconnect mid-request. Afterwards the database, the service's outbox and
the server's log must agree exactly. The variant doing the same work by hand
(the benchmark's baseline) must pass the same checks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _servers import wait_for
from benchmarks.service.app import ORDER_LIMIT
from benchmarks.service.load import (
    Step,
    disconnect_midway,
    mixed_steps,
    run_load,
    seed_users,
    serve,
)
from benchmarks.service.models import Audit, Base, Order, Profile, User
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Engine, make_url

REQUESTS = 300
CONCURRENCY = 50
DISCONNECTS = 20


@dataclasses.dataclass
class Database:
    async_url: str
    engine: Engine


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty database of its own: the service creates its tables."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path}/service.db")
        yield Database(f"sqlite+aiosqlite:///{tmp_path}/service.db", engine)
        engine.dispose()
        return
    server_url = make_url(request.getfixturevalue("postgres_url"))
    name = f"soak_{request.node.callspec.id.replace('-', '_')}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = server_url.set(database=name)
    engine = create_engine(url)
    yield Database(
        url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False),
        engine,
    )
    engine.dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def disconnecting_steps(users: list[Any]) -> list[Step]:
    """Signups and orders held open 150 ms, whose clients leave after 20 ms."""
    steps = []
    for index in range(DISCONNECTS):
        request_id = f"soak-gone-{index}"
        if index % 2 == 0:
            body = {
                "email": f"{request_id}@example.org",
                "name": "gone",
                "password": f"pw-{request_id}-secret",
            }
            steps.append(Step("signup", "/signup?delay_ms=150", body, request_id))
        else:
            body = {"user_id": users[index].id, "total": 7}
            steps.append(Step("order", "/orders?delay_ms=150", body, request_id))
    return steps


async def soak(base_url: str, steps: list[Step], gone: list[Step]) -> Any:
    load, *_ = await asyncio.gather(
        run_load(base_url, steps, CONCURRENCY, timeout=60),
        *(disconnect_midway(base_url, step, after=0.02) for step in gone),
    )
    return load.load


@pytest.mark.parametrize("with_tocsin", [True, False], ids=["tocsin", "by-hand"])
def test_service_under_load_keeps_every_count_exact(
    database: Database, with_tocsin: bool, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    with serve(
        database.async_url, with_tocsin=with_tocsin, log=log, log_level="info"
    ) as server:
        users = seed_users(server.url, "soak", 30)
        steps = mixed_steps("soak", REQUESTS, users)
        gone = disconnecting_steps(users)
        load = asyncio.run(soak(server.url, steps, gone))
        every_request = {step.request_id for step in [*steps, *gone]}
        seeds = {f"soak-seed-{index}" for index in range(30)}

        def all_finished() -> bool:
            finished = httpx.get(f"{server.url}/_outbox").json()["finished"]
            return every_request <= set(finished)

        wait_for(all_finished, timeout=15)
        outbox = httpx.get(f"{server.url}/_outbox").json()
    server_log = log.read_text()

    # Every request that was answered got the status its kind calls for.
    assert load.unexpected() == {}
    assert load.requests == REQUESTS

    # One request_started and one request_finished per request, disconnected
    # ones included; nothing else was counted.
    ours = every_request | seeds
    assert {
        rid: n for rid, n in outbox["started"].items() if rid in ours
    } == dict.fromkeys(ours, 1)
    assert {
        rid: n for rid, n in outbox["finished"].items() if rid in ours
    } == dict.fromkeys(ours, 1)
    assert set(outbox["started"]) - ours <= {"-"}  # /_outbox polls carry no id

    with database.engine.connect() as connection:
        users_rows = connection.execute(
            select(User.id, User.email, User.request_id, User.last_login)
        ).all()
        profiles = connection.execute(select(Profile.user_id)).scalars().all()
        orders = connection.execute(
            select(Order.id, Order.request_id, Order.total)
        ).all()
        audits = connection.execute(select(Audit.request_id, Audit.detail)).all()
        dump = [
            tuple(row)
            for table in Base.metadata.sorted_tables
            for row in connection.execute(select(table)).all()
        ]

    # Users: the seeds and every signup answered 201 are committed; duplicates
    # rolled back and wrote nothing.
    by_kind = {
        kind: {s.request_id for s in steps if s.kind == kind}
        for kind in {s.kind for s in steps}
    }
    committed_signups = {row.request_id for row in users_rows}
    assert seeds | by_kind["signup"] <= committed_signups
    assert committed_signups <= seeds | by_kind["signup"] | {s.request_id for s in gone}
    assert not committed_signups & by_kind["signup_duplicate"]

    # One Profile per committed user.
    assert Counter(profiles) == Counter(row.id for row in users_rows)

    # One welcome email per committed user, sent after the commit of the
    # request that created the user, and none for rolled-back signups.
    emails = outbox["emails"]
    assert Counter(e["user"] for e in emails) == Counter(row.id for row in users_rows)
    scheduled_in = {row.id: row.request_id for row in users_rows}
    assert all(
        e["scheduled_in"] == e["sent_in"] == scheduled_in[e["user"]] for e in emails
    )

    # One fulfilment per committed order, in the request that placed it;
    # orders over the limit rolled back and were never fulfilled.
    fulfilments = outbox["fulfilments"]
    assert Counter(f["order"] for f in fulfilments) == Counter(row.id for row in orders)
    order_request = {row.id: row.request_id for row in orders}
    assert all(
        f["scheduled_in"] == f["run_in"] == order_request[f["order"]]
        for f in fulfilments
    )
    assert {row.request_id for row in orders} >= by_kind["order"]
    assert all(row.total <= ORDER_LIMIT for row in orders)

    # One audit row per failed login, password masked; successful logins
    # recorded their time.
    failed = by_kind["login_wrong_password"] | by_kind["login_unknown"]
    assert Counter(row.request_id for row in audits) == Counter(failed)
    assert all(json.loads(row.detail)["password"] == "*" * 20 for row in audits)
    logged_in = {s.body["email"] for s in steps if s.kind == "login"}
    assert {row.email for row in users_rows if row.last_login is not None} == logged_in

    # No password anywhere: rows, outbox, server log (which did log requests).
    passwords = {s.body["password"] for s in [*steps, *gone] if "password" in s.body}
    passwords |= {user.password for user in users}
    assert "signup of" in server_log
    assert "POST /login" in server_log
    written = [server_log, json.dumps(outbox), repr(dump)]
    leaked = sorted(p for p in passwords if any(p in text_ for text_ in written))
    assert leaked == []
