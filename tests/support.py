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
    """Fail under CI, skip elsewhere: a missing server is never a silent pass."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: servers the tests need must be present)")
    pytest.skip(reason)


def collect_garbage() -> None:
    """Collect until nothing is left, so that weak references have fired."""
    for _ in range(3):
        gc.collect()
