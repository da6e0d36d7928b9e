"""The public surface of ``tocsin`` and ``tocsin.apps``: one sorted ``__all__``
that lists it all."""

from __future__ import annotations

import types

import tocsin
import tocsin.apps


def test_all_is_sorted() -> None:
    assert tocsin.__all__ == sorted(tocsin.__all__)


def test_every_public_name_is_exported() -> None:
    public = {
        name
        for name, value in vars(tocsin).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(tocsin.__all__)


def test_exports_exist_and_claim_the_package_as_their_module() -> None:
    for name in tocsin.__all__:
        assert getattr(tocsin, name).__module__ == "tocsin", name
    assert tocsin.Signal.__module__ == "tocsin"
    assert repr(tocsin.Signal) == "<class 'tocsin.Signal'>"


def test_apps_exports_are_complete_sorted_and_claim_the_package() -> None:
    package = tocsin.apps
    public = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(package.__all__)
    assert package.__all__ == sorted(package.__all__)
    for name in package.__all__:
        value = getattr(package, name)
        if isinstance(value, type):
            assert value.__module__ == "tocsin.apps", name
    assert repr(tocsin.apps.LazyReferenceError) == (
        "<class 'tocsin.apps.LazyReferenceError'>"
    )
