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

__all__ = ["LazyOperation", "Waiting", "run_all", "split_reference"]

Key = tuple[str, str]
"""A model as ``(app_label, lowercased model name)``."""

Find = Callable[[str, str], "type | None"]
"""How a registry looks a model up by its key; ``None`` when unknown."""


def split_reference(reference: object) -> Key:
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

    .. versionadded:: 0.1
    """

    __slots__ = (
        "__weakref__",
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

        .. versionadded:: 0.1
        """
        return bool(self._claim)

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` stopped it before it ran.

        .. versionadded:: 0.1
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

        .. versionadded:: 0.1
        """
        if not self._take():
            return False
        self._state = "cancelled"
        self.function = None
        return True

    def _reference_to(self, key: Key) -> str:
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


class Waiting:
    """The operations waiting in one registry, listed under each model they
    still miss (an operation waiting for two models is listed twice).

    It takes no lock: the registry calls it under its own. Cancelled
    operations are dropped whenever the lists are read.
    """

    def __init__(self, by_model: dict[Key, list[LazyOperation]] | None = None) -> None:
        self._by_model = by_model or {}

    def copy(self) -> Waiting:
        return Waiting({key: list(ops) for key, ops in self._by_model.items()})

    def add(self, op: LazyOperation, find: Find) -> list[Key]:
        """List ``op`` under each model that ``find`` does not know.

        Returns:
            The keys of those models, in the order of ``op.references``
            (empty when every model is known: ``op`` is then not listed).
        """
        missing = [key for key in op.model_keys if find(*key) is None]
        for key in dict.fromkeys(missing):
            self._by_model.setdefault(key, []).append(op)
        return missing

    def arrived(self, key: Key, find: Find) -> list[tuple[LazyOperation, list[type]]]:
        """Forget what waited for the model ``key``, which just arrived.

        Returns:
            The operations that no longer miss any model, with their models.
        """
        runnable = []
        for op in self._by_model.pop(key, ()):
            models = resolve(op, find)
            if op.pending and models is not None:
                runnable.append((op, models))
        return runnable

    def waiting_for(self, key: Key) -> list[LazyOperation]:
        """The operations still waiting for the model ``key``."""
        ops = self._by_model.get(key, [])
        live = [op for op in ops if op.pending]
        if len(live) != len(ops):  # forget the cancelled ones, keeping the order
            if live:
                self._by_model[key] = live
            else:
                del self._by_model[key]
        return live

    def items(self) -> list[tuple[Key, LazyOperation]]:
        """What waits, as (model key, operation), in the order it was added."""
        self._by_model = {
            key: live
            for key, ops in self._by_model.items()
            if (live := [op for op in ops if op.pending])
        }
        return [(key, op) for key, ops in self._by_model.items() for op in ops]


def resolve(op: LazyOperation, find: Find) -> list[type] | None:
    """The models ``op`` waits for, or ``None`` while one is unknown."""
    models = [find(*key) for key in op.model_keys]
    return None if None in models else models  # type: ignore[return-value]


def run_all(runnable: Sequence[tuple[LazyOperation, list[type]]]) -> None:
    """Run each operation, even when an earlier one raises; then raise what
    they raised (several errors together, as an ``ExceptionGroup``)."""
    errors: list[Exception] = []
    for op, models in runnable:
        try:
            op._run(models)
        except Exception as error:
            errors.append(error)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ExceptionGroup(f"{len(errors)} lazy model operations raised", errors)
