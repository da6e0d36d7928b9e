"""A throwaway PostgreSQL server on 127.0.0.1 for the benchmarks that need one.

Uses the Debian ``postgresql`` binaries, as the tests do; yields ``None`` when
they are missing, and the section then says so instead of measuring.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def server() -> Iterator[str | None]:
    """A SQLAlchemy URL (psycopg) of a fresh cluster, or ``None``."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    pg_ctl_path = found[0] if found else shutil.which("pg_ctl")
    if pg_ctl_path is None:
        yield None
        return
    bindir = os.path.dirname(pg_ctl_path)
    workdir = tempfile.mkdtemp(prefix="tocsin-bench-pg-")
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root
        shutil.chown(workdir, user="postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = os.path.join(workdir, "data")
    subprocess.run(
        [*run_as, f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    control = [*run_as, f"{bindir}/pg_ctl", "-D", data]
    # Durable commits (fsync on), as in production: the outbox's point.
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1"
    subprocess.run(
        [*control, "-o", options, "-l", f"{workdir}/log", "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*control, "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)
