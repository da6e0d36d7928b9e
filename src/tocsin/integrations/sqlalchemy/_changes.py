"""What an UPDATE changes: the keys of ``update_fields`` and the ``changes`` values.

``pre_save`` and ``post_save`` from SQLAlchemy carry ``changes``: for each key
of ``update_fields``, the pair ``(old, new)``. The old value is the one loaded
from the database; :data:`UNKNOWN` when SQLAlchemy had not loaded it (the
attribute was expired or deferred when it was set). For ``pre_save`` the new
value is the one the flush is about to write (:data:`UNKNOWN` for a foreign
key to an object that has no primary key yet); for ``post_save`` the one it
wrote. A new object's ``changes`` is empty. Nothing here runs unless a
receiver of that signal exists for the model.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy.orm import (
    MANYTOONE,
    ColumnProperty,
    InstanceState,
    Mapper,
    PassiveFlag,
    RelationshipProperty,
)
from sqlalchemy.orm.attributes import History, get_history, instance_state

__all__ = ["UNKNOWN"]


class _Unknown:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __reduce__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final[Any] = _Unknown()
"""A value of ``changes`` that SQLAlchemy did not know: see the module docstring.

.. versionadded:: 0.1
"""

#: The ``changes`` of an INSERT.
NONE: Mapping[str, tuple[Any, Any]] = types.MappingProxyType({})


def _history(state: InstanceState[Any], key: str) -> History:
    # What InstanceState.attrs[key].history reads, without building an
    # AttributeState for every attribute of the object first.
    return get_history(state.object, key, passive=PassiveFlag.PASSIVE_NO_INITIALIZE)


def changed(
    state: InstanceState[Any], with_old: bool
) -> tuple[frozenset[str], dict[str, Any] | None]:
    """The column attributes the UPDATE will write, and (``with_old``) their old values.

    The old values are those loaded from the database, read now, while the
    attribute history still holds them.
    """
    plan = _plan(state.mapper)
    unmodified = state.unmodified
    instance = state.object
    keys: set[str] = set()
    old: dict[str, Any] | None = {} if with_old else None
    through: list[str] = []
    for key, foreign_keys in plan.items():
        if key in unmodified:
            continue
        history = get_history(instance, key, passive=PassiveFlag.PASSIVE_NO_INITIALIZE)
        if not (history.added or history.deleted):
            continue
        if foreign_keys is None:  # a column
            keys.add(key)
            if old is not None:
                old[key] = history.deleted[0] if history.deleted else UNKNOWN
        else:  # a many-to-one: its foreign key columns change
            keys.update(foreign_keys)
            through.extend(foreign_keys)
    if old is not None:
        values = state.dict
        for key in through:
            if key not in old:  # not changed itself (yet): its loaded value
                old[key] = values.get(key, UNKNOWN) if key in plan else UNKNOWN
    return frozenset(keys), old


def pre_changes(
    state: InstanceState[Any], old: dict[str, Any]
) -> Mapping[str, tuple[Any, Any]]:
    """``changes`` for pre_save, from :func:`changed`'s old values: (old, to write)."""
    columns = state.mapper.column_attrs
    pairs = {}
    for key in old:
        if key not in columns:
            new = UNKNOWN
        else:
            history = _history(state, key)
            if history.added:
                new = history.added[0]
            elif history.deleted:  # del instance.attribute: written as NULL
                new = None
            else:
                new = _through_relationship(state, key)
        pairs[key] = (old[key], new)
    return types.MappingProxyType(pairs)


def post_changes(
    state: InstanceState[Any], old: dict[str, Any]
) -> Mapping[str, tuple[Any, Any]]:
    """``changes`` for post_save: (loaded value, written value)."""
    values = state.dict
    return types.MappingProxyType(
        {key: (value, values.get(key, UNKNOWN)) for key, value in old.items()}
    )


def _through_relationship(state: InstanceState[Any], key: str) -> Any:
    """The value a foreign key column will get from its many-to-one relationship."""
    for prop, local_remote in _relationships_of(state.mapper).get(key, ()):
        history = _history(state, prop.key)
        if not (history.added or history.deleted):
            continue
        target = history.added[0] if history.added else None
        if target is None:
            return None
        target_state = instance_state(target)
        remote_key = target_state.mapper.get_property_by_column(local_remote).key
        value = target_state.dict.get(remote_key)
        return UNKNOWN if value is None else value  # None: not generated yet
    return UNKNOWN


@functools.cache
def _relationships_of(
    mapper: Mapper[Any],
) -> dict[str, list[tuple[RelationshipProperty[Any], Any]]]:
    """Foreign key attribute -> [(many-to-one relationship, referenced column)]."""
    found: dict[str, list[tuple[RelationshipProperty[Any], Any]]] = {}
    for prop in mapper.relationships:
        if prop.direction is not MANYTOONE:
            continue
        for local, remote in prop.local_remote_pairs or ():
            try:
                key = mapper.get_property_by_column(local).key
            except Exception:  # a column mapped to no attribute
                continue
            found.setdefault(key, []).append((prop, remote))
    return found


@functools.cache
def _plan(mapper: Mapper[Any]) -> dict[str, tuple[str, ...] | None]:
    """Attribute key -> None for a column, or the foreign keys of a many-to-one."""
    plan: dict[str, tuple[str, ...] | None] = {}
    for key, prop in mapper.attrs.items():
        if isinstance(prop, ColumnProperty):
            plan[key] = None
        elif isinstance(prop, RelationshipProperty) and prop.direction is MANYTOONE:
            plan[key] = _foreign_key_attrs(prop)
    return plan


@functools.cache
def _foreign_key_attrs(prop: RelationshipProperty[Any]) -> tuple[str, ...]:
    keys = []
    for column in prop.local_columns:
        try:
            keys.append(prop.parent.get_property_by_column(column).key)
        except Exception:  # a column not mapped to an attribute
            keys.append(str(column.key))
    return tuple(keys)
