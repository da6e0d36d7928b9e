"""Kinds of callables that connect() accepts and send() calls correctly."""

from __future__ import annotations

import asyncio
import functools
import types
import warnings
from collections.abc import Generator
from typing import Any

import pytest
from asgiref.sync import markcoroutinefunction

from tocsin import Signal, WeakReceiverWarning


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


async def _work(**kwargs: Any) -> str:
    await asyncio.sleep(0)
    return "awaited"


def _returns_work(**kwargs: Any) -> Any:
    return _work(**kwargs)


def _legacy_marked(receiver: Any) -> Any:
    # The marker asgiref sets before Python 3.12 (and older code on any
    # Python): asyncio's private _is_coroutine object as an attribute.
    receiver._is_coroutine = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]
    return receiver


def _marked_function() -> Any:
    def marked(**kwargs: Any) -> Any:
        return _work(**kwargs)

    return markcoroutinefunction(marked)


def _legacy_marked_function() -> Any:
    def marked(**kwargs: Any) -> Any:
        return _work(**kwargs)

    return _legacy_marked(marked)


MARKED = {
    # asgiref's markcoroutinefunction is inspect's from Python 3.12.
    "a marked function": lambda: _marked_function(),
    "a partial of a marked function": lambda: functools.partial(_marked_function()),
    "a function with the legacy marker": lambda: _legacy_marked_function(),
    "a partial of a function with the legacy marker": lambda: functools.partial(
        _legacy_marked_function()
    ),
    "a partial with the legacy marker": lambda: _legacy_marked(
        functools.partial(_returns_work)
    ),
}


@pytest.mark.parametrize("make", MARKED.values(), ids=MARKED)
def test_a_receiver_marked_as_a_coroutine_function_is_awaited(make: Any) -> None:
    receiver = make()
    signal = Signal()
    signal.connect(receiver, weak=False)

    [info] = signal.receivers_info()
    assert info.is_async is True
    assert signal.send(None) == [(receiver, "awaited")]
    assert asyncio.run(signal.asend(None)) == [(receiver, "awaited")]


def test_a_partial_of_a_plain_function_is_not_async() -> None:
    signal = Signal()
    receiver = functools.partial(_returns_work)
    signal.connect(receiver, weak=False)

    [info] = signal.receivers_info()
    assert info.is_async is False
    [(_, response)] = signal.send(None)
    assert asyncio.iscoroutine(response)  # returned as is, never awaited
    response.close()


@markcoroutinefunction
def _marked_at_module_level(**kwargs: Any) -> Any:
    return _work(**kwargs)


_module_lambda = lambda **kwargs: None  # noqa: E731 (a lambda is the point)
_marked_module_lambda = markcoroutinefunction(lambda **kwargs: _work(**kwargs))


class _Callable:
    def __call__(self, **kwargs: Any) -> str:
        return "called"


def test_a_weakly_connected_marked_local_function_or_lambda_warns() -> None:
    # Marked functions are inspected the long way; a lambda or a local one
    # still dies with its scope, and connect() says so.
    def on_order(**kwargs: Any) -> Any:
        return _work(**kwargs)

    signal = Signal()
    with pytest.warns(WeakReceiverWarning, match=r"on_order is a lambda or a local"):
        signal.connect(markcoroutinefunction(on_order))
    marked_lambda = markcoroutinefunction(lambda **kwargs: _work(**kwargs))
    with pytest.warns(WeakReceiverWarning, match=r"<lambda> is a lambda or a local"):
        signal.connect(marked_lambda)
    with pytest.warns(WeakReceiverWarning, match=r"<lambda> is a lambda or a local"):
        signal.connect(_marked_module_lambda)  # a lambda, even at module level
    with pytest.warns(WeakReceiverWarning, match=r"<lambda> is a lambda or a local"):
        signal.connect(_module_lambda)  # and so is a plain one


def test_a_weakly_connected_module_function_or_object_does_not_warn() -> None:
    signal = Signal()
    held = _Callable()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        signal.connect(_marked_at_module_level)
        signal.connect(held)
    assert len(signal.receivers_info()) == 2


def _sender_only(func: Any) -> Any:
    """A decorator that adapts a send to a function that takes the sender only."""

    @functools.wraps(func)
    def adapted(self: Any, **kwargs: Any) -> Any:
        return func(self, kwargs["sender"])

    return adapted


class _Adapted:
    @_sender_only
    def __call__(self, sender: Any) -> Any:
        return ("adapted", sender)


@pytest.mark.parametrize("kind", ["object", "partial"])
def test_a_receiver_adapted_by_a_decorator_that_takes_kwargs_is_accepted(
    kind: str,
) -> None:
    # What runs is the decorator's function, which takes **kwargs; the function
    # it wraps (which inspect.signature() would report) does not.
    adapted = _Adapted()
    receiver = adapted if kind == "object" else functools.partial(adapted)
    signal = Signal()
    signal.connect(receiver, weak=False)

    assert signal.send("shop") == [(receiver, ("adapted", "shop"))]
