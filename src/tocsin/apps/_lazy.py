"""Lazy ``"app_label.ModelName"`` references, and the handle of an operation
that waits for the models they name (see :meth:`Registry.lazy_model_operation`).

A handle is claimed exactly once, either by the registry that runs it or by
:meth:`LazyOperation.cancel`. The claim is one ``list.pop()``, atomic without
a lock, so that ``cancel()`` is safe from any thread and from a weak-reference
callback (which may run during garbage collection, while this thread holds
the registry's lock).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .. import _refs

__all__ = ["LazyOperation", "split_reference"]


def split_reference(reference: object) -> tuple[str, str]:
    """Split ``"app_label.ModelName"`` into the label and the lowercased name
    (the model name is case-insensitive, the label is not, as in Django).

    Raises:
        TypeError: ``reference`` is not a string.
        ValueError: ``reference`` is not of that form.
    """
    if not isinstance(reference, str):
        raise TypeError(
            "A lazy model reference is a string 'app_label.ModelName', such as "
            f"'shop.User', not {reference!r}."
        )
    label, dot, name = reference.partition(".")
    if not dot or not label or not name or "." in name:
        raise ValueError(
            f"Invalid model reference {reference!r}: a lazy model sender must "
            "be 'app_label.ModelName', such as 'shop.User'."
        )
    return label, name.lower()


def _describe(function: Callable[..., Any]) -> str:
    module, _ = _refs.source_location(function)
    return f"The function {module + '.' if module else ''}{_refs.describe(function)}"


class LazyOperation:
    """A function waiting for models, returned by
    :meth:`Registry.lazy_model_operation`.

    Attributes:
        function: What runs, as ``function(*models)``; ``None`` once it ran
            or was cancelled (the handle then keeps nothing alive).
        references: The ``"app_label.ModelName"`` strings, as given.
        model_keys: The same as ``(app_label, lowercased_model_name)`` pairs.
        description: Who waits, as the errors and
            :meth:`Registry.pending_references` name it.

    .. versionadded:: 0.2
    """

    __slots__ = (
        "_claim",
        "_state",
        "description",
        "function",
        "model_keys",
        "references",
    )

    def __init__(
        self,
        function: Callable[..., Any],
        references: Sequence[str],
        description: str | None,
    ) -> None:
        if not callable(function):
            raise TypeError(
                f"lazy_model_operation() takes a callable, not {function!r}."
            )
        self.model_keys = tuple(split_reference(r) for r in references)
        self.function: Callable[..., Any] | None = function
        self.references = tuple(references)
        self.description = description or _describe(function)
        self._claim = [None]  # popped exactly once: by the run or by cancel()
        self._state = "pending"

    def __repr__(self) -> str:
        names = ", ".join(map(repr, self.references))
        return f"<LazyOperation ({self._state}) for {names}: {self.description}>"

    @property
    def pending(self) -> bool:
        """Whether it still waits: it has neither run nor been cancelled.

        .. versionadded:: 0.2
        """
        return bool(self._claim)

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` stopped it before it ran.

        .. versionadded:: 0.2
        """
        return self._state == "cancelled"

    def cancel(self) -> bool:
        """Make sure the function never runs, if it has not run yet.

        Safe from any thread and from a weak-reference callback: it takes no
        lock. A registry forgets cancelled operations the next time it looks
        at what waits.

        Returns:
            ``True`` if this call stopped it; ``False`` if it had already run
            (or was already cancelled).

        .. versionadded:: 0.2
        """
        if not self._take():
            return False
        self._state = "cancelled"
        self.function = None
        return True

    def _reference_to(self, key: tuple[str, str]) -> str:
        """The reference, as given, that names the model ``key``."""
        return self.references[self.model_keys.index(key)]

    def _take(self) -> bool:
        try:
            self._claim.pop()
        except IndexError:
            return False
        return True

    def _run(self, models: Sequence[type]) -> None:
        """Call the function with ``models``, unless it was cancelled or ran."""
        function = self.function
        if function is None or not self._take():
            return
        self._state = "done"
        self.function = None
        function(*models)
