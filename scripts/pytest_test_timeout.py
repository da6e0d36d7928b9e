"""A pytest plugin that fails a test that runs too long (for mutation runs).

A mutant that loses a wake-up or breaks cancellation can leave an async send
waiting forever. mutmut would stop the whole run of that mutant's tests only
after 15 times their usual time; this plugin fails the hanging test itself
after ``LIMIT`` seconds (a ``TimeoutError`` raised in the main thread, and
again every second, so that an event loop's own cleanup cannot hang too).
scripts/mutation.py copies it into the scratch tree and loads it with ``-p``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Generator
from typing import Any

import pytest

# Seconds: scripts/mutation.py sets it per module, far above its slowest test's
# time on a loaded machine.
LIMIT = float(os.environ.get("TOCSIN_TEST_TIMEOUT", "15"))


def _expire(signum: int, frame: Any) -> None:
    raise TimeoutError(f"the test ran for more than {LIMIT} s (a hanging mutant?)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    previous = signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, LIMIT, 1.0)
    try:
        return (yield)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
