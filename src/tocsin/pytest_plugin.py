"""tocsin's pytest plugin: fixtures for tests of code that sends signals.

pytest loads it by itself wherever tocsin is installed (through the
``pytest11`` entry point, as for pytest-django or anyio); ``-p no:tocsin``
turns it off. The fixtures wrap :mod:`tocsin.testing`:

- ``tocsin_capture``: ``sent = tocsin_capture(post_save, sender=User)``
  records the sends from then until the end of the test;
- ``tocsin_on_commit_callbacks``: ``with tocsin_on_commit_callbacks(execute=True)
  as callbacks:`` collects on-commit callbacks, as pytest-django's
  ``django_capture_on_commit_callbacks``;
- ``tocsin_isolated``: the connections that the test makes to signals are
  undone after it, and those it removes are made again.

Two ini options: ``tocsin_signal_modules`` lists the modules whose signals
``tocsin_isolated`` watches besides the catalog, and ``tocsin_isolate =
true`` uses ``tocsin_isolated`` in every test.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack

import pytest

from ._signal import Signal
from .testing import Sent, capture, captured_on_commit, isolated_connections
from .transaction import Callback

__all__ = [
    "tocsin_capture",
    "tocsin_isolated",
    "tocsin_on_commit_callbacks",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "tocsin_signal_modules",
        type="args",
        default=[],
        help="modules whose signals the tocsin_isolated fixture watches, "
        "besides tocsin.signals",
    )
    parser.addini(
        "tocsin_isolate",
        type="bool",
        default=False,
        help="use the tocsin_isolated fixture in every test",
    )


@pytest.fixture
def tocsin_capture() -> Iterator[Callable[..., list[Sent]]]:
    """Record the sends of signals from the call to the end of the test.

    ``tocsin_capture(*signals, sender=None)`` takes the arguments of
    :func:`tocsin.testing.capture` and returns its list, which grows as the
    signals are sent. Receivers still run.

    .. versionadded:: 0.1
    """
    with ExitStack() as captures:

        def start(*signals: Signal, sender: object = None) -> list[Sent]:
            return captures.enter_context(capture(*signals, sender=sender))

        yield start


@pytest.fixture
def tocsin_on_commit_callbacks() -> Callable[
    ..., AbstractContextManager[list[Callback]]
]:
    """:func:`tocsin.transaction.captured_on_commit`, as a fixture.

    ``with tocsin_on_commit_callbacks(execute=False) as callbacks:`` collects
    the on-commit callbacks registered in the block (by this test's context
    only: other threads still run theirs on commit); ``execute=True`` runs
    them when the block ends.

    .. versionadded:: 0.1
    """
    return captured_on_commit


@pytest.fixture
def tocsin_isolated(request: pytest.FixtureRequest) -> Iterator[None]:
    """Undo, after the test, what it changed in the connections of signals.

    Watches the catalog's signals and those of the modules listed in the
    ``tocsin_signal_modules`` ini option (see
    :func:`tocsin.testing.isolated_connections` for what is restored).

    .. versionadded:: 0.1
    """
    modules = []
    for name in request.config.getini("tocsin_signal_modules"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError as error:
            raise pytest.UsageError(
                f"tocsin_signal_modules names {name!r}, which cannot be "
                f"imported: {error}. List importable modules that define signals."
            ) from error
    with isolated_connections(*modules):
        yield


@pytest.fixture(autouse=True)
def _tocsin_isolate_every_test(request: pytest.FixtureRequest) -> None:
    # Autouse fixtures are set up before the test's own, so with
    # ``tocsin_isolate = true`` the connections that the test's fixtures make
    # are undone too.
    if request.config.getini("tocsin_isolate"):
        request.getfixturevalue("tocsin_isolated")
