"""What the request-signal tests share: gates into the app, and a recorder."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tocsin.signals import got_request_exception, request_finished, request_started
from tocsin.testing import connected_to


class Gates:
    """Shared between a test (its thread) and the app (the server's threads)."""

    def __init__(self) -> None:
        self.release_last_chunk = threading.Event()
        self.timeline: list[str] = []


class Recorder:
    """Records what each request signal's receiver got (list.append is atomic)."""

    def __init__(self, gates: Gates, path_of: Callable[[dict[str, Any]], str]) -> None:
        self.events: list[tuple[str, Any, dict[str, Any]]] = []
        self.gates = gates
        self.path_of = path_of

    def started(self, sender: Any, **kwargs: Any) -> None:
        self.events.append(("started", sender, kwargs))
        self.gates.timeline.append("started")

    def finished(self, sender: Any, **kwargs: Any) -> None:
        self.events.append(("finished", sender, kwargs))
        self.gates.timeline.append("finished")

    def failed(self, sender: Any, **kwargs: Any) -> None:
        self.events.append(("exception", sender, kwargs))

    def named(self, name: str) -> list[tuple[str, Any, dict[str, Any]]]:
        return [event for event in self.events if event[0] == name]

    def for_path(self, path: str) -> list[str]:
        return [name for name, _, kwargs in self.events if self.path_of(kwargs) == path]


@contextmanager
def recording(
    gates: Gates, path_of: Callable[[dict[str, Any]], str]
) -> Iterator[Recorder]:
    """Reset the gates and record the three request signals during the block."""
    recorder = Recorder(gates, path_of)
    gates.timeline.clear()
    gates.release_last_chunk.clear()
    with (
        connected_to(recorder.started, request_started),
        connected_to(recorder.finished, request_finished),
        connected_to(recorder.failed, got_request_exception),
    ):
        yield recorder
