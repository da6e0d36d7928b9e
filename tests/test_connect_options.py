"""Connect options (such as on_commit=): what an unknown one says, and that
@receiver passes them on like connect()."""

from __future__ import annotations

import re
from typing import Any

import pytest

import tocsin.transaction  # noqa: F401  (registers the on_commit option)
from tocsin import Signal, receiver


def handler(**kwargs: Any) -> None:
    pass


def test_an_unknown_option_names_itself_and_the_import_that_would_provide_it() -> None:
    expected = (
        "Signal.connect() got an unexpected keyword argument 'on_rollback'. "
        "If it is a connect option of a tocsin module (on_commit= is "
        "tocsin.transaction's, durable= is tocsin.durable's), import that "
        "module before connecting."
    )
    signal = Signal()
    with pytest.raises(TypeError, match=f"^{re.escape(expected)}$"):
        signal.connect(handler, weak=False, on_rollback=True)
    assert signal.receivers_info() == []


def test_receiver_passes_connect_options_on() -> None:
    signal = Signal()
    receiver(signal, weak=False, on_commit="robust")(handler)
    assert signal.receivers_info()[0].options == {"on_commit": "robust"}


def test_an_option_set_to_its_off_value_is_not_stored() -> None:
    signal = Signal()
    signal.connect(handler, weak=False, on_commit=False)
    assert signal.receivers_info()[0].options == {}


def test_receiver_with_something_that_is_not_a_signal_names_it() -> None:
    expected = "@receiver() takes a Signal or a list of signals, not 'post_save'."
    with pytest.raises(TypeError, match=f"^{re.escape(expected)}$"):
        receiver("post_save")  # type: ignore[arg-type]


def test_receiver_without_a_priority_runs_in_registration_order() -> None:
    signal = Signal()
    calls: list[str] = []
    signal.connect(lambda **kwargs: calls.append("connected first"), weak=False)

    @receiver(signal, weak=False)
    def decorated(**kwargs: Any) -> None:
        calls.append("decorated second")

    signal.send(None)
    assert calls == ["connected first", "decorated second"]
    assert signal.receivers_info()[1].priority == 0


@pytest.mark.parametrize(
    ("value", "method"), [("robust", "send"), (True, "send_robust")]
)
def test_an_on_commit_receiver_outside_a_transaction_runs_now_robustly(
    value: Any, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With no unit of work it runs at once, with what the send gives; robust
    (by its option or by the send), its exception is its response and is
    logged with its name."""
    signal = Signal()
    seen: list[dict[str, Any]] = []

    def audit(**kwargs: Any) -> None:
        seen.append(kwargs)
        raise ValueError("audit failed")

    signal.connect(audit, weak=False, on_commit=value)
    with caplog.at_level("ERROR", "tocsin"):
        [(receiver, response)] = getattr(signal, method)("shop", order=7)

    assert receiver is audit
    assert isinstance(response, ValueError)
    assert seen == [{"signal": signal, "sender": "shop", "order": 7}]
    [record] = caplog.records
    assert record.getMessage().startswith(f"Error calling {audit.__qualname__} ")


def test_an_on_commit_receiver_outside_a_transaction_gets_what_the_send_gives() -> None:
    signal = Signal()
    seen: list[dict[str, Any]] = []

    def audit(**kwargs: Any) -> str:
        seen.append(kwargs)
        return "audited"

    signal.connect(audit, weak=False, on_commit=True)
    assert signal.send("shop", order=7) == [(audit, "audited")]
    assert seen == [{"signal": signal, "sender": "shop", "order": 7}]
