"""Helpers shared by the tests (``tests/`` is on ``sys.path``: ``from support import ...``)."""

from __future__ import annotations

import gc
import os
import socket
import threading
from typing import Any

import pytest

from tocsin import Dispatch, Observer, ReceiverCall

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


class Recorder(Observer):
    """Keeps every callback, in order, as (callback, record)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

    def _add(self, name: str, record: Any) -> None:
        with self.lock:
            self.events.append((name, record))

    def send_started(self, dispatch: Dispatch) -> None:
        self._add("send_started", dispatch)

    def receiver_started(self, call: ReceiverCall) -> None:
        self._add("receiver_started", call)

    def receiver_finished(self, call: ReceiverCall) -> None:
        self._add("receiver_finished", call)

    def send_finished(self, dispatch: Dispatch) -> None:
        self._add("send_finished", dispatch)

    def trail(self) -> list[str]:
        """Events as strings: ``send_started <signal>``, ``receiver_started <name>``."""
        out = []
        for name, record in self.events:
            if isinstance(record, Dispatch):
                out.append(f"{name} {record.signal.name}")
            else:
                out.append(f"{name} {record.qualname.rsplit('.', 1)[-1]}")
        return out

    def dispatches(self) -> list[Dispatch]:
        return [r for n, r in self.events if n == "send_started"]
