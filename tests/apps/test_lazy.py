"""Registry.lazy_model_operation: run a function once its models are registered."""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tocsin.apps import LazyOperation, LazyReferenceError, Registry

pytestmark = pytest.mark.usefixtures("app_fixtures")


def model(name: str, module: str = "ledger.models") -> type:
    return type(name, (), {"__module__": module})


class Calls:
    """A lazy operation that records what it was called with."""

    def __init__(self) -> None:
        self.calls: list[tuple[type, ...]] = []

    def __call__(self, *models: type) -> None:
        self.calls.append(models)


# -- when it runs -------------------------------------------------------------------


def test_runs_at_once_when_the_models_are_registered() -> None:
    registry = Registry()
    Invoice, Customer = model("Invoice"), model("Customer")
    registry.register_model("ledger", Invoice)
    registry.register_model("ledger", Customer)
    calls = Calls()
    handle = registry.lazy_model_operation(calls, "ledger.Customer", "ledger.invoice")
    assert calls.calls == [(Customer, Invoice)]
    assert (handle.pending, handle.cancelled) == (False, False)
    assert handle.cancel() is False  # too late: it ran
    assert registry.pending_operations() == []


def test_waits_for_the_last_model_then_runs_once_with_them_in_order() -> None:
    registry = Registry()
    calls = Calls()
    handle = registry.lazy_model_operation(calls, "ledger.Invoice", "crm.Customer")
    assert isinstance(handle, LazyOperation)
    assert handle.pending
    assert handle.model_keys == (("ledger", "invoice"), ("crm", "customer"))
    Invoice = model("Invoice")
    registry.register_model("ledger", Invoice)
    assert calls.calls == []
    assert registry.pending_references() == [
        f"The function {__name__}.Calls -> 'crm.Customer'"
    ]
    Customer = model("Customer", "crm.models")
    registry.register_model("crm", Customer)
    registry.register_model("crm", model("Customer", "crm.models"))  # a reload
    assert calls.calls == [(Invoice, Customer)]
    assert (handle.pending, handle.cancelled) == (False, False)
    assert handle.function is None  # ran: the handle keeps nothing alive
    assert registry.pending_references() == []


def test_runs_when_populate_prepares_the_model() -> None:
    registry = Registry()
    calls = Calls()
    registry.lazy_model_operation(calls, "blog.Post")
    registry.populate(["blog"])
    from blog.models import Post

    assert calls.calls == [(Post,)]


def test_no_references_runs_at_once_with_no_models() -> None:
    calls = Calls()
    handle = Registry().lazy_model_operation(calls)
    assert calls.calls == [()]
    assert not handle.pending


# -- cancelling ---------------------------------------------------------------------


def test_cancel_before_the_model_arrives_means_it_never_runs() -> None:
    registry = Registry()
    calls = Calls()
    handle = registry.lazy_model_operation(calls, "ledger.Invoice")
    assert handle.cancel() is True
    assert handle.cancel() is False
    assert (handle.pending, handle.cancelled) == (False, True)
    assert registry.pending_operations() == []
    assert registry.pending_references() == []
    registry.register_model("ledger", model("Invoice"))
    assert calls.calls == []


def test_a_cancelled_operation_no_longer_fails_populate() -> None:
    registry = Registry()
    handle = registry.lazy_model_operation(Calls(), "blog.Comment")
    with pytest.raises(LazyReferenceError):
        registry.populate(["blog"])
    handle.cancel()
    registry.populate(["blog"])
    assert registry.ready


def test_cancel_releases_the_function() -> None:
    registry = Registry()
    calls = Calls()
    alive = weakref.ref(calls)
    handle = registry.lazy_model_operation(calls, "ledger.Invoice")
    del calls
    gc.collect()
    assert alive() is not None  # held while it waits, as in Django
    handle.cancel()
    gc.collect()
    assert alive() is None


def test_the_registry_forgets_cancelled_operations() -> None:
    registry = Registry()
    kept = registry.lazy_model_operation(Calls(), "ledger.Invoice")
    handles = [weakref.ref(kept)]
    for _ in range(100):
        handle = registry.lazy_model_operation(Calls(), "ledger.Invoice")
        handle.cancel()
        handles.append(weakref.ref(handle))
    del handle
    assert registry.pending_operations("ledger.Invoice") == [kept]
    gc.collect()
    assert [h for h in handles if h() is not None] == [handles[0]]


def test_pending_operations_lists_those_waiting_for_one_model() -> None:
    registry = Registry()
    first = registry.lazy_model_operation(Calls(), "ledger.Invoice")
    second = registry.lazy_model_operation(Calls(), "ledger.Invoice", "crm.Customer")
    third = registry.lazy_model_operation(Calls(), "crm.Customer")
    assert registry.pending_operations("ledger.INVOICE") == [first, second]
    assert registry.pending_operations("crm.Customer") == [second, third]
    assert registry.pending_operations() == [first, second, third]
    assert repr(third) == (
        f"<LazyOperation (pending) for 'crm.Customer': The function {__name__}.Calls>"
    )


# -- references that never resolve, and bad input -------------------------------------


def test_unresolved_reference_fails_populate_naming_the_operation() -> None:
    registry = Registry()
    registry.lazy_model_operation(
        Calls(), "blog.Post", "blog.Comment", description="The comment counter"
    )
    registry.lazy_model_operation(Calls(), "ghost.Thing")
    with pytest.raises(LazyReferenceError) as caught:
        registry.populate(["blog"])
    assert str(caught.value).splitlines() == [
        "The comment counter has a lazy reference to 'blog.Comment', but app "
        "'blog' has no model 'Comment' (its models: Post).",
        f"The function {__name__}.Calls has a lazy reference to 'ghost.Thing', "
        "but app 'ghost' isn't installed.",
    ]
    assert not registry.ready


def test_unknown_model_once_ready_raises_at_once() -> None:
    registry = Registry(["blog"])
    calls = Calls()
    with pytest.raises(LazyReferenceError) as caught:
        registry.lazy_model_operation(calls, "blog.Post", "blog.Pst")
    assert str(caught.value) == (
        f"The function {__name__}.Calls has a lazy reference to 'blog.Pst', but "
        "app 'blog' has no model 'Pst' (its models: Post). The registry is "
        "already populated: it will not appear later."
    )
    assert calls.calls == []
    assert registry.pending_operations() == []


@pytest.mark.parametrize("reference", ["User", "shop.", ".User", "shop.models.User"])
def test_malformed_reference_is_a_value_error(reference: str) -> None:
    with pytest.raises(ValueError, match="Invalid model reference") as caught:
        Registry().lazy_model_operation(Calls(), reference)
    assert str(caught.value) == (
        f"Invalid model reference {reference!r}: a lazy model sender must be "
        "'app_label.ModelName', such as 'shop.User'."
    )


def test_non_string_reference_and_non_callable_are_type_errors() -> None:
    registry = Registry()
    Invoice = model("Invoice")
    with pytest.raises(TypeError, match=r"is a string 'app_label\.ModelName'"):
        registry.lazy_model_operation(Calls(), Invoice)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes a callable, not 42"):
        registry.lazy_model_operation(42, "ledger.Invoice")  # type: ignore[arg-type]
    assert registry.pending_operations() == []


# -- errors raised by the operations --------------------------------------------------


def test_an_operation_that_raises_does_not_stop_the_others() -> None:
    registry = Registry()
    calls = Calls()

    def broken(model: type) -> None:
        raise RuntimeError(f"cannot handle {model.__name__}")

    registry.lazy_model_operation(broken, "ledger.Invoice")
    registry.lazy_model_operation(calls, "ledger.Invoice")
    Invoice = model("Invoice")
    with pytest.raises(RuntimeError, match="cannot handle Invoice"):
        registry.register_model("ledger", Invoice)
    assert calls.calls == [(Invoice,)]
    assert registry.get_model("ledger.Invoice") is Invoice


def test_several_operations_that_raise_are_raised_together() -> None:
    registry = Registry()

    def broken(model: type) -> None:
        raise RuntimeError(model.__name__)

    for _ in range(2):
        registry.lazy_model_operation(broken, "ledger.Invoice")
    with pytest.raises(ExceptionGroup) as caught:
        registry.register_model("ledger", model("Invoice"))
    assert str(caught.value) == "2 lazy model operations raised (2 sub-exceptions)"
    assert [str(e) for e in caught.value.exceptions] == ["Invoice", "Invoice"]


# -- threads ----------------------------------------------------------------------------


def test_racing_registrations_run_each_operation_exactly_once() -> None:
    registry = Registry()
    names = [f"M{i}" for i in range(8)]
    classes = [model(name) for name in names]
    runs: list[tuple[type, ...]] = []
    lock = threading.Lock()

    def record(*models: type) -> None:
        with lock:
            runs.append(models)

    # Each operation needs two models, registered by different threads.
    pairs = [(a, b) for a in range(8) for b in range(8) if a != b]
    for a, b in pairs:
        registry.lazy_model_operation(
            record, f"ledger.{names[a]}", f"ledger.{names[b]}"
        )
    start = threading.Barrier(8, timeout=10)

    def register(cls: type) -> None:
        start.wait()
        registry.register_model("ledger", cls)

    threads = [threading.Thread(target=register, args=(cls,)) for cls in classes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    assert sorted(runs, key=lambda m: (m[0].__name__, m[1].__name__)) == [
        (classes[a], classes[b]) for a, b in pairs
    ]
    assert registry.pending_operations() == []


def test_cancel_racing_registration_either_cancels_or_runs_never_both() -> None:
    registry = Registry()
    calls = Calls()
    handles = [
        registry.lazy_model_operation(calls, "ledger.Invoice") for _ in range(300)
    ]
    start = threading.Barrier(2, timeout=10)
    cancelled: list[bool] = []

    def cancel_all() -> None:
        start.wait()
        cancelled.extend(handle.cancel() for handle in handles)

    def register() -> None:
        start.wait()
        registry.register_model("ledger", model("Invoice"))

    threads = [threading.Thread(target=cancel_all), threading.Thread(target=register)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    assert len(calls.calls) + sum(cancelled) == len(handles)
    assert [h.cancelled for h in handles] == cancelled


# -- any interleaving -------------------------------------------------------------------

MODELS = ["A", "B", "C"]
Action = tuple[str, Any]
actions = st.one_of(
    st.tuples(st.just("wait"), st.lists(st.sampled_from(MODELS), max_size=3)),
    st.tuples(st.just("register"), st.sampled_from(MODELS)),
    st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=20)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(actions, max_size=25))
def test_an_operation_runs_once_exactly_when_its_models_all_arrive_uncancelled(
    script: list[Action],
) -> None:
    registry = Registry()
    classes = {name: model(name) for name in MODELS}
    registered: set[str] = set()
    handles: list[tuple[LazyOperation, list[str], Calls]] = []
    for kind, argument in script:
        if kind == "wait":
            calls = Calls()
            refs = [f"ledger.{name}" for name in argument]
            handles.append(
                (registry.lazy_model_operation(calls, *refs), argument, calls)
            )
        elif kind == "register":
            registry.register_model("ledger", classes[argument])
            registered.add(argument)
        elif handles:
            handles[argument % len(handles)][0].cancel()
    for handle, names, calls in handles:
        arrived = set(names) <= registered
        ran = arrived and not handle.cancelled
        assert calls.calls == ([tuple(classes[n] for n in names)] if ran else [])
        assert handle.pending == (not arrived and not handle.cancelled)
    assert set(registry.pending_operations()) == {h for h, _, _ in handles if h.pending}
