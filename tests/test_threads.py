"""Thread safety: connect, disconnect, send and garbage collection at once."""

from __future__ import annotations

import gc
import itertools
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tocsin import Signal

DURATION = 1.5  # seconds of stress
WATCHDOG = 30  # seconds before a thread counts as deadlocked


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


class Counting:
    """A receiver that counts the calls it gets for each send token."""

    def __init__(self) -> None:
        self.calls: Counter[object] = Counter()

    def __call__(self, token: object = None, **kwargs: Any) -> None:
        self.calls[token] += 1


class Sender:
    pass


def run_threads(workers: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                work()
            except BaseException as error:
                errors.append(error)

        return run

    threads = [threading.Thread(target=guarded(w), daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + WATCHDOG
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"threads still running after {WATCHDOG}s (deadlock?): {stuck}"
    return errors


@pytest.mark.usefixtures("frequent_thread_switches")
def test_concurrent_connect_disconnect_send_and_gc_stay_consistent() -> None:
    signal = Signal()
    permanent = Counting()
    signal.connect(permanent, weak=False)
    shared_sender = Sender()
    tokens = itertools.count()
    stop = time.monotonic() + DURATION

    def own_receivers() -> None:
        """Connect, check exact delivery, disconnect, check it is gone."""
        sender = Sender()
        rng = random.Random()
        while time.monotonic() < stop:
            mine = Counting()
            priority = rng.choice([-1, 0, 1])
            signal.connect(
                mine, sender=sender, weak=rng.random() < 0.5, priority=priority
            )
            token = next(tokens)
            signal.send(sender, token=token)
            assert mine.calls[token] == 1
            assert permanent.calls[token] == 1
            assert signal.disconnect(mine, sender=sender) is True
            token = next(tokens)
            signal.send(sender, token=token)
            assert mine.calls[token] == 0
            assert permanent.calls[token] == 1

    def weak_churn() -> None:
        """Connect receivers and senders that die, with collections."""
        rng = random.Random()
        while time.monotonic() < stop:
            doomed = [Counting() for _ in range(5)]
            doomed_sender = Sender()
            for receiver in doomed:
                if rng.random() < 0.5:
                    signal.connect(receiver, sender=doomed_sender)
                else:
                    signal.connect(receiver)
            signal.send(doomed_sender, token=next(tokens))
            del doomed, receiver, doomed_sender
            if rng.random() < 0.2:
                gc.collect()

    def shared_sends() -> None:
        """Send from one sender while others connect and disconnect to it."""
        while time.monotonic() < stop:
            token = next(tokens)
            responses = signal.send_robust(shared_sender, token=token)
            assert permanent.calls[token] == 1
            receivers = [receiver for receiver, _ in responses]
            assert len(receivers) == len(set(map(id, receivers)))
            signal.has_listeners(shared_sender)
            signal.receivers_info(sender=shared_sender)

    def shared_churn() -> None:
        rng = random.Random()
        receivers = [Counting() for _ in range(8)]
        while time.monotonic() < stop:
            receiver = rng.choice(receivers)
            if rng.random() < 0.5:
                signal.connect(receiver, sender=shared_sender, weak=False)
            else:
                signal.disconnect(receiver, sender=shared_sender)

    workers = [own_receivers] * 3 + [weak_churn] * 2 + [shared_sends] * 2
    workers += [shared_churn] * 2
    errors = run_threads(workers)

    assert errors == []
    # No send reached the permanent receiver twice, and none missed it.
    assert set(permanent.calls.values()) == {1}
    gc.collect()
    infos = signal.receivers_info()
    assert infos[0].receiver is permanent
    assert all(not info.weak for info in infos)  # every weak one died


def all_at_once(action: Callable[[], object], threads: int = 8) -> list[object]:
    """Run ``action`` in ``threads`` threads released together; the results."""
    barrier = threading.Barrier(threads)
    results: list[object] = []

    def run() -> None:
        barrier.wait(timeout=WATCHDOG)
        results.append(action())

    assert run_threads([run] * threads) == []
    return results


@pytest.mark.usefixtures("frequent_thread_switches")
def test_concurrent_connects_of_one_receiver_make_one_connection() -> None:
    for _ in range(20):
        signal = Signal()
        receiver = Counting()
        all_at_once(lambda: signal.connect(receiver, dispatch_uid="only-once"))  # noqa: B023 (run before the next iteration)
        signal.send(None, token="t")
        assert receiver.calls["t"] == 1


@pytest.mark.usefixtures("frequent_thread_switches")
def test_concurrent_disconnects_report_one_removal() -> None:
    for _ in range(20):
        signal = Signal()
        receiver = Counting()
        signal.connect(receiver)
        removed = all_at_once(lambda: signal.disconnect(receiver))  # noqa: B023 (run before the next iteration)
        assert sorted(removed) == [False] * 7 + [True]
