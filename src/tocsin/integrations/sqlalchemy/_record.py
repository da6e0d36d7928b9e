"""What one flush sent in its pre phase, kept for its post phase."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import InstanceState

from ...signals import post_delete, post_save, pre_delete, pre_save
from . import _state
from ._m2m import M2MChange

__all__: list[str] = []

#: (pre_save, post_save, pre_delete, post_delete) has a receiver for the class.
Listening = tuple[bool, bool, bool, bool]


class FlushRecord:
    """What one flush sent in its pre phase, for its post phase.

    Stored in the flush context's ``attributes`` by ``before_flush``.
    """

    __slots__ = (
        "deletes",
        "late_m2m",
        "listening",
        "m2m",
        "m2m_done",
        "saves",
        "using",
    )

    def __init__(self) -> None:
        # state -> (instance, created, update_fields, send post_save, the
        # loaded values of update_fields for post_save's changes or None)
        # The instances are held here: once written, the session holds them
        # only weakly, and an object added without a reference would be gone
        # before its post_save.
        self.saves: dict[
            InstanceState[Any],
            tuple[Any, bool, frozenset[str] | None, bool, dict[str, Any] | None],
        ] = {}
        # state -> (instance, origin, send post_delete)
        self.deletes: dict[InstanceState[Any], tuple[Any, Any, bool]] = {}
        self.m2m: list[M2MChange] = []
        self.late_m2m: list[M2MChange] = []
        self.m2m_done: set[tuple[InstanceState[Any], str, InstanceState[Any]]] = set()
        self.listening: dict[type, Listening | None] = {}
        self.using: dict[Any, str] = {}

    def listening_for(self, state: InstanceState[Any]) -> Listening | None:
        """Which save and delete signals have receivers for ``state``'s class.

        None when none has, or the class is not installed: then nothing about
        the object is recorded.
        """
        cls = state.class_
        try:
            return self.listening[cls]
        except KeyError:
            pass
        flags: Listening | None = None
        if _state.installed(state.mapper):
            flags = (
                pre_save.has_listeners(cls),
                post_save.has_listeners(cls),
                pre_delete.has_listeners(cls),
                post_delete.has_listeners(cls),
            )
            if not any(flags):
                flags = None
        self.listening[cls] = flags
        return flags
