"""What :func:`install` set up, shared by the listeners: bases, engine names."""

from __future__ import annotations

import threading
import weakref
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapper, Session

__all__ = ["MAX_ROUNDS", "ReceiverLoopError"]

#: How many rounds of pre_* receivers, or of flushes caused by post_*
#: receivers, before tocsin decides that a receiver changes objects forever.
MAX_ROUNDS = 100

lock = threading.RLock()
# The installed bases, in order, and how many install() calls claim each: a
# base is uninstalled when the last handle that claims it is.
bases: dict[type, int] = {}
registries: set[Any] = set()
engine_names: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()
engine_claims: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()
# The mapped classes whose class_prepared was sent and __init__ wrapped.
prepared: weakref.WeakSet[type] = weakref.WeakSet()


class ReceiverLoopError(RuntimeError):
    """Model signal receivers kept changing the session, round after round.

    .. versionadded:: 0.1
    """


def installed(mapper: Mapper[Any]) -> bool:
    """Whether ``mapper`` belongs to a base given to install()."""
    return mapper.registry in registries


def using(session: Session, mapper: Mapper[Any], cache: dict[Any, str]) -> str:
    """The name of the engine that ``session`` writes ``mapper``'s rows to."""
    name = cache.get(mapper)
    if name is None:
        bind = session.get_bind(mapper=mapper)
        engine = bind.engine if isinstance(bind, Connection) else bind
        name = cache[mapper] = engine_names.get(engine, "default")
    return name
