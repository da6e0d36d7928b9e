"""AppConfig and app discovery: what an entry of the app list becomes.

The apps are real packages in ``tests/apps_fixtures``, imported afresh for
each test (the ``app_fixtures`` fixture).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest

from tocsin.apps import AppConfig, ImproperlyConfigured, Registry, apps
from tocsin.signals import post_save

pytestmark = pytest.mark.usefixtures("app_fixtures")
FIXTURES = Path(__file__).parent.parent / "apps_fixtures"


# -- the seed's layout, end to end -------------------------------------------------


def test_seed_layout_ready_imports_signals_and_receivers_hear_post_save() -> None:
    apps.populate(["shop"])

    shop_apps = sys.modules["shop.apps"]
    shop_signals = sys.modules["shop.signals"]
    from shop.models import User

    assert apps.ready
    assert [type(c).__name__ for c in shop_apps.ready_calls] == ["ShopConfig"]
    assert apps.get_model("shop.User") is User
    user = User("ada")
    post_save.send(sender=User, instance=user, created=True)
    assert sorted(shop_signals.received, key=lambda r: r[0]) == [
        ("class", user, True),
        ("lazy", user, True),
    ]


def test_seed_layout_receivers_ignore_other_models() -> None:
    apps.populate(["shop"])
    from shop.models import Order

    post_save.send(sender=Order, instance=Order(), created=True)
    assert sys.modules["shop.signals"].received == []


def test_app_config_attributes_for_the_seed_layout() -> None:
    apps.populate(["shop"])
    config = apps.get_app_config("shop")
    assert type(config).__name__ == "ShopConfig"
    assert config.name == "shop"
    assert config.label == "shop"
    assert config.verbose_name == "Shop"
    assert config.path == str(FIXTURES / "shop")
    assert config.module is sys.modules["shop"]
    assert config.models_module is sys.modules["shop.models"]
    assert config.apps is apps
    assert [m.__name__ for m in config.get_models()] == ["User", "Order"]
    assert config.get_model("user") is sys.modules["shop.models"].User
    assert repr(config) == "<ShopConfig: shop>"


# -- listing apps ------------------------------------------------------------------


def test_module_entry_without_apps_module_gets_plain_app_config() -> None:
    registry = Registry()
    registry.populate(["blog"])
    config = registry.get_app_config("blog")
    assert type(config) is AppConfig
    assert config.name == "blog"
    assert config.path == str(FIXTURES / "blog")


def test_module_entry_picks_the_default_app_config() -> None:
    registry = Registry(["billing"])
    assert type(registry.get_app_config("billing")).__name__ == "BillingConfig"
    assert sys.modules["billing.apps"].ready_calls == ["BillingConfig"]


def test_app_config_path_entry_uses_that_class_and_its_label() -> None:
    registry = Registry(["billing.apps.PaymentsConfig"])
    config = registry.get_app_config("payments")
    assert type(config).__name__ == "PaymentsConfig"
    assert config.name == "billing"
    assert config.verbose_name == "Payments"
    assert registry.is_installed("billing")
    assert sys.modules["billing.apps"].ready_calls == ["PaymentsConfig"]


def test_discovered_config_without_name_takes_the_module_path() -> None:
    registry = Registry(["nameless"])
    config = registry.get_app_config("nameless")
    assert type(config).__name__ == "NamelessConfig"
    assert config.name == "nameless"


def test_import_error_inside_an_app_is_not_mistaken_for_a_missing_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "needsdep"
    package.mkdir()
    (package / "__init__.py").write_text("import some_missing_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry()
    try:
        with pytest.raises(ImproperlyConfigured) as caught:
            registry.populate(["needsdep"])
    finally:
        sys.modules.pop("needsdep", None)
    assert str(caught.value) == (
        "App 'needsdep': importing it raised ModuleNotFoundError: No module "
        "named 'some_missing_dependency_xyz'"
    )
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)


def test_invalid_label_is_reported() -> None:
    class Dashed(AppConfig):
        name = "blog"
        label = "my-blog"

    with pytest.raises(ImproperlyConfigured) as caught:
        Dashed("blog", importlib.import_module("blog"))
    assert str(caught.value) == (
        "App 'blog': the label 'my-blog' is not a valid Python identifier. Set a "
        "label such as 'my_blog' on its AppConfig."
    )


def test_module_without_directory_needs_a_path(monkeypatch: pytest.MonkeyPatch) -> None:
    module = type(sys)("virtual_app")
    with pytest.raises(ImproperlyConfigured, match="has no directory on disk"):
        AppConfig("virtual_app", module)

    class WithPath(AppConfig):
        path = os.sep + "srv"

    assert WithPath("virtual_app", module).path == os.sep + "srv"
