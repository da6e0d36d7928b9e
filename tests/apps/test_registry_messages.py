"""What the registry says: its repr, and the errors of lookups made too early
or for an app that is not installed (each names the fix or the choices)."""

from __future__ import annotations

import pytest

from tocsin.apps import AppRegistryNotReady, Registry

pytestmark = pytest.mark.usefixtures("app_fixtures")


def test_the_registry_repr_says_whether_it_is_ready_and_lists_its_apps() -> None:
    registry = Registry()
    assert repr(registry) == "<tocsin.apps.Registry (not ready): no apps>"
    registry.populate(["shop", "blog"])
    assert repr(registry) == "<tocsin.apps.Registry (ready): shop, blog>"


def test_a_lookup_before_populate_says_to_call_populate() -> None:
    registry = Registry()
    with pytest.raises(AppRegistryNotReady) as apps_error:
        registry.get_app_config("shop")
    assert str(apps_error.value) == (
        "Apps aren't loaded yet: call apps.populate([...]) with your app list "
        "at start-up first."
    )
    with pytest.raises(AppRegistryNotReady) as models_error:
        registry.get_model("shop.User")
    assert str(models_error.value) == (
        "Cannot look up shop.User: models aren't loaded yet. Call "
        "apps.populate([...]) first, or register_model()."
    )


def test_an_unknown_app_label_error_lists_every_installed_app() -> None:
    none, two = Registry([]), Registry(["shop", "blog"])
    with pytest.raises(LookupError) as caught:
        none.get_app_config("shop")
    assert str(caught.value) == "No installed app with label 'shop' (installed: none)."
    with pytest.raises(LookupError) as caught:
        two.get_app_config("shp")
    assert str(caught.value) == (
        "No installed app with label 'shp' (installed: shop, blog)."
    )
