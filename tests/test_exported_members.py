"""The public surface of ``tocsin``: one sorted ``__all__`` that lists it all."""

from __future__ import annotations

import types

import tocsin


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
