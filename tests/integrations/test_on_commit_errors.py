"""What an on-commit receiver that raises does under AsyncSession and in a web request.

As in Django: the commit stands, ``commit()`` raises the receiver's exception,
the callbacks queued after it are dropped; ``on_commit="robust"`` logs it and
goes on. Over HTTP, the first turns a committed request into a 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from _servers import uvicorn_server
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from tocsin.signals import post_save
from tocsin.transaction import on_commit


def fail(sender: Any, **kwargs: Any) -> None:
    raise ConnectionError("the CRM is down")


@pytest.fixture(params=[True, "robust"], ids=["on_commit=True", "on_commit=robust"])
def failing_receiver(request: pytest.FixtureRequest, models: Any) -> Iterator[Any]:
    post_save.connect(fail, sender=models.User, on_commit=request.param)
    try:
        yield request.param
    finally:
        post_save.disconnect(fail, sender=models.User)


def test_a_raising_on_commit_receiver_fails_the_async_commit_after_the_data_is_committed(
    async_url: str, models: Any, failing_receiver: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    async def main() -> tuple[int, bool, str | None]:
        engine = create_async_engine(async_url)
        raised: str | None = None
        try:
            async with AsyncSession(engine) as session:
                session.add(models.User(name="a"))
                await session.flush()
                on_commit(lambda: ran.append("after"), using=session)
                try:
                    await session.commit()
                except ConnectionError as error:
                    raised = str(error)
                in_transaction = session.in_transaction()
                # The session is usable again, and the row is there.
                count = await session.scalar(select(func.count(models.User.id)))
            return count or 0, in_transaction, raised
        finally:
            await engine.dispose()

    with caplog.at_level(logging.ERROR, logger="tocsin"):
        count, in_transaction, raised = asyncio.run(main())
    assert count == 1
    assert not in_transaction
    if failing_receiver is True:
        assert raised == "the CRM is down"
        assert ran == []  # queued after the failing receiver: dropped
        assert "the CRM is down" not in caplog.text
    else:
        assert raised is None
        assert ran == ["after"]
        assert "the CRM is down" in caplog.text


def test_a_raising_on_commit_receiver_turns_a_committed_request_into_a_500_unless_robust(
    async_url: str,
    models: Any,
    failing_receiver: Any,
    client: httpx.Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = create_async_engine(async_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/users", status_code=201)
    async def create_user() -> dict[str, int]:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            user = models.User(name="a")
            session.add(user)
            await session.commit()
            return {"id": user.id}

    @app.get("/users/count")
    async def count_users() -> dict[str, int]:
        async with AsyncSession(engine) as session:
            count = await session.scalar(select(func.count(models.User.id)))
            return {"count": count or 0}

    with (
        caplog.at_level(logging.ERROR, logger="tocsin"),
        uvicorn_server(app, lifespan="on") as url,
    ):
        # uvicorn drops the connection after an unhandled error: do not reuse it.
        status = client.post(
            f"{url}/users", headers={"Connection": "close"}
        ).status_code
        count = client.get(f"{url}/users/count").json()["count"]
    assert count == 1  # committed either way
    assert status == (500 if failing_receiver is True else 201)
    # Robust: logged by tocsin. Not robust: raised to uvicorn (which logs it).
    assert ("the CRM is down" in caplog.text) == (failing_receiver == "robust")
