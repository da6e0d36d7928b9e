"""The one place where :mod:`tocsin.durable` reaches into the core.

The connect-option API (``ConnectOption``, ``register``, the delivery answers)
is private to tocsin's own modules; it is read here, so that a move of that
API changes this file only.
"""

from __future__ import annotations

from tocsin import _options
from tocsin._signal import Signal

__all__ = ["DEFERRED", "ConnectOption", "Signal", "register_connect_option"]

ConnectOption = _options.ConnectOption
register_connect_option = _options.register
DEFERRED = _options.DEFERRED
