"""``LoggingObserver``: a log line for each receiver call, with how long it took.

``logging`` is imported when the first observer is made, not with ``tocsin``
(it would triple the core's import time). tocsin adds no handler to any of
its loggers: configure them as any other (``logging.basicConfig``, ...).
"""

from __future__ import annotations

from ._observe import Observer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._observe import ReceiverCall

__all__ = ["LoggingObserver"]

_DEBUG = 10  # logging.DEBUG
_WARNING = 30  # logging.WARNING


class LoggingObserver(Observer):
    """Log every receiver call to the ``tocsin.trace`` logger.

    Each line reads ``order_completed -> shop.receivers.send_receipt
    (0.42 ms)``, indented two spaces per level of nesting, and carries the
    ``extra`` fields ``tocsin_signal`` (the signal's name), ``tocsin_receiver``
    (the receiver's qualified name), ``tocsin_duration_ms``, ``tocsin_depth``
    and ``tocsin_mode``, for a formatter or a structured handler to use. A
    receiver scheduled for later (``on_commit=True``) is logged when it is
    scheduled and when it runs.

    Args:
        level: The level of an ordinary call; ``None`` logs slow calls only.
        slow_ms: Calls that take this many milliseconds or more are logged
            at ``slow_level`` instead, marked ``slow``.
        slow_level: The level of a slow call (WARNING by default).
        logger: The logger's name.

    Use it with :func:`tocsin.observe` (or :func:`tocsin.observing`)::

        undo = tocsin.observe(LoggingObserver(slow_ms=50))

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        level: int | None = _DEBUG,
        *,
        slow_ms: float | None = None,
        slow_level: int = _WARNING,
        logger: str = "tocsin.trace",
    ) -> None:
        import logging

        if level is None and slow_ms is None:
            raise ValueError(
                "LoggingObserver(level=None) logs slow calls only: give slow_ms= "
                "too, or a level to log every call."
            )
        self.level = level
        self.slow_ms = slow_ms
        self.slow_level = slow_level
        self.logger = logging.getLogger(logger)

    def __repr__(self) -> str:
        return (
            f"LoggingObserver(level={self.level!r}, slow_ms={self.slow_ms!r}, "
            f"logger={self.logger.name!r})"
        )

    def receiver_finished(self, call: ReceiverCall) -> None:
        duration_ms = (call.duration_ns or 0) / 1e6
        slow = self.slow_ms is not None and duration_ms >= self.slow_ms
        level = self.slow_level if slow else self.level
        if level is None or not self.logger.isEnabledFor(level):
            return
        dispatch = call.dispatch
        signal = dispatch.signal
        name = signal.name or repr(signal)
        if call.deferred is not None:
            outcome = f"scheduled {call.deferred}"
        else:
            outcome = f"{duration_ms:.2f} ms"
            if call.exception is not None:
                outcome += f", raised {type(call.exception).__name__}"
            if slow:
                outcome += f", slow: {self.slow_ms} ms or more"
        if dispatch.mode not in ("send", "asend"):
            outcome += f", {dispatch.mode}"
        self.logger.log(
            level,
            "%s%s -> %s (%s)",
            "  " * call.depth,
            name,
            call.qualname,
            outcome,
            extra={
                "tocsin_signal": name,
                "tocsin_receiver": call.qualname,
                "tocsin_duration_ms": duration_ms,
                "tocsin_depth": call.depth,
                "tocsin_mode": dispatch.mode,
            },
        )
