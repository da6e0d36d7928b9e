"""The shop's HTTP API, a Starlette app behind tocsin's request signals."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tocsin import auth
from tocsin.integrations.asgi import RequestSignalsMiddleware
from tocsin.transaction import unit_of_work

from .models import Order, User
from .signals import order_completed


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(8)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 10_000)
    return f"{salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    salt, _ = stored.split("$")
    return secrets.compare_digest(hash_password(password, bytes.fromhex(salt)), stored)


def create_app(sessions: async_sessionmaker[AsyncSession]) -> RequestSignalsMiddleware:
    tokens: dict[str, int] = {}  # bearer token -> user id

    async def current_user(request: Request, db: AsyncSession) -> User | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        user_id = tokens.get(token)
        return None if user_id is None else await db.get(User, user_id)

    async def signup(request: Request) -> Response:
        data = await request.json()
        async with sessions() as db:
            if await db.scalar(select(User).where(User.email == data["email"])):
                return JSONResponse({"error": "email taken"}, status_code=409)
            user = User(
                email=data["email"], password_hash=hash_password(data["password"])
            )
            db.add(user)
            await db.commit()  # post_save receivers run in here
            return JSONResponse({"id": user.id}, status_code=201)

    async def login(request: Request) -> Response:
        data = await request.json()
        async with sessions() as db:
            request.state.db = db
            user = await db.scalar(select(User).where(User.email == data["email"]))
            if user is None or not check_password(data["password"], user.password_hash):
                await auth.alogin_failed(data, request=request)
                await db.commit()
                return JSONResponse(
                    {"error": "wrong email or password"}, status_code=401
                )
            await auth.alogin(user, request=request)
            await db.commit()
            token = secrets.token_urlsafe(16)
            tokens[token] = user.id
            return JSONResponse({"token": token})

    async def logout(request: Request) -> Response:
        async with sessions() as db:
            request.state.db = db
            user = await current_user(request, db)
            await auth.alogout(user, request=request)
            await db.commit()
            tokens.pop(
                request.headers.get("authorization", "").removeprefix("Bearer "), None
            )
            return JSONResponse({"ok": True})

    async def place_order(request: Request) -> Response:
        data = await request.json()
        async with sessions() as db:
            user = await current_user(request, db)
            if user is None:
                return JSONResponse({"error": "log in first"}, status_code=401)
            order = Order(user=user, total_cents=int(data["total_cents"]))
            db.add(order)
            with unit_of_work(db):
                # Receivers connected with on_commit=True would wait for the
                # commit below; notify_customer is a plain receiver.
                await db.flush()
                await order_completed.asend(sender=Order, order=order, user=user)
            await db.commit()
            return JSONResponse({"order": order.id}, status_code=201)

    async def home(request: Request) -> Response:
        return HTMLResponse(PAGE)

    routes = [
        Route("/", home),
        Route("/signup", signup, methods=["POST"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/orders", place_order, methods=["POST"]),
    ]
    return RequestSignalsMiddleware(Starlette(routes=routes))


PAGE = """<!doctype html>
<title>tocsin shop</title>
<h1>tocsin shop</h1>
<p>Each action below is a request; the terminal that runs
<code>make demo ARGS=--serve</code> prints the signals it sends.</p>
<form id="f">
  <input name="email" value="bob@example.com">
  <input name="password" type="password" value="hunter2!">
  <input name="total_cents" value="1999">
</form>
<button onclick="call('/signup')">Sign up</button>
<button onclick="call('/login')">Log in</button>
<button onclick="call('/orders')">Order</button>
<button onclick="call('/logout')">Log out</button>
<pre id="out"></pre>
<script>
let token = "";
async function call(path) {
  const data = Object.fromEntries(new FormData(document.getElementById("f")));
  const response = await fetch(path, {method: "POST", body: JSON.stringify(data),
    headers: {"authorization": "Bearer " + token}});
  const body = await response.json();
  if (body.token) token = body.token;
  document.getElementById("out").textContent = path + " -> " + response.status + " " + JSON.stringify(body);
}
</script>
"""
