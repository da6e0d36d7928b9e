"""Shared fixtures: real servers that the tests start on 127.0.0.1 and stop.

Under ``CI=true`` a server that cannot be started fails the run; elsewhere the
tests that need it are skipped with the reason.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from benchmarks._postgres import PostgresUnavailable, throwaway_postgres
from benchmarks._redis import RedisUnavailable, throwaway_redis

from support import server_unavailable
from tocsin import signals
from tocsin.apps import apps

APP_FIXTURES = Path(__file__).parent / "apps_fixtures"
APP_PACKAGES = {p.name for p in APP_FIXTURES.iterdir() if (p / "__init__.py").exists()}

# pytester runs the inner test files that exercise tocsin's pytest plugin.
pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster for this test session.

    Yields a SQLAlchemy URL (psycopg driver). The binaries come from the
    Debian package ``postgresql``, which ``.ci/run`` installs when absent.
    """
    with ExitStack() as stack:
        try:
            url = stack.enter_context(throwaway_postgres())
        except PostgresUnavailable as error:
            server_unavailable(str(error))
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A throwaway Redis server (Debian's ``redis-server``) for this session.

    Yields its URL (``redis://127.0.0.1:PORT/0``). Tests share it: each one
    that needs an empty server runs ``FLUSHALL`` first.
    """
    with ExitStack() as stack:
        try:
            url = stack.enter_context(throwaway_redis())
        except RedisUnavailable as error:
            server_unavailable(str(error))
        yield url


def _forget_app_fixtures() -> None:
    for name in list(sys.modules):
        if name.partition(".")[0] in APP_PACKAGES:
            del sys.modules[name]


def _disconnect_app_fixture_receivers() -> None:
    for signal in vars(signals).values():
        if not isinstance(signal, signals.Signal):
            continue
        for info in signal.receivers_info():
            if (info.module or "").partition(".")[0] in APP_PACKAGES:
                signal.disconnect(
                    info.receiver, sender=info.sender, dispatch_uid=info.dispatch_uid
                )


@pytest.fixture
def app_fixtures(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The packages of ``tests/apps_fixtures`` importable, and imported afresh;
    afterwards their receivers disconnected and the default registry restored.

    Yields the directory of the packages.
    """
    monkeypatch.syspath_prepend(str(APP_FIXTURES))
    _forget_app_fixtures()
    restore_default = apps._isolate()
    try:
        yield APP_FIXTURES
    finally:
        _disconnect_app_fixture_receivers()
        restore_default()
        _forget_app_fixtures()
        gc.collect()  # classes are in cycles: let the registries' records forget
