"""The one place where :mod:`tocsin.durable` reaches into the core.

The connect-option API (``ConnectOption``, ``register_connect_option``) is
private to tocsin's own modules; it is read here, by attribute, so that a move
of that API changes this file only.
"""

from __future__ import annotations

import sys
from collections.abc import Hashable
from typing import Any

from tocsin import _signal

__all__ = ["ConnectOption", "Signal", "connecting", "register_connect_option"]

ConnectOption = _signal.ConnectOption
register_connect_option = _signal.register_connect_option
Signal = _signal.Signal


def connecting() -> tuple[Any, Hashable | None]:
    """The signal and the ``dispatch_uid`` of the ``connect()`` being validated.

    ``ConnectOption.validate`` receives only the option's value and the
    receiver, but a durable receiver is named by its ``dispatch_uid`` and
    replayed on its signal, so both are read from the ``Signal._connect``
    frame that calls the validation.

    Raises:
        RuntimeError: No such frame: the core changed how options are
            validated, and this function must follow.
    """
    frame = sys._getframe(1)
    for _ in range(8):
        frame = frame.f_back  # type: ignore[assignment]
        if frame is None:
            break
        if frame.f_code.co_name == "_connect":
            signal = frame.f_locals.get("self")
            if isinstance(signal, Signal):
                return signal, frame.f_locals.get("dispatch_uid")
    raise RuntimeError(
        "tocsin.durable could not find the Signal.connect() call that validates "
        "durable=: tocsin's core and tocsin.durable are from different versions."
    )
