"""Run the examples in docstrings and in the docs, so that they stay true.

Modules whose import needs a missing extra are skipped; documentation files are
found by glob, so new ones are checked as soon as they contain ``>>>``.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

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
    result = doctest.testmod(module, optionflags=OPTIONS, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} failed"


@pytest.mark.parametrize(
    "path", documents(), ids=lambda path: str(path.relative_to(ROOT))
)
def test_document_examples(path: Path) -> None:
    result = doctest.testfile(
        str(path),
        module_relative=False,
        optionflags=OPTIONS,
        encoding="utf-8",
        report=True,
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} failed"
