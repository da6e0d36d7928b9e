"""Under SQLAlchemy's AsyncSession, slow async receivers never block the loop.

On aiosqlite and asyncpg: a heartbeat task keeps ticking on the session's loop
while async receivers run, whether they are model-signal receivers awaited
during a flush, on-commit receivers awaited by ``await session.commit()``, or
receivers of a custom signal sent with ``asend`` inside or after a
transaction. Each receiver runs on that same loop and can use the app's async
engine there.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from support import SlowReceiver, heartbeat
from tocsin import Signal
from tocsin.signals import post_save
from tocsin.testing import connected_to
from tocsin.transaction import unit_of_work


def run_with_engine(url: str, main: Any) -> None:
    async def with_engine() -> None:
        # One pooled connection: a receiver that queried through the engine
        # from a blocked loop would wait for the session's connection forever.
        engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=5)
        try:
            await main(engine)
        finally:
            await engine.dispose()

    asyncio.run(with_engine())


def test_a_slow_async_model_signal_receiver_runs_on_the_session_loop_without_blocking_it(
    async_url: str, models: Any
) -> None:
    async def main(engine: AsyncEngine) -> None:
        async with heartbeat() as beating:
            slow = SlowReceiver(beating)
            with connected_to(slow, post_save, sender=models.User):
                async with AsyncSession(engine) as session:
                    session.add(models.User(name="a"))
                    await session.flush()  # post_save is sent, and awaited
                    assert len(slow.runs) == 1
                    await session.commit()
            slow.check_ran_on(asyncio.get_running_loop())

    run_with_engine(async_url, main)


def test_an_on_commit_async_receiver_runs_at_commit_on_the_session_loop_without_blocking_it(
    async_url: str, models: Any
) -> None:
    async def main(engine: AsyncEngine) -> None:
        async with heartbeat() as beating:
            slow = SlowReceiver(beating)
            with connected_to(slow, post_save, sender=models.User, on_commit=True):
                async with AsyncSession(engine, expire_on_commit=False) as session:
                    session.add(models.User(name="a"))
                    await session.flush()
                    assert slow.runs == []  # deferred
                    await session.commit()
                    assert len(slow.runs) == 1  # awaited by the commit
            slow.check_ran_on(asyncio.get_running_loop())
            assert slow.runs[0]["kwargs"]["instance"].name == "a"

    run_with_engine(async_url, main)


order_completed = Signal(name="order_completed")


def querying_receiver(
    engine: AsyncEngine, models: Any, slow: SlowReceiver, seen: list[int]
) -> Any:
    """A slow receiver that also counts users through the app's engine."""

    async def receiver(**kwargs: Any) -> str:
        async with AsyncSession(engine) as other:
            count = await other.scalar(select(func.count(models.User.id)))
            seen.append(count)
        return await slow(**kwargs)

    return receiver


@pytest.mark.parametrize("when", ["inside the transaction", "after the commit"])
def test_asend_in_the_unit_of_work_runs_an_on_commit_receiver_on_the_session_loop(
    async_url: str, models: Any, when: str
) -> None:
    # Inside the transaction the receiver waits for the commit, which awaits
    # it. "Send after commit": no transaction is open, so it runs now,
    # awaited by asend on the caller's loop. Either way a receiver that uses
    # the app's engine gets the one pooled connection.
    seen: list[int] = []

    async def main(engine: AsyncEngine) -> None:
        async with heartbeat() as beating:
            slow = SlowReceiver(beating)
            receiver = querying_receiver(engine, models, slow, seen)
            with connected_to(receiver, order_completed, on_commit=True):
                async with AsyncSession(engine) as session:
                    session.add(models.User(name="a"))
                    if when == "inside the transaction":
                        await session.flush()
                    else:
                        await session.commit()
                    with unit_of_work(session):
                        responses = await asyncio.wait_for(
                            order_completed.asend("shop", order=1), timeout=10
                        )
                    if when == "inside the transaction":
                        assert responses == [(receiver, None)]  # deferred
                        assert seen == []
                        await session.commit()
                    else:
                        assert responses == [(receiver, "slow done")]
                    assert seen == [1]
            slow.check_ran_on(asyncio.get_running_loop())

    run_with_engine(async_url, main)


def test_wait_for_around_asend_after_commit_can_interrupt_a_slow_on_commit_receiver(
    async_url: str, models: Any
) -> None:
    outcome: list[str] = []

    async def endless(**kwargs: Any) -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    async def main(engine: AsyncEngine) -> None:
        with connected_to(endless, order_completed, on_commit=True):
            async with AsyncSession(engine) as session:
                session.add(models.User(name="a"))
                await session.commit()
                with unit_of_work(session):
                    try:
                        await asyncio.wait_for(
                            order_completed.asend("shop", order=1), timeout=0.05
                        )
                    except TimeoutError:
                        outcome.append("timed out")

    run_with_engine(async_url, main)
    assert outcome == ["cancelled", "timed out"]
