"""How a durable receiver is delivered: its queue, its attempts, its backoff."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Backoff", "Policy"]


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: wait ``initial * factor ** (attempt - 1)`` seconds.

    The wait is capped at ``maximum`` and spread by up to ``jitter`` (a
    fraction) either way, so that events that failed together do not all come
    back at the same instant.

    .. versionadded:: 0.1
    """

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 600.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.initial < 0 or self.factor < 1 or self.maximum < 0:
            raise ValueError(
                f"{self!r}: initial and maximum must be >= 0 seconds and "
                "factor >= 1 (1 waits the same time before every retry)."
            )
        if not 0 <= self.jitter < 1:
            raise ValueError(f"{self!r}: jitter is a fraction in [0, 1).")

    def __call__(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        delay = float(
            min(self.maximum, self.initial * self.factor ** max(0, attempt - 1))
        )
        if self.jitter:
            delay *= 1 + random.uniform(-self.jitter, self.jitter)
        return delay


@dataclass(frozen=True)
class Policy:
    """The delivery policy of a durable receiver: ``durable=Policy(...)``.

    ``durable=True`` means ``Policy()``.

    Args:
        queue: The queue of its events; ``tocsin worker -Q`` picks queues.
        max_attempts: Attempts before the event is dead (kept, with its last
            error, until ``tocsin outbox replay``).
        backoff: Seconds to wait after failed attempt ``n``: a
            :class:`Backoff`, or any function of ``n``.

    .. versionadded:: 0.1
    """

    queue: str = "default"
    max_attempts: int = 5
    backoff: Callable[[int], float] = field(default_factory=Backoff)

    def __post_init__(self) -> None:
        if not isinstance(self.queue, str) or not self.queue or len(self.queue) > 100:
            raise ValueError(
                f"Policy(queue={self.queue!r}): a queue is a name of 1 to 100 characters."
            )
        if isinstance(self.max_attempts, bool) or not isinstance(
            self.max_attempts, int
        ):
            raise TypeError(
                f"Policy(max_attempts={self.max_attempts!r}) must be an integer."
            )
        if self.max_attempts < 1:
            raise ValueError(
                f"Policy(max_attempts={self.max_attempts}): at least 1 attempt."
            )
        if not callable(self.backoff):
            raise TypeError(
                f"Policy(backoff={self.backoff!r}) must be a Backoff or a function "
                "of the attempt number that returns seconds."
            )

    @classmethod
    def of(cls, value: Any) -> Policy | None:
        """The policy that ``durable=value`` asks for; ``None`` for not durable."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, cls):
            return value
        raise TypeError(
            f"durable must be True, False or a tocsin.durable.Policy, not {value!r}."
        )
