"""Helpers shared by the tests (``tests/`` is on ``sys.path``: ``from support import ...``)."""

from __future__ import annotations

import gc
import os
import socket

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_unavailable(reason: str) -> None:
    """Fail under CI, skip elsewhere: a missing server is never a silent pass.

    Meant for what the machine lacks (a PostgreSQL server, another Python): the
    skip reason says so, and ``pytest -ra`` lists it in the test summary.
    """
    if IN_CI:
        pytest.fail(
            f"{reason} (CI=true: the servers and Pythons the tests need must be "
            "present)",
            pytrace=False,
        )
    pytest.skip(f"{reason}: skipped outside CI, fails under CI=true")


def collect_garbage() -> None:
    """Collect until nothing is left, so that weak references have fired."""
    for _ in range(3):
        gc.collect()
