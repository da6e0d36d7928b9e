"""Kinds of callables that connect() accepts and send() calls correctly."""

from __future__ import annotations

import asyncio
import types
from collections.abc import Generator
from typing import Any

from tocsin import Signal


def test_a_builtin_function_can_be_connected_strongly() -> None:
    signal = Signal()
    signal.connect(max, weak=False)
    assert [info.receiver for info in signal.receivers_info()] == [max]
    assert signal.has_listeners()


@types.coroutine
def legacy_coroutine(**kwargs: Any) -> Generator[Any, None, str]:
    yield from asyncio.sleep(0).__await__()
    return "awaited"


def test_a_types_coroutine_receiver_is_awaited() -> None:
    signal = Signal()
    signal.connect(legacy_coroutine, weak=False)

    assert signal.receivers_info()[0].is_async is True
    assert signal.send(None) == [(legacy_coroutine, "awaited")]

    async def main() -> list[tuple[Any, Any]]:
        return await signal.asend(None)

    assert asyncio.run(main()) == [(legacy_coroutine, "awaited")]
