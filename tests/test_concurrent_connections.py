"""A disconnect and a connect racing on the same sender never lose the connect."""

from __future__ import annotations

import sys
import threading
from typing import Any

from tocsin import Signal


class Sender:
    pass


def old(**kwargs: Any) -> str:
    return "old"


def new(**kwargs: Any) -> str:
    return "new"


def test_disconnecting_a_senders_last_receiver_never_loses_a_concurrent_connect() -> (
    None
):
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(300):
            signal = Signal(use_caching=True)
            sender = Sender()
            signal.connect(old, sender=sender, weak=False)
            assert signal.send(sender) == [(old, "old")]  # the sender's cache is filled
            barrier = threading.Barrier(2)

            def disconnect(
                signal: Signal = signal,
                sender: object = sender,
                barrier: threading.Barrier = barrier,
            ) -> None:
                barrier.wait()
                signal.disconnect(old, sender=sender)

            def connect(
                signal: Signal = signal,
                sender: object = sender,
                barrier: threading.Barrier = barrier,
            ) -> None:
                barrier.wait()
                signal.connect(new, sender=sender, weak=False)

            threads = [
                threading.Thread(target=disconnect),
                threading.Thread(target=connect),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=10)
            assert signal.send(sender) == [(new, "new")]
    finally:
        sys.setswitchinterval(previous)
