"""Start the service in a subprocess and drive a bounded load at it over HTTP.

Everything listens on 127.0.0.1 only. A load is a fixed list of requests sent
by a fixed number of concurrent workers, under an overall time limit: it
stops by itself, whatever the server does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .._net import free_port
from .app import ORDER_LIMIT

__all__ = [
    "EXPECTED_STATUS",
    "Load",
    "Results",
    "SeededUser",
    "Server",
    "Step",
    "disconnect_midway",
    "drive",
    "mixed_steps",
    "run_load",
    "seed_users",
    "serve",
]

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 15.0

#: The status each kind of request must get.
EXPECTED_STATUS = {
    "signup": 201,
    "signup_duplicate": 409,
    "login": 200,
    "login_wrong_password": 401,
    "login_unknown": 401,
    "order": 201,
    "order_over_limit": 422,
}

# One cycle of the mix: 6 signups (1 of them a duplicate: rolled back), 5
# logins (2 of them failed), 4 orders (1 of them rolled back), per 15 requests.
_CYCLE = (
    "signup",
    "login",
    "order",
    "signup",
    "login_wrong_password",
    "order",
    "signup",
    "login",
    "order_over_limit",
    "signup_duplicate",
    "login",
    "order",
    "signup",
    "login_unknown",
    "signup",
)


@dataclass
class Server:
    """A running service: its base URL and the files its output goes to."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass(frozen=True)
class Step:
    """One request of a load."""

    kind: str
    path: str
    body: dict[str, Any]
    request_id: str


@dataclass
class SeededUser:
    email: str
    password: str
    id: int


@dataclass
class Load:
    """What a load did: its duration and each request's outcome."""

    seconds: float
    requests: int
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def unexpected(self) -> dict[tuple[str, int], int]:
        """(kind, status) pairs that are not :data:`EXPECTED_STATUS`."""
        return {
            (kind, status): count
            for (kind, status), count in self.statuses.items()
            if EXPECTED_STATUS.get(kind) != status
        }


@contextmanager
def serve(
    database_url: str,
    *,
    with_tocsin: bool,
    log: Path,
    log_level: str = "warning",
    profile: Path | None = None,
) -> Iterator[Server]:
    """Run ``python -m benchmarks.service`` until the block ends.

    Its stdout and stderr go to ``log``. Waits until ``/_health`` answers;
    on exit sends SIGTERM and waits (then SIGKILL), all bounded in time.

    Raises:
        RuntimeError: The server exited or did not answer in time (the end of
            its log is in the message).
    """
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "benchmarks.service",
        "--database-url",
        database_url,
        "--port",
        str(port),
        "--log-level",
        log_level,
    ]
    if with_tocsin:
        command.append("--with-tocsin")
    if profile is not None:
        command += ["--profile", str(profile)]
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [environment.get("PYTHONPATH")])]
    )
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=output, stderr=output
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_until_up(server)
        yield server
    finally:
        _stop(process)


def _wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            if httpx.get(f"{server.url}/_health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    tail = server.log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"the service did not start on {server.url}:\n{tail}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(SHUTDOWN_TIMEOUT)


def seed_users(
    base_url: str, run: str, count: int, *, concurrency: int = 10
) -> list[SeededUser]:
    """Sign ``count`` users up (untimed), for the logins and orders of a load."""
    steps = [
        Step(
            "signup",
            "/signup",
            {
                "email": f"{run}-seed{i}@example.org",
                "name": f"seed {i}",
                "password": f"pw-{run}-seed{i}-secret",
            },
            f"{run}-seed-{i}",
        )
        for i in range(count)
    ]
    results = asyncio.run(run_load(base_url, steps, concurrency, 60.0, keep=True))
    users = []
    for step, (status, body) in zip(steps, results.bodies, strict=True):
        if status != 201:
            raise RuntimeError(f"seeding {step.body['email']} got {status}: {body}")
        users.append(SeededUser(step.body["email"], step.body["password"], body["id"]))
    return users


def mixed_steps(run: str, count: int, users: list[SeededUser]) -> list[Step]:
    """``count`` requests cycling through the mix, with ids ``{run}-{index}``.

    ``run`` keeps emails and request ids unique across loads on one database.
    """
    steps = []
    for index in range(count):
        kind = _CYCLE[index % len(_CYCLE)]
        user = users[index % len(users)]
        request_id = f"{run}-{index}"
        body: dict[str, Any]
        if kind == "signup":
            path = "/signup"
            body = {
                "email": f"{request_id}@example.org",
                "name": f"user {index}",
                "password": f"pw-{request_id}-secret",
            }
        elif kind == "signup_duplicate":
            path = "/signup"
            body = {
                "email": user.email,
                "name": "again",
                "password": f"pw-{request_id}-secret",
            }
        elif kind == "login":
            path = "/login"
            body = {"email": user.email, "password": user.password}
        elif kind == "login_wrong_password":
            path = "/login"
            body = {"email": user.email, "password": f"pw-{request_id}-wrong"}
        elif kind == "login_unknown":
            path = "/login"
            body = {
                "email": f"nobody-{request_id}@example.org",
                "password": f"pw-{request_id}-unknown",
            }
        elif kind == "order":
            path = "/orders"
            body = {"user_id": user.id, "total": 100 + index}
        else:
            path = "/orders"
            body = {"user_id": user.id, "total": ORDER_LIMIT + 1 + index}
        steps.append(Step(kind, path, body, request_id))
    return steps


def drive(
    base_url: str, steps: list[Step], *, concurrency: int, timeout: float
) -> Load:
    """Send ``steps`` with ``concurrency`` workers; at most ``timeout`` seconds.

    Raises:
        TimeoutError: The load did not finish in ``timeout`` seconds.
    """
    result = asyncio.run(run_load(base_url, steps, concurrency, timeout))
    return result.load


@dataclass
class Results:
    """A load, and each request's status and decoded body if kept."""

    load: Load
    bodies: list[tuple[int, Any]]


class Connection:
    """One HTTP/1.1 keep-alive connection, the least a client can do per request.

    httpx's ``AsyncClient`` spent about 7 ms of CPU per request at concurrency
    100 on the 2-core machine where this was written: the load generator,
    not the service, would have set the pace. This client writes a request
    and reads the response's head and ``Content-Length`` body, nothing more.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, request_id: str) -> tuple[int, bytes]:
        """POST ``body`` (JSON); return the status and the response body."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(
                self.host, self.port
            )
        assert self.reader is not None
        self.writer.write(request_bytes(self.host, self.port, path, body, request_id))
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        content = await self.reader.readexactly(length)
        if close:
            await self.close()
        return status, content

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
            self.reader = self.writer = None


async def disconnect_midway(base_url: str, step: Step, *, after: float) -> None:
    """Send ``step`` whole, then close the connection ``after`` seconds later,
    without reading the response: a client that gives up mid-request."""
    address = httpx.URL(base_url)
    host, port = address.host, address.port or 80
    _, writer = await asyncio.open_connection(host, port)
    try:
        payload = json.dumps(step.body).encode()
        writer.write(request_bytes(host, port, step.path, payload, step.request_id))
        await writer.drain()
        await asyncio.sleep(after)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def request_bytes(
    host: str, port: int, path: str, body: bytes, request_id: str
) -> bytes:
    """A complete HTTP/1.1 POST of a JSON ``body``."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"X-Request-Id: {request_id}\r\n\r\n"
    ).encode("latin-1") + body


async def run_load(
    base_url: str,
    steps: list[Step],
    concurrency: int,
    timeout: float,
    *,
    keep: bool = False,
) -> Results:
    """:func:`drive` for a running event loop; ``keep`` keeps the bodies."""
    load = Load(seconds=0.0, requests=len(steps))
    bodies: list[tuple[int, Any]] = [(0, None)] * len(steps)
    queue = iter(enumerate(steps))
    address = httpx.URL(base_url)
    host, port = address.host, address.port or 80

    async def worker() -> None:
        connection = Connection(host, port)
        try:
            for index, step in queue:
                payload = json.dumps(step.body).encode()
                status, content = await connection.post(
                    step.path, payload, step.request_id
                )
                load.statuses[step.kind, status] += 1
                if keep:
                    bodies[index] = (status, json.loads(content))
        finally:
            await connection.close()

    start = time.perf_counter()
    async with asyncio.timeout(timeout):
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    load.seconds = time.perf_counter() - start
    return Results(load, bodies)
