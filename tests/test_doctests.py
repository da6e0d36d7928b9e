"""Run the examples in docstrings and in the docs, so that they stay true.

Modules whose import needs a missing extra are skipped; documentation files are
found by glob, so new ones are checked as soon as they contain ``>>>``.
"""

from __future__ import annotations

import asyncio
import doctest
import gc
import importlib
import pkgutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

import tocsin
from tocsin.integrations import MissingExtraError

ROOT = Path(__file__).resolve().parent.parent
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def module_names() -> list[str]:
    names = ["tocsin"]
    for info in pkgutil.walk_packages(tocsin.__path__, prefix="tocsin."):
        names.append(info.name)
    return sorted(names)


def documents() -> list[Path]:
    candidates = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
    return [
        path
        for path in candidates
        if path.is_file() and ">>>" in path.read_text(encoding="utf-8")
    ]


def test_the_core_modules_are_among_those_checked() -> None:
    assert {"tocsin", "tocsin.testing", "tocsin.signals"} <= set(module_names())


@pytest.mark.parametrize("name", module_names())
def test_module_docstring_examples(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except MissingExtraError as error:
        pytest.skip(f"needs an extra that is not installed: {error}")
    finder = doctest.DocTestFinder()
    failed, attempted = run(finder.find(module, name, globs=dict(vars(module))))
    assert failed == 0, f"{failed} of {attempted} failed"


@pytest.mark.parametrize(
    "path", documents(), ids=lambda path: str(path.relative_to(ROOT))
)
def test_document_examples(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    name = str(path.relative_to(ROOT))
    globs = {"__name__": "__main__"}  # as doctest.testfile runs a file
    test = doctest.DocTestParser().get_doctest(text, globs, name, str(path), 0)
    failed, attempted = run([test])
    assert failed == 0, f"{failed} of {attempted} failed"


def run(tests: Iterable[doctest.DocTest]) -> tuple[int, int]:
    """Run doctests; then close the database engines they left open.

    An example may end with an engine still holding connections (as a reader's
    session would); closed by the garbage collector, Python 3.13 warns, and
    the warning would fail whatever test runs then.
    """
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    for test in tests:
        try:
            runner.run(test, clear_globs=False)
        finally:
            dispose_engines(test.globs.values())
            test.globs.clear()
    gc.collect()
    results = runner.summarize(verbose=False)
    return results.failed, results.attempted


def dispose_engines(values: Iterable[Any]) -> None:
    try:
        from sqlalchemy.engine import Engine
        from sqlalchemy.ext.asyncio import AsyncEngine
    except ImportError:
        return
    for value in list(values):
        if isinstance(value, AsyncEngine):
            asyncio.run(value.dispose())
        elif isinstance(value, Engine):
            value.dispose()
