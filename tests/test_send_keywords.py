"""What a send passes on: every keyword it was given, whatever the names and
whatever the sends before it used."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tocsin import Signal


def record(**kwargs: Any) -> dict[str, Any]:
    return kwargs


def test_a_send_with_more_keyword_names_than_the_last_delivers_them_all() -> None:
    signal = Signal()
    signal.connect(record, weak=False)

    [(_, fewer)] = signal.send(None, order=1)
    [(_, more)] = signal.send(None, order=2, total=30, currency="EUR")
    [(_, fewer_again)] = signal.send(None, order=3)

    assert fewer == {"signal": signal, "sender": None, "order": 1}
    assert more == {
        "signal": signal,
        "sender": None,
        "order": 2,
        "total": 30,
        "currency": "EUR",
    }
    assert fewer_again == {"signal": signal, "sender": None, "order": 3}


def test_a_python_keyword_as_an_argument_name_is_delivered() -> None:
    signal = Signal()
    signal.connect(record, weak=False)
    [(_, response)] = signal.send(None, **{"class": 1})
    assert response["class"] == 1


def test_send_robust_with_an_unusual_name_returns_a_failing_receivers_error() -> None:
    signal = Signal()
    error = LookupError("no such field")

    def failing(**kwargs: Any) -> None:
        raise error

    signal.connect(failing, weak=False)
    signal.connect(record, weak=False)
    named = {"not-an-identifier": 1, "class": 2}

    responses = signal.send_robust(None, **named)

    assert responses[0] == (failing, error)
    assert responses[1][0] is record
    assert {name: responses[1][1][name] for name in named} == named


@pytest.mark.parametrize(
    "named", [{"not-an-identifier": 1}, {"class": 2}, {"order": 3}, {}], ids=repr
)
def test_send_raises_a_failing_receivers_error_whatever_the_names(
    named: dict[str, Any],
) -> None:
    signal = Signal()
    calls: list[str] = []

    def failing(**kwargs: Any) -> None:
        raise LookupError("no such field")

    signal.connect(failing, weak=False)
    signal.connect(lambda **kwargs: calls.append("later"), weak=False)

    with pytest.raises(LookupError, match="no such field"):
        signal.send(None, **named)
    assert calls == []  # the receivers after it are not called


@pytest.mark.parametrize(
    "named",
    [{}, {"order": 1}, {"not-an-identifier": 1}],
    ids=["no names", "plain names", "unusual names"],
)
def test_send_robust_logs_a_failing_receiver_by_name_whatever_the_names(
    named: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    signal = Signal()
    error = LookupError("no such field")

    def failing(**kwargs: Any) -> None:
        raise error

    signal.connect(failing, weak=False)
    with caplog.at_level(logging.ERROR, logger="tocsin"):
        [(_, response)] = signal.send_robust(None, **named)

    assert response is error
    [logged] = caplog.records
    assert logged.getMessage() == (
        "Error calling test_send_robust_logs_a_failing_receiver_by_name_whatever_"
        "the_names.<locals>.failing in Signal.send_robust() (no such field)"
    )
    assert logged.exc_info is not None
    assert logged.exc_info[1] is error


@pytest.mark.parametrize("method", ["send", "send_robust"])
@pytest.mark.parametrize(
    "named",
    [{"not-an-identifier": 1}, {"class": 2}, {"order": 3}],
    ids=["unusual names", "a Python keyword", "plain names"],
)
def test_the_sender_reaches_receivers_whatever_the_names(
    method: str, named: dict[str, Any]
) -> None:
    signal = Signal()
    signal.connect(record, weak=False)
    sender = object()

    [(_, got)] = getattr(signal, method)(sender, **named)

    assert got == {"signal": signal, "sender": sender, **named}
