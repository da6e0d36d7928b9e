"""ModelSignal: lazy ``"app_label.ModelName"`` senders for the model signals."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

import pytest

from tocsin import Signal, WeakReceiverWarning, _options, receiver, signals
from tocsin.apps import LazyReferenceError, Registry, apps
from tocsin.signals import ModelSignal, class_prepared, post_save, pre_delete, pre_save
from tocsin.testing import connected_to

pytestmark = pytest.mark.usefixtures("app_fixtures")
MODEL_SIGNALS = [
    "pre_init",
    "post_init",
    "pre_save",
    "post_save",
    "pre_delete",
    "post_delete",
    "m2m_changed",
]


def model(name: str, module: str = "ledger.models") -> type:
    return type(name, (), {"__module__": module})


def senders(signal: Signal, func: Callable[..., Any]) -> list[object]:
    return [info.sender for info in signal.receivers_info() if info.receiver is func]


# -- the catalog -----------------------------------------------------------------------


@pytest.mark.parametrize("name", MODEL_SIGNALS)
def test_model_signals_are_model_signals_with_their_docs(name: str) -> None:
    signal = getattr(signals, name)
    assert type(signal) is ModelSignal
    assert signal.name == name
    assert signal.use_caching is True
    assert "sender" in (signal.__doc__ or "")


def test_class_prepared_stays_a_plain_signal() -> None:
    assert type(class_prepared) is Signal


def test_model_signal_adds_nothing_to_sending() -> None:
    for method in ("send", "send_robust", "asend", "asend_robust", "has_listeners"):
        assert method not in vars(ModelSignal)


# -- connecting lazily ------------------------------------------------------------------


def test_known_model_is_resolved_at_once() -> None:
    registry = Registry()
    Invoice = model("Invoice")
    registry.register_model("ledger", Invoice)
    signal = ModelSignal()

    def on_save(sender: Any, **kwargs: Any) -> str:
        return "saved"

    signal.connect(on_save, sender="ledger.Invoice", weak=False, apps=registry)
    assert senders(signal, on_save) == [Invoice]
    assert signal.send(sender=Invoice) == [(on_save, "saved")]
    assert registry.pending_references() == []


def test_model_name_is_case_insensitive_label_is_not() -> None:
    registry = Registry()
    Invoice = model("Invoice")
    registry.register_model("ledger", Invoice)
    signal = ModelSignal()

    def on_save(sender: Any, **kwargs: Any) -> None:
        pass

    signal.connect(on_save, sender="ledger.INVOICE", weak=False, apps=registry)
    signal.connect(on_save, sender="Ledger.Invoice", weak=False, apps=registry)
    assert senders(signal, on_save) == [Invoice]
    assert registry.pending_references() == [
        "The signal receiver test_model_signal."
        "test_model_name_is_case_insensitive_label_is_not.<locals>.on_save "
        "-> 'Ledger.Invoice'"
    ]


def test_unknown_model_waits_and_is_connected_when_registered() -> None:
    registry = Registry()
    signal = ModelSignal(name="post_save")
    calls: list[object] = []

    def on_save(sender: Any, **kwargs: Any) -> None:
        calls.append(sender)

    signal.connect(on_save, sender="ledger.Invoice", weak=False, apps=registry)
    assert not signal.receivers
    Invoice = model("Invoice")
    registry.register_model("ledger", Invoice)
    assert senders(signal, on_save) == [Invoice]
    signal.send(sender=Invoice)
    signal.send(sender=model("Invoice"))  # another class of the same name
    assert calls == [Invoice]


def test_lazy_sender_resolved_when_class_prepared_during_populate() -> None:
    registry = Registry()
    seen: list[object] = []

    @receiver(pre_save, sender="blog.Post", apps=registry, weak=False)
    def on_pre_save(sender: Any, **kwargs: Any) -> None:
        seen.append(sender)

    try:
        assert senders(pre_save, on_pre_save) == []
        registry.populate(["blog"])  # imports blog.models, which prepares Post
        Post = sys.modules["blog.models"].Post
        assert senders(pre_save, on_pre_save) == [Post]
        pre_save.send(sender=Post, instance=Post())
        assert seen == [Post]
    finally:
        pre_save.disconnect(on_pre_save, sender="blog.Post", apps=registry)
    assert senders(pre_save, on_pre_save) == []


def test_lazy_sender_resolved_for_a_model_prepared_before_populate() -> None:
    registry = Registry()
    from blog.models import Post

    signal = ModelSignal()

    def on_save(sender: Any, **kwargs: Any) -> None:
        pass

    signal.connect(on_save, sender="blog.Post", weak=False, apps=registry)
    assert not signal.receivers
    registry.populate(["blog"])
    assert senders(signal, on_save) == [Post]


def test_lazy_sender_resolved_for_a_class_prepared_later_in_an_installed_app() -> None:
    registry = Registry()
    signal = ModelSignal()
    created: list[type] = []

    class LateConfig(registry_app_config("blog")):  # type: ignore[misc]
        def ready(self) -> None:
            # Another app's ready() prepares a model of this app.
            Comment = model("Comment", module="blog.models")
            created.append(Comment)
            class_prepared.send(sender=Comment)

    sys.modules["blog"].LateConfig = LateConfig  # type: ignore[attr-defined]

    def on_save(sender: Any, **kwargs: Any) -> None:
        pass

    signal.connect(on_save, sender="blog.Comment", weak=False, apps=registry)
    registry.populate(["blog.LateConfig"])
    assert senders(signal, on_save) == created


def registry_app_config(package: str) -> type:
    """A base AppConfig for ``package``, imported fresh (for the test above)."""
    import importlib

    from tocsin.apps import AppConfig

    importlib.import_module(package)
    return type("Base", (AppConfig,), {"name": package})


def test_default_registry_is_used_without_apps() -> None:
    Invoice = model("Invoice")
    apps.register_model("ledger", Invoice)
    signal = ModelSignal()

    def on_save(sender: Any, **kwargs: Any) -> None:
        pass

    signal.connect(on_save, sender="ledger.Invoice", weak=False)
    assert senders(signal, on_save) == [Invoice]


def test_seed_style_receiver_decorator_with_lazy_sender() -> None:
    registry = Registry()
    Invoice = model("Invoice")

    @receiver([pre_save, post_save], sender="ledger.Invoice", apps=registry, weak=False)
    def audit(sender: Any, **kwargs: Any) -> str:
        return "audited"

    try:
        registry.register_model("ledger", Invoice)
        assert post_save.send(sender=Invoice, instance=Invoice(), created=True) == [
            (audit, "audited")
        ]
        assert pre_save.send(sender=Invoice, instance=Invoice()) == [(audit, "audited")]
    finally:
        for signal in (pre_save, post_save):
            signal.disconnect(audit, sender=Invoice)


def test_apps_is_ignored_for_a_class_sender() -> None:
    signal = ModelSignal()
    Invoice = model("Invoice")

    def on_save(sender: Any, **kwargs: Any) -> None:
        pass

    signal.connect(on_save, sender=Invoice, weak=False, apps=Registry())
    assert senders(signal, on_save) == [Invoice]
    assert signal.receivers_info()[0].options == {}


def test_connect_options_priority_and_uid_survive_the_wait() -> None:
    tagged: list[tuple[Any, Any]] = []

    class Tag(_options.ConnectOption):
        name = "tag"

        def deliver(
            self,
            value: Any,
            receiver: Callable[..., Any],
            signal: Signal,
            sender: Any,
            named: dict[str, Any],
            robust: bool,
        ) -> str:
            tagged.append((value, receiver))
            return _options.NOW

    _options.register(Tag())
    try:
        registry = Registry()
        signal = ModelSignal()

        def low(sender: Any, **kwargs: Any) -> str:
            return "low"

        def high(sender: Any, **kwargs: Any) -> str:
            return "high"

        signal.connect(low, sender="ledger.Invoice", weak=False, apps=registry)
        signal.connect(
            high,
            sender="ledger.Invoice",
            weak=False,
            priority=5,
            dispatch_uid="high",
            tag="t",
            apps=registry,
        )
        Invoice = model("Invoice")
        registry.register_model("ledger", Invoice)
        infos = signal.receivers_info(sender=Invoice)
        assert [(i.receiver, i.priority, i.dispatch_uid, i.options) for i in infos] == [
            (high, 5, "high", {"tag": "t"}),
            (low, 0, None, {}),
        ]
        assert signal.send(sender=Invoice) == [(low, "low"), (high, "high")]
        assert tagged == [("t", high)]
    finally:
        _options._handlers.pop("tag", None)


def test_connecting_the_same_lazy_receiver_twice_is_a_no_op() -> None:
    registry = Registry()
    signal = ModelSignal()

    def on_save(sender: Any, **kwargs: Any) -> str:
        return "once"

    signal.connect(on_save, sender="ledger.Invoice", weak=False, apps=registry)
    signal.connect(on_save, sender="ledger.invoice", weak=False, apps=registry)
    assert len(registry.pending_references()) == 1
    Invoice = model("Invoice")
    registry.register_model("ledger", Invoice)
    assert signal.send(sender=Invoice) == [(on_save, "once")]


def test_a_waiting_connection_is_a_public_lazy_operation_of_the_registry() -> None:
    registry = Registry()
    signal = ModelSignal(name="post_save")

    def on_save(sender: Any, **kwargs: Any) -> None:
        pass

    signal.connect(on_save, sender="ledger.Invoice", weak=False, apps=registry)
    (operation,) = registry.pending_operations("ledger.invoice")
    assert operation.references == ("ledger.Invoice",)
    assert operation.description == (
        "The post_save receiver test_model_signal."
        "test_a_waiting_connection_is_a_public_lazy_operation_of_the_registry."
        "<locals>.on_save"
    )
    assert operation.cancel() is True  # cancelling it cancels the connection
    registry.register_model("ledger", model("Invoice"))
    assert not signal.receivers


def test_lazy_sender_without_tocsin_apps_asks_for_it() -> None:
    code = """
import sys
from tocsin.signals import post_save

def on_save(sender, **kwargs):
    pass

try:
    post_save.connect(on_save, sender="shop.User")
except RuntimeError as error:
    print(error)
print("tocsin.apps" in sys.modules, post_save.receivers)
"""
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert run.stderr == ""
    assert run.stdout.splitlines() == [
        "The lazy sender 'shop.User' needs an app registry, and there is none "
        "yet: import tocsin.apps (its default registry resolves lazy senders) "
        "before connecting, or pass apps=registry.",
        "False []",
    ]


# -- disconnecting ------------------------------------------------------------------------


def test_disconnect_cancels_a_waiting_connection() -> None:
    registry = Registry()
    signal = ModelSignal()

    def on_save(sender: Any, **kwargs: Any) -> None:
        pass

    signal.connect(on_save, sender="ledger.Invoice", weak=False, apps=registry)
    assert signal.disconnect(on_save, sender="ledger.Invoice", apps=registry) is True
    assert signal.disconnect(on_save, sender="ledger.Invoice", apps=registry) is False
    registry.register_model("ledger", model("Invoice"))
    assert not signal.receivers
    assert registry.pending_references() == []


def test_disconnect_by_lazy_sender_once_resolved() -> None:
    registry = Registry()
    signal = ModelSignal()
    registry.register_model("ledger", model("Invoice"))

    def on_save(sender: Any, **kwargs: Any) -> None:
        pass

    signal.connect(on_save, sender="ledger.Invoice", weak=False, apps=registry)
    assert signal.disconnect(on_save, sender="ledger.Invoice", apps=registry) is True
    assert not signal.receivers


def test_disconnect_by_dispatch_uid_with_lazy_sender() -> None:
    registry = Registry()
    signal = ModelSignal()

    def on_save(sender: Any, **kwargs: Any) -> None:
        pass

    signal.connect(
        on_save, sender="ledger.Invoice", weak=False, dispatch_uid="x", apps=registry
    )
    assert signal.disconnect(sender="ledger.Invoice", dispatch_uid="x", apps=registry)
    assert registry.pending_references() == []
    with pytest.raises(TypeError, match="needs the receiver or the dispatch_uid"):
        signal.disconnect(sender="ledger.Invoice", apps=registry)


def test_disconnect_one_signal_leaves_the_other_waiting() -> None:
    registry = Registry()
    first, second = ModelSignal(), ModelSignal()

    def on_save(sender: Any, **kwargs: Any) -> None:
        pass

    first.connect(on_save, sender="ledger.Invoice", weak=False, apps=registry)
    second.connect(on_save, sender="ledger.Invoice", weak=False, apps=registry)
    first.disconnect(on_save, sender="ledger.Invoice", apps=registry)
    Invoice = model("Invoice")
    registry.register_model("ledger", Invoice)
    assert not first.receivers
    assert senders(second, on_save) == [Invoice]


def test_connected_to_accepts_a_lazy_sender() -> None:
    Invoice = model("Invoice")
    apps.register_model("ledger", Invoice)
    calls: list[object] = []

    def on_delete(sender: Any, **kwargs: Any) -> None:
        calls.append(sender)

    with connected_to(on_delete, pre_delete, sender="ledger.Invoice"):
        pre_delete.send(sender=Invoice, instance=None)
    pre_delete.send(sender=Invoice, instance=None)
    assert calls == [Invoice]


# -- weak receivers while waiting -----------------------------------------------------------


class Handler:
    def __init__(self) -> None:
        self.calls = 0

    def on_save(self, sender: Any, **kwargs: Any) -> None:
        self.calls += 1


def test_weak_waiting_receiver_is_not_kept_alive() -> None:
    registry = Registry()
    signal = ModelSignal(name="post_save")
    handler = Handler()
    signal.connect(handler.on_save, sender="ledger.Invoice", apps=registry)
    del handler
    gc.collect()
    assert registry.pending_references() == []
    registry.register_model("ledger", model("Invoice"))
    assert not signal.receivers


def test_a_registry_with_waiting_connections_can_be_garbage_collected() -> None:
    registry = Registry()
    signal = ModelSignal()

    def on_save(sender: Any, **kwargs: Any) -> None:
        pass

    signal.connect(on_save, sender="ledger.Invoice", weak=False, apps=registry)
    collected = weakref.ref(registry)
    del registry
    gc.collect()
    assert collected() is None  # the signal does not keep it alive


def test_weak_waiting_method_is_connected_weakly() -> None:
    registry = Registry()
    signal = ModelSignal()
    handler = Handler()
    signal.connect(handler.on_save, sender="ledger.Invoice", apps=registry)
    Invoice = model("Invoice")
    registry.register_model("ledger", Invoice)
    signal.send(sender=Invoice)
    assert handler.calls == 1
    assert [info.weak for info in signal.receivers_info()] == [True]
    del handler
    gc.collect()
    assert not signal.receivers


def test_weak_lambda_warns_once_at_connect_pointing_at_the_caller() -> None:
    registry = Registry()
    signal = ModelSignal()
    with pytest.warns(WeakReceiverWarning) as warned:
        signal.connect(
            lambda sender, **kw: None, sender="ledger.Invoice", apps=registry
        )
    assert [w.filename for w in warned] == [__file__]
    # Resolving it does not warn again (warnings are errors in this suite).
    registry.register_model("ledger", model("Invoice"))


def test_weak_local_function_via_receiver_warns_at_the_decorator() -> None:
    registry = Registry()
    signal = ModelSignal()
    with pytest.warns(WeakReceiverWarning) as warned:

        @receiver(signal, sender="ledger.Invoice", apps=registry)
        def local(sender: Any, **kwargs: Any) -> None:
            pass

    assert [w.filename for w in warned] == [__file__]
    registry.register_model("ledger", model("Invoice"))
    assert senders(signal, local) == [registry.get_model("ledger.Invoice")]


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reference", ["User", "shop.", ".User", "shop.models.User", ""]
)
def test_malformed_lazy_sender_is_a_value_error(reference: str) -> None:
    def on_save(sender: Any, **kwargs: Any) -> None:
        pass

    with pytest.raises(ValueError, match="Invalid model reference") as caught:
        post_save.connect(on_save, sender=reference, weak=False, apps=Registry())
    assert str(caught.value) == (
        f"Invalid model reference {reference!r}: a lazy model sender must be "
        "'app_label.ModelName', such as 'shop.User'."
    )
    assert senders(post_save, on_save) == []


def test_bad_receiver_is_rejected_at_connect_not_when_the_model_arrives() -> None:
    registry = Registry()

    def no_kwargs(sender: Any) -> None:
        pass

    with pytest.raises(ValueError, match=r"must accept keyword arguments"):
        post_save.connect(no_kwargs, sender="ledger.Invoice", apps=registry)
    with pytest.raises(TypeError, match="must be callable"):
        post_save.connect(42, sender="ledger.Invoice", apps=registry)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        post_save.connect(
            lambda sender, **kw: None,
            sender="ledger.Invoice",
            weak=False,
            bogus=True,
            apps=registry,
        )
    assert registry.pending_references() == []


def test_unknown_model_after_populate_fails_at_once() -> None:
    registry = Registry(["blog"])

    def on_save(sender: Any, **kwargs: Any) -> None:
        pass

    with pytest.raises(LazyReferenceError) as caught:
        post_save.connect(on_save, sender="blog.Pst", weak=False, apps=registry)
    assert str(caught.value) == (
        "The post_save receiver test_model_signal."
        "test_unknown_model_after_populate_fails_at_once.<locals>.on_save has a "
        "lazy reference to 'blog.Pst', but app 'blog' has no model 'Pst' (its "
        "models: Post). The registry is already populated: it will not appear "
        "later."
    )
    with pytest.raises(LazyReferenceError, match="but app 'shop' isn't installed"):
        post_save.connect(on_save, sender="shop.User", weak=False, apps=registry)
    assert senders(post_save, on_save) == []


def test_never_resolving_reference_fails_populate_and_stays_listed() -> None:
    registry = Registry()
    signal = ModelSignal(name="post_delete")

    def on_delete(sender: Any, **kwargs: Any) -> None:
        pass

    signal.connect(on_delete, sender="blog.Comment", weak=False, apps=registry)
    with pytest.raises(LazyReferenceError) as caught:
        registry.populate(["blog"])
    assert str(caught.value) == (
        "The post_delete receiver test_model_signal."
        "test_never_resolving_reference_fails_populate_and_stays_listed.<locals>."
        "on_delete has a lazy reference to 'blog.Comment', but app 'blog' has no "
        "model 'Comment' (its models: Post)."
    )
    assert not registry.ready
    # Fixed by cancelling the connection: populate then succeeds.
    signal.disconnect(on_delete, sender="blog.Comment", apps=registry)
    registry.populate(["blog"])
    assert registry.ready


# -- threads ----------------------------------------------------------------------------------


def test_lazy_connects_racing_registration_are_each_connected_once() -> None:
    registry = Registry()
    signal = ModelSignal()

    def make(number: int) -> Callable[..., int]:
        def respond(sender: Any, **kwargs: Any) -> int:
            return number

        return respond

    receivers = [make(i) for i in range(200)]
    start = threading.Barrier(5, timeout=10)
    Invoice = model("Invoice")

    def connect(part: list[Callable[..., Any]]) -> None:
        start.wait()
        for func in part:
            signal.connect(func, sender="ledger.Invoice", weak=False, apps=registry)

    def register() -> None:
        start.wait()
        registry.register_model("ledger", Invoice)

    threads = [
        threading.Thread(target=connect, args=(receivers[i::4],)) for i in range(4)
    ]
    threads.append(threading.Thread(target=register))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    responses = sorted(response for _, response in signal.send(sender=Invoice))
    assert responses == list(range(200))
    assert registry.pending_references() == []
