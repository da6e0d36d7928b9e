"""Run the examples in docstrings and in the docs, so that they stay true.

Modules whose import needs a missing extra are skipped. The documentation is
every page of the site (the nav of mkdocs.yml), the README and any other
Markdown file under docs/: each one's ``>>>`` examples run as a doctest, a
Python block without prompts must at least compile, and a block that starts with
``# test_<name>.py`` is a pytest file, run with pytest.
"""

from __future__ import annotations

import asyncio
import doctest
import gc
import importlib
import pkgutil
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

import tocsin
from tocsin.integrations import MissingExtraError

ROOT = Path(__file__).resolve().parent.parent
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def module_names() -> list[str]:
    names = ["tocsin"]
    for info in pkgutil.walk_packages(tocsin.__path__, prefix="tocsin."):
        names.append(info.name)
    return sorted(names)


def site_pages() -> list[Path]:
    """The pages that mkdocs.yml's nav lists, in its order."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    pages: list[Path] = []

    def walk(entry: Any) -> None:
        if isinstance(entry, str):
            pages.append(ROOT / "docs" / entry)
        elif isinstance(entry, list):
            for item in entry:
                walk(item)
        elif isinstance(entry, dict):
            for value in entry.values():
                walk(value)

    walk(config["nav"])
    return pages


def documents() -> list[Path]:
    pages = site_pages()
    others = [p for p in sorted((ROOT / "docs").glob("**/*.md")) if p not in pages]
    return [ROOT / "README.md", *pages, *others]


FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: Path) -> list[str]:
    """The fenced Python blocks of a page that are not doctests."""
    text = path.read_text(encoding="utf-8")
    return [block for block in FENCE.findall(text) if ">>>" not in block]


def test_every_page_of_the_site_exists_and_every_guide_is_on_the_site() -> None:
    pages = site_pages()
    assert pages, "mkdocs.yml lists no page"
    missing = [str(p.relative_to(ROOT)) for p in pages if not p.is_file()]
    assert missing == []
    guides = set((ROOT / "docs").glob("*.md"))
    assert guides <= set(pages), "a page in docs/ is missing from mkdocs.yml's nav"
    assert {"tutorial.md", "differences.md"} <= {p.name for p in pages}


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
def test_python_blocks_without_prompts_compile(path: Path) -> None:
    for number, block in enumerate(python_blocks(path), start=1):
        compile(block, f"{path.name}, Python block {number}", "exec")


@pytest.mark.parametrize(
    "path", documents(), ids=lambda path: str(path.relative_to(ROOT))
)
def test_pytest_files_in_the_docs_pass(path: Path, pytester: pytest.Pytester) -> None:
    files = [b for b in python_blocks(path) if re.match(r"# test_\w+\.py\n", b)]
    for block in files:
        name = block.split("\n", 1)[0].removeprefix("# ").removesuffix(".py")
        pytester.makepyfile(**{name: block})
    if files:
        result = pytester.runpytest_subprocess("-p", "no:randomly", "-q")
        assert result.ret == 0, result.stdout.str()
        assert result.parseoutcomes()["passed"] == sum(
            len(re.findall(r"^def test_", block, re.M)) for block in files
        )


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
