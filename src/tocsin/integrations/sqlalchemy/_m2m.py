"""m2m_changed: what changed in many-to-many collections, found at the flush.

Attribute events record which side of a relationship a change was made from
(its echo on the back-reference is dropped) and whether it came from
``clear()``; the flush reads the net change from the attribute history.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Container
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy.orm import InstanceState, Mapper, RelationshipProperty, Session
from sqlalchemy.orm.attributes import OP_REMOVE, instance_state

from ...signals import m2m_changed
from . import _compat, _state

__all__: list[str] = []

_lock = threading.Lock()
# owner state -> {relationship key: {target state: removed by clear()}}, for
# changes made from that side (the echo on the other side of a backref is not
# recorded).
log: weakref.WeakKeyDictionary[
    InstanceState[Any], dict[str, dict[InstanceState[Any], bool]]
] = weakref.WeakKeyDictionary()


_LISTENER = "tocsin.m2m"


def on_configured(mapper: Mapper[Any], cls: type) -> None:
    """Once a mapper is configured: listen to its many-to-many collections."""
    if not _state.installed(mapper):
        return
    for prop in mapper.relationships:
        if prop.parent is not mapper or prop.secondary is None:
            continue
        if _LISTENER in prop.info:
            continue
        listener = prop.info[_LISTENER] = functools.partial(_on_m2m_event, prop)
        attribute = getattr(prop.parent.class_, prop.key)
        event.listen(attribute, "append", listener, raw=True, propagate=True)
        event.listen(attribute, "remove", listener, raw=True, propagate=True)


def stop(mapper: Mapper[Any]) -> None:
    """Stop listening to ``mapper``'s many-to-many collections, and forget their changes."""
    with _lock:
        for owner in [owner for owner in list(log) if owner.mapper is mapper]:
            del log[owner]
    for prop in mapper.relationships:
        listener = prop.info.pop(_LISTENER, None)
        if listener is not None:
            attribute = getattr(prop.parent.class_, prop.key)
            event.remove(attribute, "append", listener)
            event.remove(attribute, "remove", listener)


def _on_m2m_event(
    prop: RelationshipProperty[Any],
    state: InstanceState[Any],
    value: Any,
    initiator: Any,
) -> Any:
    if value is None or initiator is None or initiator.parent_token is not prop:
        return value  # the echo of a change made on the other side
    through = _m2m_meta(prop)[0]
    if not m2m_changed.has_listeners(through):
        return value
    target = instance_state(value)
    cleared = initiator.op is OP_REMOVE and _compat.called_from_clear()
    with _lock:
        for other in _reverse(prop):
            if state in log.get(target, {}).get(other.key, {}):
                return value  # the same link was first changed from the other side
        targets = log.setdefault(state, {}).setdefault(prop.key, {})
        targets[target] = targets.get(target, False) or cleared
    return value


@functools.cache
def _reverse(prop: RelationshipProperty[Any]) -> tuple[RelationshipProperty[Any], ...]:
    """The relationships on the other side of ``prop`` (back_populates or backref)."""
    found = []
    for other in prop.mapper.relationships:
        if other is prop or other.secondary is not prop.secondary:
            continue
        if _back_populates(prop) == other.key or _back_populates(other) == prop.key:
            found.append(other)
    return tuple(found)


def _back_populates(prop: RelationshipProperty[Any]) -> str | None:
    # A string, or (2.1) the attribute itself; a backref sets it on both sides.
    value: Any = prop.back_populates
    if value is None or isinstance(value, str):
        return value
    if callable(value) and not hasattr(value, "prop"):
        value = value()
    return str(value.prop.key)


@functools.cache
def _m2m_meta(prop: RelationshipProperty[Any]) -> tuple[Any, bool, type]:
    """(sender, reverse, model) of a many-to-many relationship.

    The sender is the class mapped to the association table, if any, else the
    table. The *forward* side is the one whose foreign keys come first in the
    association table (Django's order for an auto-created through table).
    """
    secondary = prop.secondary
    through: Any = secondary
    for mapper in prop.parent.registry.mappers:
        if mapper.local_table is secondary:
            through = mapper.class_
            break
    columns = list(secondary.columns)  # type: ignore[union-attr]

    def first_position(p: RelationshipProperty[Any]) -> int:
        return min(
            (columns.index(c) for _, c in p.synchronize_pairs if c in columns),
            default=0,
        )

    reverse = any(
        first_position(other) < first_position(prop) for other in _reverse(prop)
    )
    return through, reverse, prop.mapper.class_


class M2MChange:
    """One action (add, remove or clear) on one collection of one object."""

    __slots__ = ("action", "instance", "owner", "pk_set", "prop", "targets")

    def __init__(
        self,
        owner: InstanceState[Any],
        prop: RelationshipProperty[Any],
        action: str,
        targets: list[InstanceState[Any]],
    ) -> None:
        self.owner = owner
        self.instance = owner.object
        self.prop = prop
        self.action = action
        self.targets = targets
        self.pk_set: set[Any] | None = None

    def ready(self) -> bool:
        """Whether every object involved has its primary key already."""
        return self.owner.key is not None and all(
            t.key is not None for t in self.targets
        )

    def compute_pk_set(self) -> None:
        if self.action == "clear":
            self.pk_set = None
        else:
            self.pk_set = {_pk(t) for t in self.targets}

    def send(self, phase: str, session: Session, using: dict[Any, str]) -> None:
        through, reverse, model = _m2m_meta(self.prop)
        m2m_changed.send(
            through,
            action=phase + self.action,
            instance=self.instance,
            reverse=reverse,
            model=model,
            pk_set=None if self.pk_set is None else set(self.pk_set),
            using=_state.using(session, self.owner.mapper, using),
            session=session,
        )


def _pk(state: InstanceState[Any]) -> Any:
    key = state.key[1]  # type: ignore[index]
    return key[0] if len(key) == 1 else key


def changes(
    session: Session,
    skipped: Container[InstanceState[Any]],
    done: set[tuple[InstanceState[Any], str, InstanceState[Any]]],
) -> list[M2MChange]:
    """The many-to-many actions recorded for ``session`` since the last call.

    Objects in ``skipped`` (being deleted) report nothing; ``done`` holds the
    links already reported in this flush, and gains those returned.
    """
    mine = []
    with _lock:
        for owner in list(log.keys()):
            if owner.session is session:
                mine.append((owner, log.pop(owner)))
    found = []
    for owner, recorded in mine:
        if owner in skipped:
            continue
        for key, targets in recorded.items():
            prop = cast(RelationshipProperty[Any], owner.mapper.get_property(key))
            history = owner.attrs[key].history
            added = [
                instance_state(o) for o in history.added if instance_state(o) in targets
            ]
            removed = [
                instance_state(o)
                for o in history.deleted
                if instance_state(o) in targets
            ]
            added = [t for t in added if (owner, key, t) not in done]
            removed = [t for t in removed if (owner, key, t) not in done]
            done.update((owner, key, t) for t in added + removed)
            cleared = any(targets[t] for t in removed)
            if removed:
                found.append(
                    M2MChange(owner, prop, "clear" if cleared else "remove", removed)
                )
            if added:
                found.append(M2MChange(owner, prop, "add", added))
    return found
