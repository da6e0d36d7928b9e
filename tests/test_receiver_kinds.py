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


def test_a_builtin_method_receives_sends_and_is_described_as_builtin() -> None:
    # A bound method of a builtin (here a dict's update, which collects what
    # each send passes) has no module of its own: receivers_info says builtins.
    collected: dict[str, Any] = {}
    signal = Signal()
    signal.connect(collected.update, weak=False)

    signal.send(None, order=1)

    assert collected == {"signal": signal, "sender": None, "order": 1}
    [info] = signal.receivers_info()
    assert (info.qualname, info.module, info.line) == ("dict.update", "builtins", None)


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
