"""Every use of SQLAlchemy's private names and internals, in one place.

The rest of the integration uses SQLAlchemy's public API only
(tests/integrations/test_sqlalchemy_compat.py fails otherwise). What is here
has no public equivalent (or, for ``sqlalchemy.util``, no documented one);
each function says why, and which SQLAlchemy
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

from sqlalchemy.orm import InstanceState, Session
from sqlalchemy.orm import collections as _collections

__all__ = [
    "called_from_clear",
    "flush_inside_flush",
    "greenlet_awaiter",
    "is_orphan",
]


def is_orphan(state: InstanceState[Any]) -> bool:
    """Whether the flush will delete ``state`` as a delete-orphan.

    SQLAlchemy finds orphans only during the flush, too late for pre_delete;
    this asks the flush's own question early. Checked on 2.0.30 and 2.1.9:
    ``Mapper._delete_orphans`` lists the delete-orphan relationships that
    point to the mapper, ``Mapper._is_orphan(state)`` answers.
    """
    mapper = state.mapper
    return bool(mapper._delete_orphans) and bool(mapper._is_orphan(state))


def flush_inside_flush(session: Session) -> None:
    """Flush ``session`` from inside its ``after_flush_postexec`` event.

    ``Session.flush()`` refuses to run while a flush is in progress, and
    SQLAlchemy re-flushes by itself only within ``commit()``; a plain
    ``flush()`` would leave the objects that post_* receivers added pending.
    Checked on 2.0.30 and 2.1.9: ``Session._flush()``, the body of
    ``Session.flush()`` without its re-entrance guard.
    """
    session._flush()


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

    Inside an ``AsyncSession`` operation SQLAlchemy runs the ORM in a greenlet;
    from there its ``await_`` (``await_only`` before 2.1) awaits on the
    session's event loop. ``sqlalchemy.util`` is not public API, and how the
    greenlet is recognised changed in 2.1 (a marker attribute instead of a
    class), so only its own ``in_greenlet()`` is asked. Checked on 2.0.30 and
    2.1.9. Without greenlet (the ``sqlalchemy[asyncio]`` extra): never inside.
    """
    try:
        import greenlet  # type: ignore[import-untyped]  # noqa: F401
        from sqlalchemy.util import concurrency
    except ImportError:  # pragma: no cover - exercised without greenlet only
        return lambda: None
    await_: Callable[[Any], Any] = (
        getattr(concurrency, "await_", None) or concurrency.await_only
    )
    in_greenlet: Callable[[], bool] = concurrency.in_greenlet

    def awaiter() -> Callable[[Any], Any] | None:
        return await_ if in_greenlet() else None

    return awaiter
