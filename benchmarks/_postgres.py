"""A throwaway PostgreSQL cluster on 127.0.0.1, for the tests and the benchmarks.

The binaries come from Debian's ``postgresql`` package
(``/usr/lib/postgresql/<major>/bin``, not on ``PATH``); ``initdb`` refuses to
run as root, so as root the cluster belongs to the ``postgres`` user. The
cluster trusts local connections, keeps its data in a temporary directory,
skips ``fsync`` (nothing in it has to survive) and is deleted on exit.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from ._net import free_port

__all__ = ["PostgresUnavailable", "postgres_bin", "throwaway_postgres"]


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are not on this machine."""


def postgres_bin() -> str | None:
    """The directory holding ``pg_ctl`` and ``initdb``, newest major first."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "pg_ctl")):
            return candidate
    found = shutil.which("pg_ctl")
    return os.path.dirname(found) if found else None


@contextmanager
def throwaway_postgres(*settings: str) -> Iterator[str]:
    """Start a PostgreSQL cluster; yield its URL; stop and delete it on exit.

    The URL uses the psycopg driver (``postgresql+psycopg://postgres@...``);
    ``url.replace("+psycopg", "+asyncpg")`` gives the asyncio one.

    Args:
        settings: Extra server settings, such as ``"max_connections=200"``.

    Raises:
        PostgresUnavailable: No PostgreSQL binaries (``apt-get install
            postgresql``).
        subprocess.CalledProcessError: ``initdb`` or ``pg_ctl`` failed.
    """
    bindir = postgres_bin()
    if bindir is None:
        raise PostgresUnavailable(
            "PostgreSQL binaries not found (apt-get install postgresql)"
        )
    workdir = tempfile.mkdtemp(prefix="tocsin-pg-")
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(workdir, user="postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    data = os.path.join(workdir, "data")
    port = free_port()
    try:
        subprocess.run(
            [*run_as, f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "postgres"],
            check=True,
            capture_output=True,
        )
        options = " ".join(
            [
                f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off",
                *(f"-c {setting}" for setting in settings),
            ]
        )
        pg_ctl = [*run_as, f"{bindir}/pg_ctl", "-D", data]
        subprocess.run(
            [*pg_ctl, "-o", options, "-l", f"{workdir}/log", "-w", "start"],
            check=True,
            capture_output=True,
        )
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(
                [*pg_ctl, "-m", "immediate", "-w", "stop"], capture_output=True
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
