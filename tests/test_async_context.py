"""Context variables across a send, as in Django 6.1.

Synchronous receivers run in the caller's own context, in order. The async
receivers of one send share one copy of it: they start in receiver order, each
sees what the earlier ones set, and what they set is copied back to the caller
at the end (a variable reset to unset is not), also when a receiver failed or
the caller was cancelled.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support import run_then_cancel
from tocsin import Signal

MODES = ["send", "send_robust", "asend", "asend_robust"]

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
user: contextvars.ContextVar[str] = contextvars.ContextVar("user")
UNSET = "<unset>"


def value_of(variable: contextvars.ContextVar[str]) -> str:
    return variable.get(UNSET)


def send_in_a_fresh_context(
    mode: str,
    signal: Signal,
    before: Callable[[], object] = lambda: None,
    raises: type[BaseException] | None = None,
    watch: Callable[[], Any] | None = None,
) -> tuple[Any, Any]:
    """In a context of its own: call ``before()``, send with ``mode`` (an
    async mode from a task, a sync one from sync code), and return the
    responses (``None`` if the send raised ``raises``) and what the caller
    sees afterwards: ``watch()``, by default ``(request_id, user)``."""

    def sent() -> Any:
        before()
        if raises is None:
            return getattr(signal, mode)(None)
        with pytest.raises(raises):
            getattr(signal, mode)(None)
        return None

    async def sent_async() -> Any:
        before()
        if raises is None:
            return await getattr(signal, mode)(None)
        with pytest.raises(raises):
            await getattr(signal, mode)(None)
        return None

    def seen_by_caller() -> Any:
        if watch is not None:
            return watch()
        return value_of(request_id), value_of(user)

    if mode.startswith("a"):

        async def caller() -> tuple[Any, Any]:
            return await sent_async(), seen_by_caller()

        return asyncio.run(caller())
    return contextvars.copy_context().run(lambda: (sent(), seen_by_caller()))


# -- synchronous receivers -------------------------------------------------------------


@pytest.mark.parametrize("mode", ["send", "send_robust"])
def test_sync_receivers_run_in_the_callers_own_context_in_order(mode: str) -> None:
    seen: list[str] = []
    token: list[contextvars.Token[str]] = []

    def first(**kwargs: Any) -> None:
        seen.append(value_of(request_id))
        # A token can only be reset in the context that made it: this one
        # was made by the caller.
        request_id.reset(token[0])
        request_id.set("first")

    def second(**kwargs: Any) -> None:
        seen.append(value_of(request_id))
        user.set("second")

    signal = Signal()
    signal.connect(first, weak=False)
    signal.connect(second, weak=False)

    def before() -> None:
        token.append(request_id.set("caller"))

    _, final = send_in_a_fresh_context(mode, signal, before)
    assert final == ("first", "second")
    assert seen == ["caller", "first"]


@pytest.mark.parametrize("mode", MODES)
def test_the_sync_group_finishes_before_any_async_receiver_starts_and_they_see_its_changes(
    mode: str,
) -> None:
    events: list[tuple[str, str]] = []

    async def async_one(**kwargs: Any) -> None:
        events.append(("async one", value_of(user)))

    def sync_one(**kwargs: Any) -> None:
        events.append(("sync one", value_of(user)))
        user.set("set by sync one")

    def sync_two(**kwargs: Any) -> None:
        events.append(("sync two", value_of(user)))
        request_id.set("set by sync two")

    signal = Signal()
    # Registered async first: the sync group still runs first, as in Django.
    signal.connect(async_one, weak=False)
    signal.connect(sync_one, weak=False)
    signal.connect(sync_two, weak=False)

    _, final = send_in_a_fresh_context(mode, signal)

    assert events == [
        ("sync one", UNSET),
        ("sync two", "set by sync one"),
        ("async one", "set by sync one"),
    ]
    assert final == ("set by sync two", "set by sync one")


# -- async receivers: one shared copy -------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_async_receivers_share_one_copy_start_in_order_and_answer_in_order(
    mode: str,
) -> None:
    events: list[tuple[str, str]] = []
    gate: list[asyncio.Event] = []

    async def first(**kwargs: Any) -> str:
        events.append(("first starts", value_of(request_id)))
        request_id.set("first")
        gate.append(asyncio.Event())  # made on the running loop
        await gate[0].wait()
        # Set by the second receiver while this one waited: one shared copy.
        events.append(("first resumes", value_of(request_id)))
        return "first"

    async def second(**kwargs: Any) -> str:
        events.append(("second starts", value_of(request_id)))
        request_id.set("second")
        gate[0].set()
        return "second"

    signal = Signal()
    signal.connect(first, weak=False)
    signal.connect(second, weak=False)

    responses, final = send_in_a_fresh_context(
        mode, signal, lambda: request_id.set("caller")
    )

    # The second finished first; the answers still come in receiver order.
    assert [response for _, response in responses] == ["first", "second"]
    assert events == [
        ("first starts", "caller"),
        ("second starts", "first"),
        ("first resumes", "second"),
    ]
    assert final == ("second", UNSET)


@pytest.mark.parametrize("mode", MODES)
def test_the_caller_sees_every_value_async_receivers_set_but_not_a_reset_to_unset(
    mode: str,
) -> None:
    async def sets_request_id(**kwargs: Any) -> None:
        await asyncio.sleep(0)
        request_id.set("from a receiver")

    async def sets_and_resets_user(**kwargs: Any) -> None:
        token = user.set("briefly")
        await asyncio.sleep(0)
        user.reset(token)  # back to unset in the receivers' copy

    signal = Signal()
    signal.connect(sets_request_id, weak=False)
    signal.connect(sets_and_resets_user, weak=False)

    _, final = send_in_a_fresh_context(mode, signal)
    assert final == ("from a receiver", UNSET)


optional: contextvars.ContextVar[str | None] = contextvars.ContextVar("optional")


@pytest.mark.parametrize("mode", MODES)
def test_the_caller_sees_none_when_an_async_receiver_sets_an_unset_variable_to_none(
    mode: str,
) -> None:
    # None is a value like any other: the caller had no value, and now has None.
    async def sets_none(**kwargs: Any) -> None:
        await asyncio.sleep(0)
        optional.set(None)

    signal = Signal()
    signal.connect(sets_none, weak=False)

    _, final = send_in_a_fresh_context(
        mode, signal, watch=lambda: optional.get("<unset>")
    )
    assert final is None


def test_a_value_the_caller_set_survives_a_receiver_that_sets_and_resets_it() -> None:
    async def sets_and_resets(**kwargs: Any) -> None:
        token = user.set("receiver")
        await asyncio.sleep(0)
        user.reset(token)

    signal = Signal()
    signal.connect(sets_and_resets, weak=False)

    _, final = send_in_a_fresh_context("asend", signal, lambda: user.set("caller"))
    assert final == (UNSET, "caller")


def test_send_from_sync_code_gives_the_caller_the_same_final_context_as_asend() -> None:
    def sync_sets(**kwargs: Any) -> None:
        user.set("sync")

    async def async_sets(**kwargs: Any) -> None:
        await asyncio.sleep(0)
        request_id.set(f"async saw {value_of(user)}")

    signal = Signal()
    signal.connect(sync_sets, weak=False)
    signal.connect(async_sets, weak=False)

    _, from_send = send_in_a_fresh_context("send", signal)
    _, from_asend = send_in_a_fresh_context("asend", signal)

    assert from_send == from_asend == ("async saw sync", "sync")


# -- copy-back after failure and cancellation ---------------------------------------------


async def sets_then_fails(**kwargs: Any) -> None:
    request_id.set("set before failing")
    await asyncio.sleep(0)
    raise ValueError("receiver failed")


async def sets_then_waits(**kwargs: Any) -> None:
    user.set("set before waiting")
    await asyncio.sleep(10)


@pytest.mark.parametrize("mode", ["send", "asend"])
def test_values_set_are_copied_back_when_a_receiver_fails(mode: str) -> None:
    signal = Signal()
    signal.connect(sets_then_fails)
    signal.connect(sets_then_waits)  # cancelled by the failure

    _, final = send_in_a_fresh_context(mode, signal, raises=ValueError)

    assert final == ("set before failing", "set before waiting")


@pytest.mark.parametrize("mode", ["asend", "asend_robust"])
def test_values_set_are_copied_back_when_the_caller_is_cancelled(mode: str) -> None:
    signal = Signal()
    signal.connect(sets_then_waits)
    seen: list[str] = []

    async def caller() -> None:
        try:
            await getattr(signal, mode)(None)
        except asyncio.CancelledError:
            seen.append(value_of(user))
            raise

    run_then_cancel(caller())
    assert seen == ["set before waiting"]


# -- a reference model ------------------------------------------------------------------

VARIABLES = [contextvars.ContextVar[str](f"model_{n}") for n in range(3)]

# An operation: ("set", variable index, value) or ("reset", variable index),
# which resets the latest token this receiver got for that variable, if any.
operation = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 2), st.sampled_from(["a", "b", "c", "d"])),
    st.tuples(st.just("reset"), st.integers(0, 2)),
)
receiver_spec = st.fixed_dictionaries(
    {
        "is_async": st.booleans(),
        "ops": st.lists(operation, max_size=5),
        "waits": st.booleans(),  # awaits once, after its operations
    }
)


def apply(
    ops: list[tuple[Any, ...]],
    state: list[str],
    tokens: dict[int, list[tuple[contextvars.Token[str], str]]],
    real: bool,
) -> None:
    """Apply ``ops`` to the model ``state``, and to the real variables if ``real``."""
    for op in ops:
        index = op[1]
        if op[0] == "set":
            old = state[index]
            token = VARIABLES[index].set(op[2]) if real else None
            tokens.setdefault(index, []).append((token, old))  # type: ignore[arg-type]
            state[index] = op[2]
        elif tokens.get(index):
            token, old = tokens[index].pop()
            if real:
                VARIABLES[index].reset(token)
            state[index] = old


@settings(max_examples=60, deadline=None)
@given(
    mode=st.sampled_from(MODES),
    initial=st.lists(st.sampled_from([UNSET, "caller"]), min_size=3, max_size=3),
    specs=st.lists(receiver_spec, min_size=1, max_size=5),
    last_async_fails=st.booleans(),
)
def test_context_after_any_send_matches_the_reference_model(
    mode: str,
    initial: list[str],
    specs: list[dict[str, Any]],
    last_async_fails: bool,
) -> None:
    seen: list[list[str]] = []
    async_specs = [spec for spec in specs if spec["is_async"]]
    failing = async_specs[-1] if (last_async_fails and async_specs) else None

    def snapshot() -> list[str]:
        return [value_of(variable) for variable in VARIABLES]

    def make(spec: dict[str, Any]) -> Any:
        if spec["is_async"]:

            async def async_receiver(**kwargs: Any) -> None:
                seen.append(snapshot())
                apply(spec["ops"], [UNSET] * 3, {}, real=True)
                if spec["waits"]:
                    await asyncio.sleep(0)
                if spec is failing:
                    raise ValueError("the last async receiver failed")

            return async_receiver

        def sync_receiver(**kwargs: Any) -> None:
            seen.append(snapshot())
            apply(spec["ops"], [UNSET] * 3, {}, real=True)

        return sync_receiver

    signal = Signal()
    for spec in specs:
        signal.connect(make(spec), weak=False)

    # The model: sync receivers in order in the caller's context, then async
    # receivers in order in one copy; the copy's set values come back.
    expected_seen: list[list[str]] = []
    state = list(initial)
    for spec in [s for s in specs if not s["is_async"]]:
        expected_seen.append(list(state))
        apply(spec["ops"], state, {}, real=False)
    after_sync = list(state)
    for spec in async_specs:
        expected_seen.append(list(state))
        apply(spec["ops"], state, {}, real=False)
    expected_final = [
        copied if copied != UNSET else kept
        for copied, kept in zip(state, after_sync, strict=True)
    ]
    # Without _robust the failure propagates; with it, it is a response.
    raises = failing is not None and not mode.endswith("robust")

    def set_initial() -> None:
        for variable, value in zip(VARIABLES, initial, strict=True):
            if value != UNSET:
                variable.set(value)

    _, final = send_in_a_fresh_context(
        mode,
        signal,
        set_initial,
        raises=ValueError if raises else None,
        watch=snapshot,
    )

    assert seen == expected_seen
    assert final == expected_final
