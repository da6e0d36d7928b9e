"""LoggingObserver: one line per receiver call, with extra fields; no handlers."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from typing import Any

import pytest

import tocsin
from tocsin import LoggingObserver, Signal, observing

order_paid = Signal(name="order_paid")
receipt_sent = Signal(name="receipt_sent")


def send_receipt(sender: Any, order: int, **kwargs: Any) -> None:
    receipt_sent.send(sender, order=order)


def archive(sender: Any, **kwargs: Any) -> None:
    return None


def slow_archive(sender: Any, **kwargs: Any) -> None:
    time.sleep(0.03)


def lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "tocsin.trace"]


def test_each_call_is_logged_with_its_extra_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    order_paid.connect(send_receipt)
    receipt_sent.connect(archive)
    try:
        with (
            caplog.at_level(logging.DEBUG, "tocsin.trace"),
            observing(LoggingObserver()),
        ):
            order_paid.send("shop", order=7)
    finally:
        order_paid.disconnect(send_receipt)
        receipt_sent.disconnect(archive)
    inner, outer = lines(caplog)  # a receiver is logged when it finishes
    assert inner.levelno == outer.levelno == logging.DEBUG
    assert inner.getMessage().startswith("  receipt_sent -> archive (")
    assert outer.getMessage().startswith("order_paid -> send_receipt (")
    assert outer.getMessage().endswith(" ms)")
    assert (outer.tocsin_signal, outer.tocsin_receiver) == (
        "order_paid",
        "send_receipt",
    )  # type: ignore[attr-defined]
    assert (outer.tocsin_depth, inner.tocsin_depth) == (0, 1)  # type: ignore[attr-defined]
    assert outer.tocsin_mode == "send"  # type: ignore[attr-defined]
    assert outer.tocsin_duration_ms >= inner.tocsin_duration_ms > 0  # type: ignore[attr-defined]


def test_slow_calls_are_logged_at_warning_and_fast_ones_can_be_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signal = Signal(name="nightly")
    signal.connect(archive)
    signal.connect(slow_archive)
    observer = LoggingObserver(level=None, slow_ms=20)
    with caplog.at_level(logging.DEBUG, "tocsin.trace"), observing(observer):
        signal.send_robust("cron")
    (line,) = lines(caplog)
    assert line.levelno == logging.WARNING
    assert line.tocsin_receiver == "slow_archive"  # type: ignore[attr-defined]
    assert "slow: 20 ms or more, send_robust" in line.getMessage()


def test_a_failing_receiver_is_logged_with_its_exception_type(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise KeyError("x")

    signal = Signal(name="s")
    signal.connect(broken, weak=False)
    with (
        caplog.at_level(logging.INFO, "tocsin.trace"),
        observing(LoggingObserver(logging.INFO)),
    ):
        signal.send_robust("shop")
    (line,) = lines(caplog)
    assert "raised KeyError" in line.getMessage()


def test_nothing_is_formatted_when_the_level_is_disabled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signal = Signal(name="s")
    signal.connect(archive)
    with caplog.at_level(logging.INFO, "tocsin.trace"), observing(LoggingObserver()):
        signal.send("shop")
    assert lines(caplog) == []


def test_level_none_without_a_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="give slow_ms= too") as raised:
        LoggingObserver(level=None)
    assert str(raised.value) == (
        "LoggingObserver(level=None) logs slow calls only: give slow_ms= too, "
        "or a level to log every call."
    )


def test_tocsin_adds_no_handler_to_its_loggers() -> None:
    with observing(LoggingObserver()):
        Signal().send("shop")
    for name in ("tocsin", "tocsin.trace", "tocsin.observe"):
        assert logging.getLogger(name).handlers == []


UNCONFIGURED = """
import tocsin
signal = tocsin.Signal(name="s")
def receiver(sender, **kwargs):
    return None
signal.connect(receiver)
class Broken(tocsin.Observer):
    def send_started(self, dispatch):
        raise RuntimeError("observer bug")
tocsin.observe(tocsin.LoggingObserver())
tocsin.observe(Broken())
signal.send("shop")
"""


def test_unconfigured_only_warnings_reach_stderr() -> None:
    run = subprocess.run(
        [sys.executable, "-c", UNCONFIGURED], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert "observer bug" in run.stderr  # the WARNING, through logging.lastResort
    assert "s -> receiver" not in run.stderr  # the DEBUG line is not shown
    assert tocsin.LoggingObserver.__module__ == "tocsin"


# -- exact lines, with a clock that advances 20 ms per reading ---------------------


@pytest.fixture
def clock_20ms(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each reading of the observation clock is 20 ms after the last, so that a
    receiver that sends nothing lasts exactly 20 ms."""
    import itertools

    from tocsin import _observe

    ticks = itertools.count(step=20_000_000)
    monkeypatch.setattr(_observe, "_clock", lambda: next(ticks))


def logged(caplog: pytest.LogCaptureFixture) -> list[tuple[str, int, str, float]]:
    """Every record (of any logger), with the duration field of trace lines."""
    return [
        (r.name, r.levelno, r.getMessage(), getattr(r, "tocsin_duration_ms", -1.0))
        for r in caplog.records
    ]


def test_a_call_as_long_as_the_threshold_is_slow_and_each_line_reads_exactly(
    caplog: pytest.LogCaptureFixture, clock_20ms: None
) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise KeyError("x")

    signal = Signal(name="nightly")
    signal.connect(broken, weak=False)
    with caplog.at_level(logging.DEBUG), observing(LoggingObserver(slow_ms=20)):
        signal.send_robust("cron")
    # Nothing else is logged: the tocsin logger's ERROR aside, no observer
    # failed (it would be reported on tocsin.observe).
    assert [x for x in logged(caplog) if x[0] == "tocsin.trace"] == [
        (
            "tocsin.trace",
            logging.WARNING,
            "nightly -> "
            "test_a_call_as_long_as_the_threshold_is_slow_and_each_line_reads_exactly"
            ".<locals>.broken (20.00 ms, raised KeyError, slow: 20 ms or more, "
            "send_robust)",
            20.0,
        )
    ]
    assert {r.name for r in caplog.records} == {"tocsin", "tocsin.trace"}


def test_a_fast_call_with_level_none_is_left_out_without_an_error(
    caplog: pytest.LogCaptureFixture, clock_20ms: None
) -> None:
    signal = Signal(name="nightly")
    signal.connect(archive)
    with caplog.at_level(logging.DEBUG), observing(LoggingObserver(None, slow_ms=21)):
        signal.send("cron")
    assert caplog.records == []


def test_an_asend_line_has_no_mode_and_an_unnamed_signal_shows_its_repr(
    caplog: pytest.LogCaptureFixture, clock_20ms: None
) -> None:
    import asyncio

    signal = Signal()
    signal.connect(archive)
    with caplog.at_level(logging.DEBUG, "tocsin.trace"), observing(LoggingObserver()):
        asyncio.run(signal.asend("shop"))
    assert logged(caplog) == [
        (
            "tocsin.trace",
            logging.DEBUG,
            f"{signal!r} -> archive (20.00 ms)",
            20.0,
        )
    ]


def test_a_deferred_receiver_is_logged_when_scheduled_and_when_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tocsin import _observe
    from tocsin.transaction import captured_on_commit

    signal = Signal(name="paid")
    signal.connect(archive, on_commit=True)
    with caplog.at_level(logging.DEBUG), observing(LoggingObserver()):
        # A clock that stands still: the scheduling takes no time at all.
        with captured_on_commit() as callbacks, pytest.MonkeyPatch.context() as patch:
            patch.setattr(_observe, "_clock", lambda: 7)
            signal.send("shop")
        (callback,) = callbacks
        scheduled = logged(caplog)
        callback()
    assert scheduled == [
        (
            "tocsin.trace",
            logging.DEBUG,
            "paid -> archive (scheduled on_commit)",
            0.0,
        )
    ]
    ran = caplog.records[-1].getMessage()
    assert ran.startswith("paid -> archive (")
    assert ran.endswith(" ms, on_commit)")
