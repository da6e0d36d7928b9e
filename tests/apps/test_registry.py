"""The registry: populate(), model lookup, the record of prepared classes.

The apps are real packages in ``tests/apps_fixtures``, imported afresh for
each test (the ``app_fixtures`` fixture).
"""

from __future__ import annotations

import gc
import importlib
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tocsin.apps import (
    AppConfig,
    AppReadyError,
    AppRegistryNotReady,
    ImproperlyConfigured,
    LazyReferenceError,
    Registry,
    apps,
)
from tocsin.signals import class_prepared, post_save

pytestmark = pytest.mark.usefixtures("app_fixtures")


def assert_untouched(registry: Registry) -> None:
    assert not registry.ready
    assert not registry.apps_ready
    assert not registry.models_ready
    assert registry.get_models() == []
    with pytest.raises(AppRegistryNotReady):
        registry.get_app_configs()


def test_apps_are_kept_in_order_and_ready_runs_in_order() -> None:
    order: list[str] = []

    class Recorder(AppConfig):
        def ready(self) -> None:
            order.append(self.name)

    # AppConfig subclasses listed by dotted path; the fixture modules are
    # imported afresh for each test, so the added attributes do not leak.
    for name in ("shop", "blog", "billing"):
        module = importlib.import_module(name)
        module.Recorder = type("Recorder", (Recorder,), {"name": name})  # type: ignore[attr-defined]
    registry = Registry(["blog.Recorder", "shop.Recorder", "billing.Recorder"])
    assert [c.label for c in registry.get_app_configs()] == ["blog", "shop", "billing"]
    assert order == ["blog", "shop", "billing"]


def test_repeated_populate_is_a_no_op() -> None:
    registry = Registry()
    registry.populate(["billing"])
    registry.populate(["billing"])
    registry.populate(["shop"])  # ignored, as in Django: populate once
    assert [c.label for c in registry.get_app_configs()] == ["billing"]
    assert sys.modules["billing.apps"].ready_calls == ["BillingConfig"]


def test_concurrent_populate_runs_each_ready_once() -> None:
    registry = Registry()
    errors: list[BaseException] = []
    start = threading.Barrier(2, timeout=10)

    def populate() -> None:
        try:
            start.wait()
            registry.populate(["slow"])
            assert registry.ready  # the waiting thread sees it done
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=populate, name=f"t{i}") for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert len(sys.modules["slow.apps"].ready_calls) == 1


def test_populate_from_inside_ready_is_refused() -> None:
    registry = Registry()
    with pytest.raises(AppReadyError) as caught:
        registry.populate(["reentrant"])
    assert str(caught.value).startswith(
        "App 'reentrant': reentrant.apps.ReentrantConfig.ready() raised "
        "RuntimeError: populate() isn't reentrant"
    )
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert_untouched(registry)


def test_populate_rejects_a_string() -> None:
    with pytest.raises(TypeError, match=r"write populate\(\['shop'\]\)"):
        Registry().populate("shop")


def test_populate_rejects_a_non_string_entry() -> None:
    with pytest.raises(TypeError, match="got 42"):
        Registry().populate(["shop", 42])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            ["shop", "nosuchapp"],
            "Cannot import app 'nosuchapp': there is no module named 'nosuchapp'. "
            "Check the spelling in the list given to populate(), and that the "
            "package is on sys.path.",
        ),
        (
            ["shop", "nosuchpkg.apps.Config"],
            "Cannot import app 'nosuchpkg.apps.Config': there is no module named "
            "'nosuchpkg'. Check the spelling in the list given to populate(), and "
            "that the package is on sys.path.",
        ),
        (
            ["shop.apps.NoSuchConfig"],
            "Cannot import app 'shop.apps.NoSuchConfig': module 'shop.apps' has no "
            "attribute 'NoSuchConfig' (and there is no module "
            "'shop.apps.NoSuchConfig').",
        ),
        (
            ["shop.apps.ready_calls"],
            "App 'shop.apps.ready_calls' is neither a module nor an AppConfig "
            "subclass: it is [].",
        ),
        (
            ["shop", "market"],
            "Application labels aren't unique: 'shop' is the label of 'shop' and "
            "of 'market' (from 'market'). Give one of them another label in its "
            "AppConfig.",
        ),
        (
            ["shop", "shop.apps.ShopConfig"],
            "Application labels aren't unique: 'shop' is the label of 'shop' and "
            "of 'shop' (from 'shop.apps.ShopConfig'). Give one of them another "
            "label in its AppConfig.",
        ),
        (
            ["billing", "billing.apps.PaymentsConfig"],
            "Application names aren't unique: 'billing' is listed twice "
            "('billing' and 'billing.apps.PaymentsConfig').",
        ),
        (
            ["shop", "nameless.apps.NamelessConfig"],
            "App 'nameless.apps.NamelessConfig': the AppConfig "
            "nameless.apps.NamelessConfig has no 'name'. Set name to the dotted "
            'path of the app\'s package, such as name = "shop".',
        ),
        (
            ["ambiguous"],
            "App 'ambiguous': ambiguous.apps declares several AppConfig subclasses "
            "(FirstConfig, SecondConfig) and none is the default. Mark exactly one "
            "with default = True, or list the one to use by its dotted path.",
        ),
        (
            ["shop", "badmodels"],
            "App 'badmodels': importing 'badmodels.models' raised RuntimeError: "
            "the models module is broken",
        ),
    ],
)
def test_bad_entry_raises_naming_the_app_and_registers_nothing(
    entries: list[str], message: str
) -> None:
    registry = Registry()
    with pytest.raises(ImproperlyConfigured) as caught:
        registry.populate(entries)
    assert str(caught.value) == message
    assert_untouched(registry)

    registry.populate(["shop"])  # the corrected list works
    assert registry.ready
    assert [c.label for c in registry.get_app_configs()] == ["shop"]


def test_ready_that_raises_is_wrapped_naming_the_app() -> None:
    registry = Registry()
    with pytest.raises(AppReadyError) as caught:
        registry.populate(["blog", "broken"])
    assert str(caught.value) == (
        "App 'broken': broken.apps.BrokenConfig.ready() raised ValueError: "
        "the mail server is not configured"
    )
    assert isinstance(caught.value.__cause__, ValueError)
    assert_untouched(registry)
    registry.populate(["blog"])
    assert registry.get_model("blog", "Post") is sys.modules["blog.models"].Post


def test_models_registered_during_a_failed_populate_are_rolled_back() -> None:
    registry = Registry()
    with pytest.raises(AppReadyError):
        registry.populate(["shop", "broken"])
    assert registry.get_models() == []
    with pytest.raises(AppRegistryNotReady):
        registry.get_model("shop.User")
    # shop.models stays imported; the corrected populate still finds its models.
    registry.populate(["shop"])
    assert registry.get_model("shop.User") is sys.modules["shop.models"].User


def test_classes_prepared_before_populate_are_found_by_it() -> None:
    registry = Registry()
    from blog.models import Helper, Post  # prepares Post: recorded, not registered

    assert registry.get_models() == []
    registry.populate(["blog"])
    assert registry.get_models() == [Post]
    assert registry.get_app_config("blog").get_models() == [Post]
    with pytest.raises(LookupError, match="App 'blog' has no model 'Helper'"):
        registry.get_model("blog", Helper.__name__)


def test_default_registry_finds_models_imported_before_populate() -> None:
    from blog.models import Post

    apps.populate(["blog"])
    assert apps.get_model("blog.Post") is Post


def test_each_registry_records_only_the_classes_prepared_since_it_was_created() -> None:
    first = Registry()
    Early = type("Early", (), {"__module__": "blog"})
    class_prepared.send(sender=Early)
    second = Registry()
    Late = type("Late", (), {"__module__": "blog"})
    class_prepared.send(sender=Late)
    first.populate(["blog"])
    second.populate(["blog"])
    Post = sys.modules["blog.models"].Post  # prepared during populate
    assert first.get_models() == [Post, Early, Late]
    assert second.get_models() == [Late, Post]  # the order it heard them in


def test_a_dead_class_leaves_the_record() -> None:
    registry = Registry()
    Kept = type("Kept", (), {"__module__": "blog"})
    Temporary = type("Temporary", (), {"__module__": "blog"})
    for cls in (Kept, Temporary):
        class_prepared.send(sender=cls)
    del cls, Temporary
    gc.collect()
    registry.populate(["blog"])
    assert registry.get_models() == [sys.modules["blog.models"].Post, Kept]


def test_class_prepared_after_populate_registers_in_the_containing_app() -> None:
    registry = Registry(["blog"])
    Comment = type("Comment", (), {"__module__": "blog.models"})
    class_prepared.send(sender=Comment)
    assert registry.get_model("blog.comment") is Comment
    assert registry.get_model("blog", "COMMENT") is Comment


def test_class_prepared_outside_installed_apps_is_ignored() -> None:
    registry = Registry(["blog"])
    Stray = type("Stray", (), {"__module__": "elsewhere.models"})
    class_prepared.send(sender=Stray)
    assert Stray not in registry.get_models()


def test_innermost_app_owns_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "outer" / "inner").mkdir(parents=True)
    (tmp_path / "outer" / "__init__.py").write_text("")
    (tmp_path / "outer" / "inner" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        registry = Registry(["outer", "outer.inner"])
        Thing = type("Thing", (), {"__module__": "outer.inner.models"})
        class_prepared.send(sender=Thing)
        assert registry.get_model("inner.Thing") is Thing
        assert registry.get_app_config("outer").get_models() == []
    finally:
        for name in ("outer", "outer.inner"):
            sys.modules.pop(name, None)


def test_register_model_by_hand_and_conflicts() -> None:
    registry = Registry()
    Invoice = type("Invoice", (), {"__module__": "ledger.tables"})
    registry.register_model("ledger", Invoice)
    registry.register_model("ledger", Invoice)  # again: no-op
    assert registry.get_model("ledger.Invoice") is Invoice

    Reloaded = type("Invoice", (), {"__module__": "ledger.tables"})
    registry.register_model("ledger", Reloaded)
    assert registry.get_model("ledger.Invoice") is Reloaded

    Other = type("Invoice", (), {"__module__": "ledger.other"})
    with pytest.raises(ImproperlyConfigured) as caught:
        registry.register_model("ledger", Other)
    assert str(caught.value) == (
        "Conflicting 'Invoice' models in app 'ledger': ledger.tables.Invoice and "
        "ledger.other.Invoice. Rename one, or register it under another app label."
    )
    with pytest.raises(TypeError, match="takes a class"):
        registry.register_model("ledger", Invoice())


def test_lookups_before_and_after_populate() -> None:
    registry = Registry()
    with pytest.raises(AppRegistryNotReady, match=r"call apps\.populate"):
        registry.get_app_config("shop")
    with pytest.raises(AppRegistryNotReady, match="models aren't loaded yet"):
        registry.get_model("shop.User")
    registry.populate(["shop"])
    with pytest.raises(LookupError) as caught:
        registry.get_app_config("shp")
    assert str(caught.value) == "No installed app with label 'shp' (installed: shop)."
    with pytest.raises(LookupError, match="No installed app with label 'shp'"):
        registry.get_model("shp.User")
    with pytest.raises(LookupError) as caught:
        registry.get_model("shop", "Usr")
    assert str(caught.value) == "App 'shop' has no model 'Usr'."
    with pytest.raises(ValueError, match=r"must be 'app_label\.ModelName'"):
        registry.get_model("User")
    assert registry.get_containing_app_config(
        "shop.models.sub"
    ) is registry.get_app_config("shop")
    assert registry.get_containing_app_config("shopping") is None


def test_get_registered_model_answers_before_populate() -> None:
    registry = Registry()
    Invoice = type("Invoice", (), {"__module__": "ledger.tables"})
    with pytest.raises(LookupError) as caught:
        registry.get_registered_model("ledger.Invoice")
    assert str(caught.value) == "App 'ledger' has no model 'Invoice'."
    registry.register_model("ledger", Invoice)
    assert registry.get_registered_model("ledger.INVOICE") is Invoice
    assert registry.get_registered_model("ledger", "invoice") is Invoice
    with pytest.raises(AppRegistryNotReady):
        registry.get_model("ledger.Order")  # get_model insists on populate()
    with pytest.raises(ValueError, match="Invalid model reference 'Invoice'"):
        registry.get_registered_model("Invoice")


def test_registries_are_independent() -> None:
    first = Registry(["blog"])
    second = Registry()
    assert first.ready
    assert not second.ready
    assert not apps.ready


def test_registry_stops_listening_when_garbage_collected() -> None:
    before = len(class_prepared.receivers)
    registry = Registry()
    assert len(class_prepared.receivers) == before + 1
    del registry
    gc.collect()
    assert len(class_prepared.receivers) == before


def test_never_resolving_lazy_senders_fail_populate_naming_each() -> None:
    with pytest.raises(LazyReferenceError) as caught:
        apps.populate(["typo"])
    assert str(caught.value).splitlines() == [
        "The post_save receiver typo.signals.on_user_saved has a lazy reference "
        "to 'typo.Usr', but app 'typo' has no model 'Usr' (its models: User).",
        "The pre_delete receiver typo.signals.on_thing_deleted has a lazy "
        "reference to 'ghost.Thing', but app 'ghost' isn't installed.",
    ]
    assert_untouched(apps)


def test_pending_references_are_listed(tmp_path: Path) -> None:
    registry = Registry()

    def on_save(sender: Any, **kwargs: Any) -> None:
        pass

    post_save.connect(on_save, sender="shop.Customer", weak=False, apps=registry)
    assert registry.pending_references() == [
        "The post_save receiver test_registry.test_pending_references_are_listed."
        "<locals>.on_save -> 'shop.Customer'"
    ]


def test_models_imported_before_the_registry_are_named_in_the_error() -> None:
    import blog.models

    registry = Registry()  # too late to hear blog.models prepare Post

    def on_save(sender: Any, **kwargs: Any) -> None:
        pass

    post_save.connect(on_save, sender="blog.Post", weak=False, apps=registry)
    with pytest.raises(LazyReferenceError) as caught:
        registry.populate(["blog"])
    assert str(caught.value).endswith(
        "but app 'blog' has no model 'Post'. Note: blog.models was imported before "
        "this registry was created (tocsin.apps creates the default one when it is "
        "imported), so the classes prepared then are unknown to it: create the "
        "registry first, or call register_model()."
    )
    # The documented way out.
    registry.register_model("blog", blog.models.Post)
    registry.populate(["blog"])
    assert registry.get_model("blog.Post") is blog.models.Post


def test_importing_tocsin_apps_is_what_connects_the_default_registry() -> None:
    code = """
import tocsin.signals as signals
print(len(signals.class_prepared.receivers), signals.ModelSignal.default_apps)
import tocsin.apps
(info,) = signals.class_prepared.receivers_info()
print(info.receiver.__self__ is tocsin.apps.apps, signals.ModelSignal.default_apps)
"""
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert run.stderr == ""
    assert run.stdout.splitlines() == [
        "0 None",
        "True <tocsin.apps.Registry (not ready): no apps>",
    ]
