"""A small FastAPI + SQLAlchemy ``AsyncSession`` service, with and without tocsin.

Both variants do the same work for each request:

- count the request when it starts and when it finishes, by its
  ``x-request-id`` header;
- ``POST /signup``: create a User and its Profile in one transaction, and send
  a welcome email once that transaction has committed (none if it rolls back,
  for instance on a duplicate email: 409);
- ``POST /login``: on success record the login time; on failure add an audit
  row whose detail holds the submitted credentials with the password masked
  (401);
- ``POST /orders``: create an Order and, once committed, fulfil it; an order
  above :data:`ORDER_LIMIT` is flushed, then rolled back (422).

"Sending" an email or fulfilling an order appends to the in-memory
:class:`Outbox`, with the request id it was scheduled in and the one it runs
in. ``GET /_outbox`` returns it. ``?delay_ms=`` on signup and orders holds the
transaction open that long before the commit (a slow request, for clients
that disconnect mid-request).

*With tocsin* the handlers only write the rows: ``install()`` sends the model
signals, receivers create the Profile (``post_save``, ``created=True``), send
the welcome email (``post_save`` with ``on_commit=True``), record logins and
audit failures (:mod:`tocsin.auth`), and fulfil orders (a custom
``order_completed`` signal, ``on_commit=True``);
:class:`~tocsin.integrations.asgi.RequestSignalsMiddleware` sends the request
signals. *By hand* the handlers make the same calls themselves and keep an
explicit list of what to run after the commit.

A process serves one variant: ``install()`` hooks the models' sessions for
the whole process.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from .models import Audit, Base, Order, Profile, User, check_password, hash_password

__all__ = ["ORDER_LIMIT", "Outbox", "create_app"]

ORDER_LIMIT = 100_000
MASK = "********************"  # what tocsin.auth puts in place of a password

logger = logging.getLogger("service")
current_request: contextvars.ContextVar[str] = contextvars.ContextVar(
    "service_request", default="-"
)

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


@dataclass
class Outbox:
    """What the service did besides writing rows: for checks, never for speed."""

    emails: list[dict[str, Any]] = field(default_factory=list)
    fulfilments: list[dict[str, Any]] = field(default_factory=list)
    started: Counter[str] = field(default_factory=Counter)
    finished: Counter[str] = field(default_factory=Counter)

    def send_welcome(self, user: User, *, by: str) -> None:
        self.emails.append(
            {
                "to": user.email,
                "user": user.id,
                "scheduled_in": user.request_id,
                "sent_in": current_request.get(),
                "by": by,
            }
        )

    def fulfil(self, order: Order, *, by: str) -> None:
        self.fulfilments.append(
            {
                "order": order.id,
                "scheduled_in": order.request_id,
                "run_in": current_request.get(),
                "by": by,
            }
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "emails": self.emails,
            "fulfilments": self.fulfilments,
            "started": dict(self.started),
            "finished": dict(self.finished),
        }


def request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            return str(value.decode("latin-1"))
    return "-"


class RequestIdMiddleware:
    """Both variants: make the request's id the current one while it runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = current_request.set(request_id_of(scope))
        try:
            await self.app(scope, receive, send)
        finally:
            current_request.reset(token)


class CountingMiddleware:
    """By hand: count each request as it starts and once it has finished."""

    def __init__(self, app: ASGIApp, outbox: Outbox) -> None:
        self.app = app
        self.outbox = outbox

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        self.outbox.started[request_id] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.outbox.finished[request_id] += 1


class SignupBody(BaseModel):
    email: str
    name: str
    password: str


class LoginBody(BaseModel):
    email: str
    password: str


class OrderBody(BaseModel):
    user_id: int
    total: int


async def session_for(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session; receivers find it as ``request.state.session``."""
    async with request.app.state.sessions() as session:
        request.state.session = session
        yield session


Session = Annotated[AsyncSession, Depends(session_for)]


def make_engine(database_url: str) -> AsyncEngine:
    """An async engine sized for one process serving many concurrent requests.

    SQLite takes one writer at a time: one pooled connection makes requests
    queue for it in the pool instead of failing with "database is locked".
    It runs in WAL mode with ``synchronous=NORMAL``, the usual settings of a
    SQLite server, rather than waiting for the disk at every commit.
    """
    if database_url.startswith("sqlite"):
        engine = create_async_engine(
            database_url, pool_size=1, max_overflow=0, pool_timeout=60
        )
        event.listen(engine.sync_engine, "connect", _sqlite_settings)
        return engine
    return create_async_engine(
        database_url, pool_size=20, max_overflow=0, pool_timeout=60
    )


def _sqlite_settings(dbapi_connection: Any, record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_app(database_url: str, *, with_tocsin: bool) -> Any:
    """The ASGI application of the service, on ``database_url`` (an async URL).

    The tables are created at startup if missing (ASGI lifespan). The
    application's :class:`Outbox` is its ``outbox`` attribute.
    """
    _claim_process(with_tocsin)
    engine = make_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    outbox = Outbox()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        yield
        await engine.dispose()

    api = FastAPI(lifespan=lifespan)

    api.state.sessions = sessions

    @api.get("/_outbox")
    async def read_outbox() -> dict[str, Any]:
        return outbox.as_json()

    @api.get("/_health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    async def find_user(session: AsyncSession, email: str) -> User | None:
        user: User | None = await session.scalar(
            select(User).where(User.email == email)
        )
        return user

    if with_tocsin:
        from . import with_tocsin as variant

        variant.connect(outbox)

        @api.post("/signup", status_code=201, response_model=None)
        async def signup(
            body: SignupBody, session: Session, delay_ms: int = 0
        ) -> dict[str, int] | JSONResponse:
            logger.info("signup of %s", body.email)
            user = new_user(body)
            session.add(user)
            if not await flushed(session):
                return JSONResponse({"detail": "email taken"}, status_code=409)
            await _pause(delay_ms)
            await session.commit()
            return {"id": user.id}

        @api.post("/login", response_model=None)
        async def login(
            body: LoginBody, request: Request, session: Session
        ) -> dict[str, int] | JSONResponse:
            user = await find_user(session, body.email)
            if user is None or not check_password(body.password, user.password_hash):
                await variant.auth.alogin_failed(
                    {"email": body.email, "password": body.password}, request=request
                )
                await session.commit()
                return JSONResponse({"detail": "bad credentials"}, status_code=401)
            await variant.auth.alogin(user, request=request)
            await session.commit()
            return {"id": user.id}

        @api.post("/orders", status_code=201, response_model=None)
        async def place_order(
            body: OrderBody, session: Session, delay_ms: int = 0
        ) -> dict[str, int] | JSONResponse:
            order = new_order(body)
            session.add(order)
            await session.flush()
            with variant.unit_of_work(session):
                await variant.order_completed.asend(Order, order=order)
            if order.total > ORDER_LIMIT:
                await session.rollback()
                return JSONResponse({"detail": "over the limit"}, status_code=422)
            await _pause(delay_ms)
            await session.commit()
            return {"id": order.id}

        app: Any = variant.RequestSignalsMiddleware(RequestIdMiddleware(api))
    else:

        @api.post("/signup", status_code=201, response_model=None)
        async def signup_by_hand(
            body: SignupBody, session: Session, delay_ms: int = 0
        ) -> dict[str, int] | JSONResponse:
            logger.info("signup of %s", body.email)
            after_commit: list[Callable[[], None]] = []
            user = new_user(body)
            session.add(user)
            if not await flushed(session):
                return JSONResponse({"detail": "email taken"}, status_code=409)
            # Where post_save would run: the user has its id; the commit
            # flushes the profile.
            session.add(Profile(user_id=user.id, display_name=user.name))
            after_commit.append(functools.partial(outbox.send_welcome, user, by="hand"))
            await _pause(delay_ms)
            await session.commit()
            _run(after_commit)
            return {"id": user.id}

        @api.post("/login", response_model=None)
        async def login_by_hand(
            body: LoginBody, session: Session
        ) -> dict[str, int] | JSONResponse:
            user = await find_user(session, body.email)
            if user is None or not check_password(body.password, user.password_hash):
                session.add(audit_failure({"email": body.email, "password": MASK}))
                await session.commit()
                return JSONResponse({"detail": "bad credentials"}, status_code=401)
            user.last_login = datetime.now(UTC).replace(tzinfo=None)
            await session.commit()
            return {"id": user.id}

        @api.post("/orders", status_code=201, response_model=None)
        async def place_order_by_hand(
            body: OrderBody, session: Session, delay_ms: int = 0
        ) -> dict[str, int] | JSONResponse:
            after_commit: list[Callable[[], None]] = []
            order = new_order(body)
            session.add(order)
            await session.flush()
            after_commit.append(functools.partial(outbox.fulfil, order, by="hand"))
            if order.total > ORDER_LIMIT:
                await session.rollback()
                after_commit.clear()
                return JSONResponse({"detail": "over the limit"}, status_code=422)
            await _pause(delay_ms)
            await session.commit()
            _run(after_commit)
            return {"id": order.id}

        app = CountingMiddleware(RequestIdMiddleware(api), outbox)

    app.outbox = outbox
    return app


def new_user(body: SignupBody) -> User:
    """The user a signup creates, stamped with the current request."""
    return User(
        email=body.email,
        name=body.name,
        password_hash=hash_password(body.password),
        request_id=current_request.get(),
    )


def new_order(body: OrderBody) -> Order:
    """The order a request places, stamped with the current request."""
    return Order(
        user_id=body.user_id, total=body.total, request_id=current_request.get()
    )


async def flushed(session: AsyncSession) -> bool:
    """Flush; on a unique-constraint violation roll back and return False."""
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        return False
    return True


def audit_failure(credentials: dict[str, Any]) -> Audit:
    """The audit row of a failed login; ``credentials`` are already masked."""
    return Audit(
        event="login_failed",
        detail=json.dumps(credentials, sort_keys=True),
        request_id=current_request.get(),
    )


async def _pause(delay_ms: int) -> None:
    if delay_ms > 0:
        await asyncio.sleep(delay_ms / 1000)


def _run(after_commit: list[Callable[[], None]]) -> None:
    for callback in after_commit:
        callback()


_variant: bool | None = None


def _claim_process(with_tocsin: bool) -> None:
    global _variant
    if _variant is not None and _variant != with_tocsin:
        raise RuntimeError(
            "This process already serves the other variant of the service: "
            "install() hooks every session of the models, so run the service "
            "with and without tocsin in separate processes."
        )
    _variant = with_tocsin
