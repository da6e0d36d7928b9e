"""The two phases of a flush: pre_* signals before it, post_* signals after it.

- ``before_flush`` sends ``pre_delete``, ``pre_save`` and the ``pre_*``
  ``m2m_changed`` actions, in rounds until the receivers stop adding or
  changing objects, because the session may still be changed there. It
  records what it sent on the flush context.
- ``after_flush_postexec`` sends ``post_delete``, ``post_save`` and the
  ``post_*`` actions once the rows are written; receivers may change the
  session, so the flush is then repeated until the session is clean.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, UOWTransaction
from sqlalchemy.orm.attributes import instance_state

from ... import transaction
from ...signals import post_save, pre_save
from . import _changes, _compat, _deletes, _m2m, _state
from ._on_commit import SessionUnit
from ._record import FlushRecord
from ._state import MAX_ROUNDS, ReceiverLoopError

__all__: list[str] = []

_RECORD = "tocsin.flush"
_REFLUSHING = "tocsin.reflushing"


def before_flush(
    session: Session, flush_context: UOWTransaction, instances: Any
) -> None:
    """Send the pre_* signals, in rounds until receivers stop changing the session."""
    if not _state.registries:
        return
    record = FlushRecord()
    flush_context.attributes[_RECORD] = record
    # Receivers, and the signals they send, find this session as the current
    # unit of work: their on_commit() waits for its transaction.
    with transaction.unit_of_work(SessionUnit(session)):
        for _ in range(MAX_ROUNDS):
            if not _pre_round(session, record):
                return
        raise ReceiverLoopError(
            f"pre_save, pre_delete or m2m_changed receivers kept adding or changing "
            f"objects for {MAX_ROUNDS} rounds in one flush. A receiver probably "
            "adds or changes an object every time it is called; make it do so "
            "only when needed."
        )


def _pre_round(session: Session, record: FlushRecord) -> bool:
    """Send the pre_* signals of one round; tell whether any receiver may have run."""
    sent = False
    deleted_now = [instance_state(obj) for obj in session.deleted]
    deleted = set(deleted_now)
    dirty = [instance_state(obj) for obj in session.dirty]

    # Deletions first, so that a row switch reads pre_delete(old), pre_save(new).
    candidates = [st for st in deleted_now if st not in record.deletes]
    candidates += _deletes.orphans(dirty, deleted, record)
    if candidates:
        sent |= _deletes.send_pre_delete(session, record, candidates)

    # The class is looked up before the state: a flush of many new objects
    # that nobody listens to pays one dictionary lookup per object.
    listening = record.listening
    for obj in session.new:
        cls = type(obj)
        if cls in listening and listening[cls] is None:
            continue
        st = instance_state(obj)
        if st in record.saves:
            continue
        flags = record.listening_for(st)
        if flags is None:
            continue
        record.saves[st] = (obj, True, None, flags[1], None)
        if flags[0]:
            sent = True
            pre_save.send(
                st.class_,
                instance=obj,
                raw=False,
                using=_state.using(session, st.mapper, record.using),
                update_fields=None,
                changes=_changes.NONE,
                session=session,
            )
    for st in dirty:
        if st in record.saves or st in deleted or st in record.deletes:
            continue
        flags = record.listening_for(st)
        if flags is None:
            continue
        # The old values of changes are read only for a model with a
        # pre_save or post_save receiver.
        changed, old = _changes.changed(st, flags[0] or flags[1])
        if not changed:
            continue
        record.saves[st] = (st.object, False, changed, flags[1], old)
        if flags[0]:
            sent = True
            pre_save.send(
                st.class_,
                instance=st.object,
                raw=False,
                using=_state.using(session, st.mapper, record.using),
                update_fields=changed,
                changes=_changes.pre_changes(st, old or {}),
                session=session,
            )
    if _m2m.log:
        skipped = deleted | record.deletes.keys()
        for change in _m2m.changes(session, skipped, record.m2m_done):
            if change.ready():
                change.compute_pk_set()
                change.send("pre_", session, record.using)
                record.m2m.append(change)
                sent = True
            else:
                record.late_m2m.append(change)
    return sent


# -- the post phase -----------------------------------------------------------------


def after_flush_postexec(session: Session, flush_context: UOWTransaction) -> None:
    """Send the post_* signals, then flush again what their receivers changed."""
    record: FlushRecord | None = flush_context.attributes.get(_RECORD)
    if record is None or not (
        record.saves or record.deletes or record.m2m or record.late_m2m
    ):
        return
    with transaction.unit_of_work(SessionUnit(session)):
        sent = _post(session, record)
    if sent and not session.info.get(_REFLUSHING):
        _flush_until_clean(session)


def _post(session: Session, record: FlushRecord) -> bool:
    sent = _deletes.send_post_delete(session, record)
    # post_save: parents' tables before children's, then in pre_save order.
    saves = _deletes.by_table(list(record.saves), dependents_first=False)
    for st in saves:
        instance, created, fields, wanted, old = record.saves[st]
        if not wanted or not st.persistent:
            continue
        sent = True
        post_save.send(
            st.class_,
            instance=instance,
            created=created,
            update_fields=fields,
            changes=_changes.NONE if old is None else _changes.post_changes(st, old),
            raw=False,
            using=_state.using(session, st.mapper, record.using),
            session=session,
        )
    for change in record.late_m2m:
        change.compute_pk_set()
        change.send("pre_", session, record.using)
        sent = True
    for change in record.m2m + record.late_m2m:
        change.send("post_", session, record.using)
        sent = True
    return sent


def _flush_until_clean(session: Session) -> None:
    """Flush again what post_* receivers changed, so nothing is left pending.

    ``commit()`` would re-flush by itself, but a plain ``flush()`` would leave
    the receivers' objects pending. The flushes run in a loop, not recursively.
    """
    session.info[_REFLUSHING] = True
    try:
        for _ in range(MAX_ROUNDS):
            if _is_clean(session):
                return
            _compat.flush_inside_flush(session)
        if _is_clean(session):
            return
        raise ReceiverLoopError(
            f"post_save, post_delete or m2m_changed receivers kept changing objects: "
            f"the session still had changes after {MAX_ROUNDS} flushes. A receiver "
            "probably modifies an instance every time it is called (for example "
            "on every post_save); make it do so only when needed, such as only "
            "when created is True or when the value differs."
        )
    finally:
        session.info.pop(_REFLUSHING, None)


def _is_clean(session: Session) -> bool:
    return not (session.new or session.dirty or session.deleted)
