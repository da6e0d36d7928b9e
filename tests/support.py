"""Helpers shared by the tests (``tests/`` is on ``sys.path``: ``from support import ...``)."""

from __future__ import annotations

import gc
import os

import pytest
from benchmarks._net import free_port

__all__ = ["IN_CI", "collect_garbage", "free_port", "server_unavailable"]

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def server_unavailable(reason: str) -> None:
    """Fail under CI, skip elsewhere: a missing server is never a silent pass."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: servers the tests need must be present)")
    pytest.skip(reason)


def collect_garbage() -> None:
    """Collect until nothing is left, so that weak references have fired."""
    for _ in range(3):
        gc.collect()
