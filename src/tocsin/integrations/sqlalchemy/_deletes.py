"""pre_delete and post_delete: cascades, delete-orphans, origins and order."""

from __future__ import annotations

import functools
import weakref
from typing import Any

from sqlalchemy.orm import InstanceState, Mapper, Session
from sqlalchemy.orm.attributes import instance_state

from ...signals import post_delete, pre_delete
from . import _compat, _state
from ._record import FlushRecord

__all__: list[str] = []


def orphans(
    dirty: list[InstanceState[Any]],
    deleted: set[InstanceState[Any]],
    record: FlushRecord,
) -> list[InstanceState[Any]]:
    """Persistent objects that delete-orphan cascades will delete in this flush.

    SQLAlchemy finds them only during the flush, too late for pre_delete; this
    asks the same question early.
    """
    found: list[InstanceState[Any]] = []
    for st in dirty:
        if st.has_identity and _compat.is_orphan(st):
            found.append(st)
        for key in _orphan_relationships(st.mapper):
            for child in st.attrs[key].history.deleted:
                if child is None:
                    continue
                child_state = instance_state(child)
                if child_state.has_identity and _compat.is_orphan(child_state):
                    found.append(child_state)
    return [
        st
        for st in dict.fromkeys(found)
        if st not in deleted and st not in record.deletes and st.session_id is not None
    ]


@functools.cache
def _orphan_relationships(mapper: Mapper[Any]) -> tuple[str, ...]:
    return tuple(rel.key for rel in mapper.relationships if rel.cascade.delete_orphan)


def send_pre_delete(
    session: Session, record: FlushRecord, candidates: list[InstanceState[Any]]
) -> bool:
    """Send pre_delete for ``candidates`` and what they cascade to; tell if any was sent."""
    origins = _origins(candidates, record)
    states = _deletion_order(list(origins))
    sent = False
    for st in states:
        flags = record.listening_for(st)
        if flags is None:
            continue
        origin = origins[st]
        record.deletes[st] = (st.object, origin, flags[3])
        if flags[2]:
            sent = True
            pre_delete.send(
                st.class_,
                instance=st.object,
                using=_state.using(session, st.mapper, record.using),
                origin=origin,
                session=session,
            )
    return sent


def send_post_delete(session: Session, record: FlushRecord) -> bool:
    """Send post_delete: model by model as pre_delete, primary key descending."""
    sent = False
    order = sorted_by_key(list(record.deletes), reverse=True)
    order = by_table(order, dependents_first=True)
    for st in order:
        instance, origin, wanted = record.deletes[st]
        if wanted:
            sent = True
            post_delete.send(
                st.class_,
                instance=instance,
                using=_state.using(session, st.mapper, record.using),
                origin=origin,
                session=session,
            )
    return sent


def _origins(
    candidates: list[InstanceState[Any]], record: FlushRecord
) -> dict[InstanceState[Any], Any]:
    """Map each object to delete to the object whose deletion started it.

    Cascaded objects are already in ``session.deleted`` beside the object
    given to ``Session.delete()``; the roots are those no other deleted object
    cascades to. Orphans are their own origin and pull in their dependents.
    """
    pending = dict.fromkeys(candidates)
    descendants: dict[InstanceState[Any], list[InstanceState[Any]]] = {}
    reached: set[InstanceState[Any]] = set()
    for st in candidates:
        found = []
        for _obj, _mapper, child, _dict in st.mapper.cascade_iterator("delete", st):
            if child is not st and child not in record.deletes:
                found.append(child)
                reached.add(child)
        descendants[st] = found
    origins: dict[InstanceState[Any], Any] = {}
    for st in candidates:
        if st in reached:
            continue
        root = st.object
        origins[st] = root
        for child in descendants[st]:
            origins.setdefault(child, root)
    for st in pending:  # a cycle: nobody is the root
        origins.setdefault(st, st.object)
    return origins


def _deletion_order(states: list[InstanceState[Any]]) -> list[InstanceState[Any]]:
    """Django's order: dependent tables first, then primary key ascending."""
    by_key = sorted_by_key(states)
    return by_table(by_key, dependents_first=True)


def sorted_by_key(
    states: list[InstanceState[Any]], reverse: bool = False
) -> list[InstanceState[Any]]:
    """``states`` by primary key (in their order if the keys do not compare)."""
    try:
        return sorted(
            states, key=lambda st: st.key[1] if st.key else (), reverse=reverse
        )
    except TypeError:  # primary keys of mixed types
        return list(reversed(states)) if reverse else list(states)


def by_table(
    states: list[InstanceState[Any]], dependents_first: bool
) -> list[InstanceState[Any]]:
    """``states`` sorted by their table's rank (stable: the order within a table is kept)."""
    ranks: dict[Mapper[Any], int] = {}

    def rank(state: InstanceState[Any]) -> int:
        mapper = state.mapper
        found = ranks.get(mapper)
        if found is None:
            found = ranks[mapper] = table_rank(mapper)
        return -found if dependents_first else found

    return sorted(states, key=rank)


def table_rank(mapper: Mapper[Any]) -> int:
    """Position of the mapper's table among its metadata's tables, parents first."""
    table = mapper.local_table
    metadata = getattr(table, "metadata", None)
    if metadata is None:
        return 0
    ranks = _ranks.get(metadata)
    if ranks is None or len(ranks) != len(metadata.tables):
        ranks = {t: i for i, t in enumerate(metadata.sorted_tables)}
        _ranks[metadata] = ranks
    return ranks.get(table, 0)


_ranks: weakref.WeakKeyDictionary[Any, dict[Any, int]] = weakref.WeakKeyDictionary()
