"""Shared fixtures: real servers that the tests start on 127.0.0.1 and stop.

Under ``CI=true`` a server that cannot be started fails the run; elsewhere the
tests that need it are skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from benchmarks._postgres import PostgresUnavailable, throwaway_postgres

from support import server_unavailable


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
