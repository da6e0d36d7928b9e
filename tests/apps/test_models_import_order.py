"""The models modules of the installed apps are imported in the app list's order."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType

import pytest

from tocsin.apps import Registry

pytestmark = pytest.mark.usefixtures("app_fixtures")


class ImportRecorder(importlib.abc.MetaPathFinder):
    """Notes each ``*.models`` module as Python starts looking for it."""

    def __init__(self) -> None:
        self.models: list[str] = []

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.endswith(".models"):
            self.models.append(fullname)
        return None  # the real finders import it


@pytest.fixture
def recorder() -> Iterator[ImportRecorder]:
    finder = ImportRecorder()
    sys.meta_path.insert(0, finder)
    try:
        yield finder
    finally:
        sys.meta_path.remove(finder)


@pytest.mark.parametrize(
    "installed", [["blog", "shop"], ["shop", "blog"]], ids=["blog first", "shop first"]
)
def test_models_modules_are_imported_in_the_app_lists_order(
    installed: list[str], recorder: ImportRecorder
) -> None:
    Registry(installed)
    first_looked_up = list(dict.fromkeys(recorder.models))
    assert first_looked_up == [f"{name}.models" for name in installed]
