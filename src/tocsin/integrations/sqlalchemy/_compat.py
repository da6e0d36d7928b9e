"""Every use of SQLAlchemy's private names, in one place.

The rest of the integration uses SQLAlchemy's public API only
(tests/integrations/test_sqlalchemy_compat.py fails otherwise). What is here
has no public equivalent; each function says why, and which SQLAlchemy
releases it was checked on. The same test module exercises each of them on
the installed release, so that a change in SQLAlchemy fails there by name
instead of as a wrong signal somewhere else.

Checked on: SQLAlchemy 2.0.30 (the oldest that pyproject.toml allows) and
2.1.9.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import InstanceState, Mapper, Session
from sqlalchemy.orm import collections as _collections

__all__ = [
    "any_modified",
    "called_from_clear",
    "flush_inside_flush",
    "greenlet_awaiter",
    "is_clean",
    "is_orphan",
    "mapper_of",
    "modified_keys",
    "new_states",
    "reverse_properties",
]


def mapper_of(cls: type) -> Mapper[Any] | None:
    """The mapper of ``cls`` itself (not one inherited from a mapped parent).

    Checked on 2.0.30 and 2.1.9: the class manager lives in the class's own
    ``__dict__`` under ``_sa_class_manager``.
    """
    manager = cls.__dict__.get("_sa_class_manager")
    mapper: Mapper[Any] | None = manager.mapper if manager is not None else None
    return mapper


def new_states(session: Session) -> list[tuple[InstanceState[Any], Any]]:
    """The pending objects of ``session`` with their states.

    Checked on 2.0.30 and 2.1.9: ``Session._new`` maps each pending state to
    its object; ``Session.new`` would build an identity set of the objects
    first, which a flush of many new objects would feel.
    """
    return list(session._new.items())


def modified_keys(state: InstanceState[Any]) -> list[str]:
    """The attributes of ``state`` changed since it was loaded or flushed.

    Checked on 2.0.30 and 2.1.9: ``InstanceState.committed_state`` holds the
    previous value of each attribute set since the last flush.
    """
    return list(state.committed_state)


def is_orphan(state: InstanceState[Any]) -> bool:
    """Whether the flush will delete ``state`` as a delete-orphan.

    SQLAlchemy finds orphans only during the flush, too late for pre_delete;
    this asks the flush's own question early. Checked on 2.0.30 and 2.1.9:
    ``Mapper._delete_orphans`` lists the delete-orphan relationships that
    point to the mapper, ``Mapper._is_orphan(state)`` answers.
    """
    mapper = state.mapper
    return bool(mapper._delete_orphans) and bool(mapper._is_orphan(state))


def is_clean(session: Session) -> bool:
    """Whether ``session`` has nothing to flush.

    Checked on 2.0.30 and 2.1.9: ``Session._is_clean()``.
    """
    return bool(session._is_clean())


def flush_inside_flush(session: Session) -> None:
    """Flush ``session`` from inside its ``after_flush_postexec`` event.

    ``Session.flush()`` refuses to run while a flush is in progress, and
    SQLAlchemy re-flushes by itself only within ``commit()``; a plain
    ``flush()`` would leave the objects that post_* receivers added pending.
    Checked on 2.0.30 and 2.1.9: ``Session._flush()``, the body of
    ``Session.flush()`` without its re-entrance guard.
    """
    session._flush()


def any_modified(session: Session) -> bool:
    """Whether any persistent object of ``session`` has a changed attribute.

    Checked on 2.0.30 and 2.1.9: ``identity_map._modified`` is what
    ``Session.dirty`` itself reads; checking it first keeps a flush of new
    objects from scanning anything else.
    """
    return bool(session.identity_map._modified)


_COLLECTIONS_FILE = _collections.__file__


def called_from_clear() -> bool:
    """Whether the removal being reported comes from a collection's ``clear()``.

    SQLAlchemy reports ``clear()`` as one ``remove`` event per item, with the
    same arguments as ``remove()``, while Django sends ``clear`` actions for
    it. Only the call stack tells them apart: a ``clear`` frame of
    ``sqlalchemy.orm.collections`` (the instrumented ``clear`` of list, set
    and dict collections). Checked on 2.0.30 and 2.1.9.
    """
    frame: types.FrameType | None = sys._getframe(2)
    for _ in range(12):
        if frame is None:
            return False
        code = frame.f_code
        if code.co_name == "clear" and code.co_filename == _COLLECTIONS_FILE:
            return True
        frame = frame.f_back
    return False


def greenlet_awaiter() -> Callable[[], Callable[[Any], Any] | None]:
    """A function that returns SQLAlchemy's ``await_`` inside its greenlet, else None.

    Inside an ``AsyncSession`` operation SQLAlchemy runs the ORM in a greenlet
    that it marks with ``__sqlalchemy_greenlet_provider__``; its ``await_``
    (``await_only`` before 2.1) awaits on the session's event loop from there.
    Checked on 2.0.30 and 2.1.9. Without greenlet (the ``sqlalchemy[asyncio]``
    extra), never inside.
    """
    try:
        import greenlet  # type: ignore[import-untyped]
        from sqlalchemy import util
    except ImportError:  # pragma: no cover - exercised without greenlet only
        return lambda: None
    await_: Callable[[Any], Any] = getattr(util, "await_", None) or util.await_only
    getcurrent = greenlet.getcurrent

    def awaiter() -> Callable[[Any], Any] | None:
        inside = getattr(getcurrent(), "__sqlalchemy_greenlet_provider__", False)
        return await_ if inside else None

    return awaiter


def reverse_properties(prop: Any) -> Any:
    """The relationships on the other side of ``prop`` (its back-references).

    Checked on 2.0.30 and 2.1.9: ``RelationshipProperty._reverse_property``.
    """
    return prop._reverse_property
