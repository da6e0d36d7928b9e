"""on_commit for sessions: callbacks wait in ``session.info`` until the root commit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, SessionTransaction, scoped_session

from ... import transaction

__all__: list[str] = []

_QUEUES = "tocsin.on_commit"
_COMMITTED = "tocsin.committed"


class SessionUnit:
    """A session as a :class:`tocsin.transaction.UnitOfWork`.

    Callbacks wait in ``session.info``, in one list per open transaction or
    savepoint (keyed by ``SessionTransaction``). A released savepoint's list
    joins its parent's; a rolled-back one is dropped; the root's list runs in
    ``after_transaction_end`` once it committed, where the session may query
    again. Nothing runs at RELEASE SAVEPOINT.
    """

    __slots__ = ("session",)

    def __init__(self, session: Session) -> None:
        self.session = session

    def defer(self, callback: transaction.Callback) -> None:
        session = self.session
        current = session.get_nested_transaction() or session.get_transaction()
        if current is None:
            transaction.run_callbacks([callback])
            return
        queues = session.info.get(_QUEUES)
        if queues is None:
            queues = session.info[_QUEUES] = {}
        queues.setdefault(current, []).append(callback)

    def __repr__(self) -> str:
        return f"<tocsin unit of work of {self.session!r}>"


def after_commit(session: Session) -> None:
    """Note which transaction committed (it fires at RELEASE SAVEPOINT too)."""
    if session.info.get(_QUEUES):
        session.info[_COMMITTED] = (
            session.get_nested_transaction() or session.get_transaction()
        )


def after_transaction_end(session: Session, ended: SessionTransaction) -> None:
    """Hand a released savepoint's callbacks up; run the root's after its commit."""
    queues: dict[SessionTransaction, list[transaction.Callback]] | None = (
        session.info.get(_QUEUES)
    )
    if not queues:
        return
    committed = session.info.get(_COMMITTED) is ended
    if committed:
        del session.info[_COMMITTED]
    if ended.nested:
        callbacks = queues.pop(ended, None)
        if committed and callbacks:
            parent = ended.parent
            while (
                parent is not None and not parent.nested and parent.parent is not None
            ):
                parent = parent.parent
            if parent is not None:
                queues.setdefault(parent, []).extend(callbacks)
    elif ended.parent is None:
        callbacks = queues.pop(ended, None)
        queues.clear()
        if committed and callbacks:
            transaction.run_callbacks(callbacks)


def register_sessions() -> list[Callable[[], None]]:
    """Let ``on_commit(using=...)`` take sessions; return the functions undoing it."""
    adapters: list[tuple[type, Callable[[Any], transaction.UnitOfWork]]] = [
        (Session, SessionUnit),
        (scoped_session, lambda scoped: SessionUnit(scoped())),
    ]
    try:
        from sqlalchemy.ext.asyncio import AsyncSession, async_scoped_session
    except ImportError:  # pragma: no cover - without greenlet only
        pass
    else:
        adapters.append((AsyncSession, lambda s: SessionUnit(s.sync_session)))
        adapters.append(
            (async_scoped_session, lambda scoped: SessionUnit(scoped().sync_session))
        )
    return [
        transaction.register_unit_of_work_adapter(cls, adapter)
        for cls, adapter in adapters
    ]
