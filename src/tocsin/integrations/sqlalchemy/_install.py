"""install(): listeners on the Session class and on each declarative base."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapper, ORMExecuteState, Session

from ...signals import class_prepared
from . import _bulk, _flush, _init, _m2m, _on_commit, _state

__all__ = ["Installation", "install", "installed_bases"]

# The listeners on the Session class, and the unit-of-work adapters, while
# any base is installed: the functions that remove the adapters, else None.
_sessions: list[Callable[[], None]] | None = None


class Installation:
    """What one :func:`install` call set up; :meth:`uninstall` takes it down.

    Every call returns its own handle, also when it changed nothing. Each base
    and engine name stays installed while a handle that claims it is not
    uninstalled, so two parts of an application may each install (and later
    uninstall) the same base.

    .. versionadded:: 0.1
    """

    __slots__ = ("_active", "_bases", "_engines")

    def __init__(self, bases: tuple[type, ...], engines: tuple[Engine, ...]) -> None:
        self._bases = bases
        self._engines = engines
        self._active = True

    @property
    def bases(self) -> tuple[type, ...]:
        """The bases given to the :func:`install` call."""
        return self._bases

    @property
    def active(self) -> bool:
        """False once :meth:`uninstall` was called."""
        return self._active

    def uninstall(self) -> None:
        """Undo this :func:`install` call; a second call does nothing.

        A base that no other active handle claims stops sending signals: its
        listeners are removed and its models get their own ``__init__`` back
        (their instances and sessions keep working, and send nothing). Engine
        names are dropped the same way. Once no base is installed, the
        listeners on the ``Session`` class are removed too, and sessions are
        no longer accepted by ``on_commit(using=...)``. A later
        :func:`install` sends ``class_prepared`` again for the models of a
        base installed anew.

        .. versionadded:: 0.1
        """
        with _state.lock:
            if not self._active:
                return
            self._active = False
            for base in self._bases:
                claims = _state.bases[base] - 1
                if claims:
                    _state.bases[base] = claims
                else:
                    _remove_base(base)
            for engine in self._engines:
                count = _state.engine_claims.get(engine, 0) - 1
                if count > 0:
                    _state.engine_claims[engine] = count
                else:
                    _state.engine_claims.pop(engine, None)
                    _state.engine_names.pop(engine, None)
            if not _state.bases:
                _stop_listening_to_sessions()

    def __repr__(self) -> str:
        names = ", ".join(base.__qualname__ for base in self._bases)
        state = "" if self._active else " (uninstalled)"
        return f"<tocsin.integrations.sqlalchemy.Installation of {names}{state}>"


def install(*bases: type, databases: Mapping[Any, str] | None = None) -> Installation:
    """Make the models of ``bases`` send Django's model signals, from every session.

    Call it once at start-up, before or after the models are defined. It
    registers listeners on the :class:`sqlalchemy.orm.Session` class (so
    every ``Session``, ``sessionmaker``, ``scoped_session`` and
    ``AsyncSession`` is covered) and on each base (so models defined later
    are covered too). Models need no change. Calling it again with the same
    arguments changes nothing (and returns another handle on the same
    installation).

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

    Returns:
        An :class:`Installation`, whose ``uninstall()`` undoes this call
        (tests use it; an application rarely needs to).

    Raises:
        TypeError: A base is not a declarative base class, or a database
            key is not an engine, or a name is not a string.
        ValueError: An engine already has another name.

    .. versionadded:: 0.1
    .. versionchanged:: 0.1 returns an :class:`Installation`.
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
    bases = tuple(dict.fromkeys(bases))
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
            _state.engine_claims[engine] = _state.engine_claims.get(engine, 0) + 1
        _listen_to_sessions()
        for base in bases:
            claims = _state.bases.get(base, 0)
            _state.bases[base] = claims + 1
            if not claims:
                _add_base(base)
        return Installation(bases, tuple(engine for engine, _name in named))


def _add_base(base: type) -> None:
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


def _remove_base(base: type) -> None:
    del _state.bases[base]
    registry = base.registry  # type: ignore[attr-defined]
    if all(other.registry is not registry for other in _state.bases):  # type: ignore[attr-defined]
        _state.registries.discard(registry)
    event.remove(base, "after_mapper_constructed", _on_mapper)
    event.remove(base, "mapper_configured", _m2m.on_configured)
    _init.stop_listening_to_loads(base, last=not _state.bases)
    for cls in _mapped_subclasses(base):
        _init.unwrap_init(cls)
        _state.prepared.discard(cls)
        mapper = _mapper_of(cls)
        if mapper is not None:
            _m2m.stop(mapper)


def installed_bases() -> tuple[type, ...]:
    """The bases installed now (given to :func:`install`, not uninstalled), in order.

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


def _on_execute(state: ORMExecuteState) -> Any:
    if not _state.registries:
        return None
    if state.is_select:
        _init.on_select(state)
        return None
    return _bulk.on_statement(state)


_SESSION_EVENTS: tuple[tuple[str, Callable[..., Any]], ...] = (
    ("before_flush", _flush.before_flush),
    ("after_flush_postexec", _flush.after_flush_postexec),
    ("after_commit", _on_commit.after_commit),
    ("after_transaction_end", _on_commit.after_transaction_end),
    ("do_orm_execute", _on_execute),
)


def _listen_to_sessions() -> None:
    global _sessions
    if _sessions is not None:
        return
    for name, listener in _SESSION_EVENTS:
        event.listen(Session, name, listener)
    _sessions = _on_commit.register_sessions()


def _stop_listening_to_sessions() -> None:
    global _sessions
    if _sessions is None:
        return
    for name, listener in _SESSION_EVENTS:
        event.remove(Session, name, listener)
    for unregister in _sessions:
        unregister()
    _sessions = None


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
