"""Model signals and on_commit from AsyncSession (aiosqlite and asyncpg)."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import (
    AsyncSession,
    async_session,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from tocsin.signals import post_save, pre_delete
from tocsin.testing import connected_to
from tocsin.transaction import Callback, captured_on_commit, on_commit, run_callbacks


def _run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_sync_receivers_run_inside_async_session_and_can_query(
    async_url: str, models: Any
) -> None:
    seen: list[Any] = []

    def create_profile(
        sender: Any, instance: Any, created: bool, session: Session, **kwargs: Any
    ) -> None:
        # A synchronous receiver gets the synchronous Session and may use it
        # fully: SQLAlchemy runs it inside its greenlet.
        seen.append(session.scalar(select(func.count(models.User.id))))
        if created:
            session.add(models.Profile(user=instance))

    async def main() -> None:
        engine = create_async_engine(async_url)
        try:
            async with AsyncSession(engine) as session:
                session.add(models.User(name="a"))
                await session.commit()
            async with AsyncSession(engine) as session:
                profiles = await session.scalar(select(func.count(models.Profile.id)))
                seen.append(profiles)
        finally:
            await engine.dispose()

    with connected_to(create_profile, post_save, sender=models.User):
        _run(main())
    assert seen == [1, 1]


def test_async_receivers_are_awaited_on_the_session_loop_and_can_query(
    async_url: str, models: Any
) -> None:
    seen: list[Any] = []

    async def audit(
        sender: Any, instance: Any, session: Session, **kwargs: Any
    ) -> None:
        await asyncio.sleep(0)
        asession = async_session(session)
        assert asession is not None
        count = await asession.scalar(select(func.count(models.User.id)))
        seen.append((instance.name, count, asyncio.get_running_loop() is loop[0]))

    loop: list[Any] = []

    async def main() -> None:
        loop.append(asyncio.get_running_loop())
        engine = create_async_engine(async_url)
        try:
            maker = async_sessionmaker(engine)
            async with maker() as session:
                session.add(models.User(name="a"))
                await session.commit()
        finally:
            await engine.dispose()

    with connected_to(audit, post_save, sender=models.User):
        _run(main())
    assert seen == [("a", 1, True)]


def test_async_session_delete_and_pre_delete(async_url: str, models: Any) -> None:
    names: list[str] = []

    def receiver(sender: Any, instance: Any, **kwargs: Any) -> None:
        names.append(instance.name)

    async def main() -> None:
        engine = create_async_engine(async_url)
        try:
            async with AsyncSession(engine) as session:
                user = models.User(name="gone")
                session.add(user)
                await session.commit()
                await session.delete(user)
                await session.commit()
        finally:
            await engine.dispose()

    with connected_to(receiver, pre_delete, sender=models.User):
        _run(main())
    assert names == ["gone"]


def test_on_commit_under_async_session_awaits_async_callbacks_after_commit(
    async_url: str, models: Any
) -> None:
    calls: list[str] = []

    async def deliver(sender: Any, instance: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0)
        calls.append(f"async {instance.name}")

    async def main() -> None:
        engine = create_async_engine(async_url)
        try:
            # expire_on_commit=False, as usual with AsyncSession: the deferred
            # receiver reads instance.name after the commit.
            async with AsyncSession(engine, expire_on_commit=False) as session:
                session.add(models.User(name="a"))
                await session.flush()
                on_commit(lambda: calls.append("plain"), using=session)
                assert calls == []
                await session.commit()
                assert calls == ["async a", "plain"]
                session.add(models.User(name="b"))
                await session.flush()
                await session.rollback()
        finally:
            await engine.dispose()

    with connected_to(deliver, post_save, sender=models.User, on_commit=True):
        _run(main())
    assert calls == ["async a", "plain"]


def test_captured_on_commit_reaches_into_async_session_flushes(
    async_url: str, models: Any
) -> None:
    # The capture is a context variable: the greenlet in which SQLAlchemy
    # flushes an AsyncSession (and sends the model signals) must see it.
    calls: list[str] = []

    async def deliver(sender: Any, instance: Any, **kwargs: Any) -> None:
        calls.append(f"async {instance.name}")

    async def main() -> list[Callback]:
        engine = create_async_engine(async_url)
        try:
            async with AsyncSession(engine, expire_on_commit=False) as session:
                with captured_on_commit() as callbacks:
                    session.add(models.User(name="a"))
                    await session.commit()
                assert calls == []
                return callbacks
        finally:
            await engine.dispose()

    with connected_to(deliver, post_save, sender=models.User, on_commit=True):
        callbacks = _run(main())
        assert len(callbacks) == 1
        run_callbacks(callbacks)
    assert calls == ["async a"]
