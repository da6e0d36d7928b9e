from __future__ import annotations

from ._signal import Signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Hashable
    from typing import Any, TypeVar

    F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["receiver"]


def receiver(
    signal: Signal | list[Signal] | tuple[Signal, ...],
    *,
    sender: object = None,
    weak: bool = True,
    dispatch_uid: Hashable | None = None,
    priority: float = 0,
    **options: Any,
) -> Callable[[F], F]:
    """Connect the decorated function to one signal or to each of a list.

    The keyword arguments are those of :meth:`Signal.connect`::

        @receiver(post_save, sender=User)
        def create_profile(sender, instance, created, **kwargs): ...

    The function is returned unchanged.

    .. versionadded:: 0.1
    """
    signals = signal if isinstance(signal, list | tuple) else [signal]
    for item in signals:
        if not isinstance(item, Signal):
            raise TypeError(
                f"@receiver() takes a Signal or a list of signals, not {item!r}."
            )

    def connect(func: F) -> F:
        for item in signals:
            item.connect(func, sender, weak, dispatch_uid, priority=priority, **options)
        return func

    return connect
