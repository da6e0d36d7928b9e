"""install(): listeners on the Session class and on each declarative base."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapper, ORMExecuteState, Session

from ...signals import class_prepared
from . import _bulk, _flush, _init, _m2m, _on_commit, _state

__all__ = ["install", "installed_bases"]

_session_events = False


def install(*bases: type, databases: Mapping[Any, str] | None = None) -> None:
    """Make the models of ``bases`` send Django's model signals, from every session.

    Call it once at start-up, before or after the models are defined. It
    registers listeners on the :class:`sqlalchemy.orm.Session` class (so
    every ``Session``, ``sessionmaker``, ``scoped_session`` and
    ``AsyncSession`` is covered) and on each base (so models defined later
    are covered too). Models need no change. Calling it again with the same
    arguments does nothing.

    ``class_prepared`` is sent for each model when it is defined, or, for the
    models already defined when ``install`` runs, by ``install`` itself, once
    per model.

    Args:
        *bases: Declarative base classes (a ``DeclarativeBase`` subclass, or
            the class returned by ``declarative_base()``).
        databases: Names for engines, sent as ``using=``: ``{engine: "name"}``.
            ``AsyncEngine`` and ``Connection`` keys stand for their engine.
            Writes through an engine that has no name send
            ``using="default"``.

    Raises:
        TypeError: A base is not a declarative base class, or a database
            key is not an engine, or a name is not a string.
        ValueError: An engine already has another name.

    .. versionadded:: 0.1
    """
    if not bases:
        raise TypeError(
            "install() needs your declarative base class: install(Base), where "
            "Base is the class that your models inherit from."
        )
    for base in bases:
        if not isinstance(base, type) or not hasattr(base, "registry"):
            raise TypeError(
                f"install() takes declarative base classes (the class your models "
                f"inherit from, with a .registry), not {base!r}."
            )
    named = _check_databases(databases or {})
    with _state.lock:
        for engine, name in named:
            current = _state.engine_names.get(engine)
            if current is not None and current != name:
                raise ValueError(
                    f"{engine!r} is already named {current!r}; it cannot also be "
                    f"named {name!r}."
                )
        for engine, name in named:
            _state.engine_names[engine] = name
        _listen_to_sessions()
        for base in bases:
            if base in _state.bases:
                continue
            _state.bases.append(base)
            _state.registries.add(base.registry)  # type: ignore[attr-defined]
            event.listen(base, "after_mapper_constructed", _on_mapper, propagate=True)
            event.listen(base, "mapper_configured", _m2m.on_configured, propagate=True)
            _init.listen_to_loads(base)
            for cls in _mapped_subclasses(base):
                mapper = _mapper_of(cls)
                _prepare(cls)
                if mapper is not None and mapper.configured:
                    _m2m.on_configured(mapper, cls)
            if any(_init.listened(cls) for cls in _mapped_subclasses(base)):
                _init.enable_load_events()


def installed_bases() -> tuple[type, ...]:
    """The bases given to :func:`install` so far, in order.

    .. versionadded:: 0.1
    """
    return tuple(_state.bases)


def _check_databases(databases: Mapping[Any, str]) -> list[tuple[Engine, str]]:
    if not isinstance(databases, Mapping):
        raise TypeError(
            f"databases must be a mapping from engines to names, not {databases!r}."
        )
    named = []
    for key, name in databases.items():
        engine = getattr(key, "sync_engine", key)  # AsyncEngine
        if isinstance(engine, Connection):
            engine = engine.engine
        if not isinstance(engine, Engine):
            raise TypeError(
                f"databases keys must be engines (Engine or AsyncEngine), not {key!r}."
            )
        if not isinstance(name, str):
            raise TypeError(f"Database names must be strings, not {name!r}.")
        named.append((engine, name))
    return named


def _listen_to_sessions() -> None:
    global _session_events
    if _session_events:
        return
    _session_events = True
    event.listen(Session, "before_flush", _flush.before_flush)
    event.listen(Session, "after_flush_postexec", _flush.after_flush_postexec)
    event.listen(Session, "after_commit", _on_commit.after_commit)
    event.listen(Session, "after_transaction_end", _on_commit.after_transaction_end)
    event.listen(Session, "do_orm_execute", _on_execute)


def _on_execute(state: ORMExecuteState) -> Any:
    if not _state.registries:
        return None
    if state.is_select:
        _init.on_select(state)
        return None
    return _bulk.on_statement(state)


def _mapped_subclasses(base: type) -> Iterator[type]:
    seen: set[type] = set()
    stack = [base]
    while stack:
        cls = stack.pop(0)
        if cls in seen:
            continue
        seen.add(cls)
        if _mapper_of(cls) is not None:
            yield cls
        stack[0:0] = cls.__subclasses__()


def _mapper_of(cls: type) -> Mapper[Any] | None:
    """The mapper of ``cls`` itself (None for a subclass that is not mapped)."""
    mapper: Any = inspect(cls, raiseerr=False)
    if isinstance(mapper, Mapper) and mapper.class_ is cls:
        return mapper
    return None


def _on_mapper(mapper: Any, cls: type) -> None:
    _prepare(cls)


def _prepare(cls: type) -> None:
    with _state.lock:
        if cls in _state.prepared:
            return
        _state.prepared.add(cls)
        _init.wrap_init(cls)
    class_prepared.send(cls)
