"""Shared fixtures: real servers that the tests start on 127.0.0.1 and stop.

Under ``CI=true`` a server that cannot be started fails the run; elsewhere the
tests that need it are skipped with the reason.
"""

from __future__ import annotations

import gc
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import free_port, server_unavailable
from tocsin import signals
from tocsin.apps import apps

APP_FIXTURES = Path(__file__).parent / "apps_fixtures"
APP_PACKAGES = {p.name for p in APP_FIXTURES.iterdir() if (p / "__init__.py").exists()}

# pytester runs the inner test files that exercise tocsin's pytest plugin.
pytest_plugins = ["pytester"]


def _postgres_bin() -> str | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "pg_ctl")):
            return candidate
    found = shutil.which("pg_ctl")
    return os.path.dirname(found) if found else None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster for this test session.

    Yields a SQLAlchemy URL (psycopg driver). The binaries come from the
    Debian package ``postgresql``, which ``.ci/run`` installs when absent.
    """
    bindir = _postgres_bin()
    if bindir is None:
        server_unavailable("PostgreSQL binaries not found (apt-get install postgresql)")
    workdir = tempfile.mkdtemp(prefix="tocsin-pg-")
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(workdir, user="postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    data = os.path.join(workdir, "data")
    port = free_port()
    subprocess.run(
        [*run_as, f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [*run_as, f"{bindir}/pg_ctl", "-D", data]
    subprocess.run(
        [*pg_ctl, "-o", options, "-l", f"{workdir}/log", "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


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
