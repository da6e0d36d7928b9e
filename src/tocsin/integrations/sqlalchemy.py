"""Django's model signals, and on_commit, for SQLAlchemy sessions.

Call :func:`install` once at start-up with your declarative base::

    import tocsin.integrations.sqlalchemy as tocsin_sa

    tocsin_sa.install(Base, databases={engine: "default"})

From then on every session of the application (``Session``,
``sessionmaker``, ``scoped_session``, ``AsyncSession``) sends the model
signals of :mod:`tocsin.signals` for the models of that base, with Django's
arguments plus ``session=`` (the synchronous ``Session``). The differences
from Django, and their reasons, are listed in ``docs/model-signals.md``.

How it works, for a reader of this file:

- ``before_flush`` sends ``pre_save``, ``pre_delete`` and the ``pre_*``
  ``m2m_changed`` actions, in rounds until the receivers stop adding or
  changing objects, because the session may still be changed there. It
  records what it sent on the flush context.
- ``after_flush_postexec`` sends ``post_delete``, ``post_save`` and the
  ``post_*`` actions once the rows are written; receivers may change the
  session, so the flush is then repeated until the session is clean.
- Mapper events that fire for every row are not used: they would cost every
  flush something even with no receiver connected. Every signal is checked
  with ``has_listeners()`` first, and nothing is recorded for a signal that
  nobody listens to.
- on_commit callbacks wait in ``session.info``, in one list per open
  transaction or savepoint (see :class:`_SessionUnit`).

.. versionadded:: 0.1
"""

from __future__ import annotations

from tocsin.integrations import require

require("sqlalchemy", extra="sqlalchemy", package="SQLAlchemy")

import functools
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

from sqlalchemy import event, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import (
    ColumnProperty,
    Mapper,
    ORMExecuteState,
    RelationshipProperty,
    Session,
    SessionTransaction,
    UOWTransaction,
    scoped_session,
)
from sqlalchemy.orm import collections as _collections
from sqlalchemy.orm.attributes import OP_REMOVE, instance_state
from sqlalchemy.orm.interfaces import MANYTOONE
from sqlalchemy.orm.state import InstanceState

from .. import _async, transaction
from .._signal import Signal
from ..signals import (
    class_prepared,
    m2m_changed,
    post_delete,
    post_init,
    post_save,
    pre_delete,
    pre_init,
    pre_save,
)

__all__ = [
    "ReceiverLoopError",
    "install",
    "installed_bases",
    "post_bulk",
    "pre_bulk",
]

#: How many rounds of pre_* receivers, or of flushes caused by post_*
#: receivers, before tocsin decides that a receiver changes objects forever.
MAX_ROUNDS = 100

_RECORD = "tocsin.flush"
_QUEUES = "tocsin.on_commit"
_COMMITTED = "tocsin.committed"
_REFLUSHING = "tocsin.reflushing"


class ReceiverLoopError(RuntimeError):
    """Model signal receivers kept changing the session, round after round.

    .. versionadded:: 0.1
    """


# -- bulk statements ------------------------------------------------------------

pre_bulk = Signal(
    name="pre_bulk",
    doc="""An ORM bulk statement is about to run: ``session.execute(insert(Model)
    ...)``, ``update(Model)`` or ``delete(Model)``. Not sent for statements on
    plain tables nor for ``Connection.execute``. Connecting a receiver is the
    opt-in: with none, tocsin adds nothing to these statements.

    sender: the model class of the statement.
    kind: "insert", "update" or "delete".
    statement: the statement.
    pks: the primary keys of the rows the statement affects, as in
        ``m2m_changed``'s ``pk_set`` (a value, or a tuple for a composite
        key), in a list; for UPDATE and DELETE found by a SELECT with the
        statement's WHERE clause (or taken from the parameters of a bulk
        UPDATE by primary key); for INSERT those given in the parameters,
        else None.
    using: the name of the database.
    session: the Session.
    """,
)

post_bulk = Signal(
    name="post_bulk",
    doc="""An ORM bulk statement ran, inside the still-open transaction.

    sender, kind, statement, using, session: as for pre_bulk.
    pks: as for pre_bulk; for INSERT also the keys that the database reports
        for the new rows when it can (a single-row INSERT), else None.
    rowcount: the number of rows matched, when the driver reports it.
    """,
)


# -- installation ---------------------------------------------------------------

_lock = threading.RLock()
_bases: list[type] = []
_registries: set[Any] = set()
_engine_names: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()
_prepared: weakref.WeakSet[type] = weakref.WeakSet()
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
    with _lock:
        for engine, name in named:
            current = _engine_names.get(engine)
            if current is not None and current != name:
                raise ValueError(
                    f"{engine!r} is already named {current!r}; it cannot also be "
                    f"named {name!r}."
                )
        for engine, name in named:
            _engine_names[engine] = name
        _listen_to_sessions()
        for base in bases:
            if base in _bases:
                continue
            _bases.append(base)
            _registries.add(base.registry)  # type: ignore[attr-defined]
            event.listen(base, "after_mapper_constructed", _on_mapper, propagate=True)
            event.listen(base, "mapper_configured", _on_configured, propagate=True)
            if _load_events:
                event.listen(base, "load", _on_load, raw=True, propagate=True)
            for cls in _mapped_subclasses(base):
                mapper = _mapper_of(cls)
                _prepare(cls)
                if mapper is not None and mapper.configured:
                    _on_configured(mapper, cls)
            if not _load_events and any(
                _init_listened(cls) for cls in _mapped_subclasses(base)
            ):
                _enable_load_events()


def installed_bases() -> tuple[type, ...]:
    """The bases given to :func:`install` so far, in order.

    .. versionadded:: 0.1
    """
    return tuple(_bases)


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
    event.listen(Session, "before_flush", _before_flush)
    event.listen(Session, "after_flush_postexec", _after_flush_postexec)
    event.listen(Session, "after_commit", _after_commit)
    event.listen(Session, "after_transaction_end", _after_transaction_end)
    event.listen(Session, "do_orm_execute", _on_execute)


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
    manager = cls.__dict__.get("_sa_class_manager")
    mapper: Mapper[Any] | None = manager.mapper if manager is not None else None
    return mapper


def _installed(mapper: Mapper[Any]) -> bool:
    return mapper.registry in _registries


def _on_mapper(mapper: Mapper[Any], cls: type) -> None:
    _prepare(cls)


def _prepare(cls: type) -> None:
    with _lock:
        if cls in _prepared:
            return
        _prepared.add(cls)
        _wrap_init(cls)
    _send(class_prepared, cls)


# -- pre_init / post_init ----------------------------------------------------------


def _wrap_init(cls: type) -> None:
    # SQLAlchemy has an event before __init__ but none after it, so each mapped
    # class's own (instrumented) __init__ is wrapped; only the wrapper of the
    # instance's own class sends, so a super().__init__() chain sends once.
    original = cls.__dict__.get("__init__")
    if original is None or getattr(original, "_tocsin_wrapped", False):
        return

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if type(self) is not cls:
            original(self, *args, **kwargs)
            return
        if pre_init.has_listeners(cls):
            _send(pre_init, cls, args=args, kwargs=dict(kwargs))
        original(self, *args, **kwargs)
        if post_init.has_listeners(cls):
            _send(post_init, cls, instance=self)

    __init__._tocsin_wrapped = True  # type: ignore[attr-defined]
    cls.__init__ = __init__  # type: ignore[misc]


# A listener for SQLAlchemy's per-row "load" event costs every query about 10%
# even when it returns at once, so it is registered only once some pre_init or
# post_init receiver exists for an installed model: install() checks, and so
# does every ORM SELECT, for its main model, that model's subclasses and the
# models it is related to, before its rows are loaded.
_load_events = False


def _init_listened(cls: type) -> bool:
    return pre_init.has_listeners(cls) or post_init.has_listeners(cls)


def _enable_load_events() -> None:
    global _load_events
    with _lock:
        if _load_events:
            return
        for base in _bases:
            event.listen(base, "load", _on_load, raw=True, propagate=True)
        _load_events = True


def _select_needs_load_events(mapper: Mapper[Any] | None) -> bool:
    if mapper is None or not _installed(mapper):
        return False
    related = [rel.mapper for rel in mapper.relationships]
    for candidate in (mapper, *related):
        for each in candidate.self_and_descendants:
            if _init_listened(each.class_):
                return True
    return False


def _on_load(state: InstanceState[Any], context: Any) -> None:
    cls = state.class_
    if pre_init.has_listeners(cls):
        values = state.dict
        args = tuple(values[key] for key in _column_keys(state.mapper) if key in values)
        _send(pre_init, cls, args=args, kwargs={})
    if post_init.has_listeners(cls):
        _send(post_init, cls, instance=state.obj())


@functools.cache
def _column_keys(mapper: Mapper[Any]) -> tuple[str, ...]:
    return tuple(prop.key for prop in mapper.column_attrs)


# -- sending ---------------------------------------------------------------------


def _send(signal: Signal, sender: Any, **named: Any) -> None:
    signal.send(sender, **named)


def _in_greenlet() -> bool:
    return False


def _await(awaitable: Any) -> Any:
    raise RuntimeError("unreachable without greenlet")


try:  # AsyncSession support needs greenlet (the sqlalchemy[asyncio] extra)
    import greenlet as _greenlet  # type: ignore[import-untyped]
    from sqlalchemy import util as _sa_util

    _await = getattr(_sa_util, "await_", None) or _sa_util.await_only

    def _in_greenlet() -> bool:
        current = _greenlet.getcurrent()
        return bool(getattr(current, "__sqlalchemy_greenlet_provider__", False))

except ImportError:  # pragma: no cover - exercised without greenlet only
    pass


def _awaiter() -> Callable[[Any], Any] | None:
    return _await if _in_greenlet() else None


# Inside an AsyncSession operation this thread's event loop is running, and
# the core refuses to block it. Await async receivers on the session's own
# loop instead, from inside SQLAlchemy's greenlet.
_async.register_bridge(_awaiter)


def _using(session: Session, mapper: Mapper[Any], cache: dict[Any, str]) -> str:
    name = cache.get(mapper)
    if name is None:
        bind = session.get_bind(mapper=mapper)
        engine = bind.engine if isinstance(bind, Connection) else bind
        name = cache[mapper] = _engine_names.get(engine, "default")
    return name


# -- flushes ---------------------------------------------------------------------


class _Flush:
    """What one flush sent in its pre phase, for its post phase."""

    __slots__ = (
        "deletes",
        "late_m2m",
        "listening",
        "m2m",
        "m2m_done",
        "saves",
        "using",
    )

    def __init__(self) -> None:
        # state -> (instance, created, update_fields, send post_save)
        # The instances are held here: once written, the session holds them
        # only weakly, and an object added without a reference would be gone
        # before its post_save.
        self.saves: dict[
            InstanceState[Any], tuple[Any, bool, frozenset[str] | None, bool]
        ] = {}
        # state -> (instance, origin, send post_delete)
        self.deletes: dict[InstanceState[Any], tuple[Any, Any, bool]] = {}
        self.m2m: list[_M2MChange] = []
        self.late_m2m: list[_M2MChange] = []
        self.m2m_done: set[tuple[InstanceState[Any], str, InstanceState[Any]]] = set()
        self.listening: dict[type, tuple[bool, bool, bool, bool] | None] = {}
        self.using: dict[Any, str] = {}


def _listening(
    record: _Flush, state: InstanceState[Any]
) -> tuple[bool, bool, bool, bool] | None:
    cls = state.class_
    try:
        return record.listening[cls]
    except KeyError:
        pass
    flags: tuple[bool, bool, bool, bool] | None = None
    if _installed(state.mapper):
        flags = (
            pre_save.has_listeners(cls),
            post_save.has_listeners(cls),
            pre_delete.has_listeners(cls),
            post_delete.has_listeners(cls),
        )
        if not any(flags):
            flags = None
    record.listening[cls] = flags
    return flags


def _before_flush(
    session: Session, flush_context: UOWTransaction, instances: Any
) -> None:
    if not _registries:
        return
    record = _Flush()
    flush_context.attributes[_RECORD] = record
    token = transaction._current.set(_SessionUnit(session))
    try:
        for _ in range(MAX_ROUNDS):
            if not _pre_round(session, record):
                return
        raise ReceiverLoopError(
            f"pre_save, pre_delete or m2m_changed receivers kept adding or changing "
            f"objects for {MAX_ROUNDS} rounds in one flush. A receiver probably "
            "adds or changes an object every time it is called; make it do so "
            "only when needed."
        )
    finally:
        transaction._current.reset(token)


def _pre_round(session: Session, record: _Flush) -> bool:
    """Send the pre_* signals of one round; tell whether any receiver may have run."""
    sent = False
    deleted_now = [instance_state(obj) for obj in session.deleted]
    deleted = set(deleted_now)
    dirty = (
        [instance_state(obj) for obj in session.dirty] if _any_dirty(session) else []
    )

    # Deletions first, so that a row switch reads pre_delete(old), pre_save(new).
    candidates = [st for st in deleted_now if st not in record.deletes]
    candidates += _orphans(dirty, deleted, record)
    if candidates:
        sent |= _pre_delete(session, record, candidates)

    # Session._new maps pending states to their objects: Session.new would
    # build a set of them first, which a flush of many new objects would feel.
    listening = record.listening
    for st, obj in list(session._new.items()):
        if st in record.saves:
            continue
        flags = (
            listening[st.class_] if st.class_ in listening else _listening(record, st)
        )
        if flags is None:
            continue
        record.saves[st] = (obj, True, None, flags[1])
        if flags[0]:
            sent = True
            _send(
                pre_save,
                st.class_,
                instance=obj,
                raw=False,
                using=_using(session, st.mapper, record.using),
                update_fields=None,
                session=session,
            )
    for st in dirty:
        if st in record.saves or st in deleted or st in record.deletes:
            continue
        flags = _listening(record, st)
        if flags is None:
            continue
        changed = _changed_keys(st)
        if not changed:
            continue
        record.saves[st] = (st.obj(), False, changed, flags[1])
        if flags[0]:
            sent = True
            _send(
                pre_save,
                st.class_,
                instance=st.obj(),
                raw=False,
                using=_using(session, st.mapper, record.using),
                update_fields=changed,
                session=session,
            )
    if _m2m_log:
        sent |= _pre_m2m(session, record, deleted)
    return sent


def _any_dirty(session: Session) -> bool:
    # identity_map._modified is what Session.dirty itself reads; checking it
    # first keeps a flush of new objects from scanning anything else.
    return bool(session.identity_map._modified)


def _changed_keys(state: InstanceState[Any]) -> frozenset[str]:
    """The column attributes whose UPDATE this flush will write."""
    mapper = state.mapper
    changed: set[str] = set()
    attrs = state.attrs
    for key in state.committed_state:
        prop = mapper.attrs.get(key)
        if isinstance(prop, ColumnProperty):
            history = attrs[key].history
            if history.added or history.deleted:
                changed.add(key)
        elif isinstance(prop, RelationshipProperty) and prop.direction is MANYTOONE:
            history = attrs[key].history
            if history.added or history.deleted:
                changed.update(_foreign_key_attrs(prop))
    return frozenset(changed)


@functools.cache
def _foreign_key_attrs(prop: RelationshipProperty[Any]) -> tuple[str, ...]:
    keys = []
    for column in prop.local_columns:
        try:
            keys.append(prop.parent.get_property_by_column(column).key)
        except Exception:  # a column not mapped to an attribute
            keys.append(str(column.key))
    return tuple(keys)


# -- deletions --------------------------------------------------------------------


def _orphans(
    dirty: list[InstanceState[Any]],
    deleted: set[InstanceState[Any]],
    record: _Flush,
) -> list[InstanceState[Any]]:
    """Persistent objects that delete-orphan cascades will delete in this flush.

    SQLAlchemy finds them only during the flush, too late for pre_delete; this
    asks the same question early (``Mapper._is_orphan``, which the flush uses).
    """
    found: list[InstanceState[Any]] = []
    for st in dirty:
        mapper = st.mapper
        if mapper._delete_orphans and st.has_identity and mapper._is_orphan(st):
            found.append(st)
        for key in _orphan_relationships(mapper):
            for child in st.attrs[key].history.deleted:
                if child is None:
                    continue
                child_state = instance_state(child)
                if child_state.has_identity and child_state.mapper._is_orphan(
                    child_state
                ):
                    found.append(child_state)
    return [
        st
        for st in dict.fromkeys(found)
        if st not in deleted and st not in record.deletes and st.session_id is not None
    ]


@functools.cache
def _orphan_relationships(mapper: Mapper[Any]) -> tuple[str, ...]:
    return tuple(rel.key for rel in mapper.relationships if rel.cascade.delete_orphan)


def _pre_delete(
    session: Session, record: _Flush, candidates: list[InstanceState[Any]]
) -> bool:
    origins = _origins(candidates, record)
    states = _deletion_order(list(origins))
    sent = False
    for st in states:
        flags = _listening(record, st)
        if flags is None:
            continue
        origin = origins[st]
        record.deletes[st] = (st.obj(), origin, flags[3])
        if flags[2]:
            sent = True
            _send(
                pre_delete,
                st.class_,
                instance=st.obj(),
                using=_using(session, st.mapper, record.using),
                origin=origin,
                session=session,
            )
    return sent


def _origins(
    candidates: list[InstanceState[Any]], record: _Flush
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
        root = st.obj()
        origins[st] = root
        for child in descendants[st]:
            origins.setdefault(child, root)
    for st in pending:  # a cycle: nobody is the root
        origins.setdefault(st, st.obj())
    return origins


def _deletion_order(states: list[InstanceState[Any]]) -> list[InstanceState[Any]]:
    """Django's order: dependent tables first, then primary key ascending."""
    by_key = _sorted_by_key(states)
    return sorted(by_key, key=lambda st: -_table_rank(st.mapper))


def _sorted_by_key(
    states: list[InstanceState[Any]], reverse: bool = False
) -> list[InstanceState[Any]]:
    try:
        return sorted(
            states, key=lambda st: st.key[1] if st.key else (), reverse=reverse
        )
    except TypeError:  # primary keys of mixed types
        return list(reversed(states)) if reverse else list(states)


def _table_rank(mapper: Mapper[Any]) -> int:
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


# -- the post phase -----------------------------------------------------------------


def _after_flush_postexec(session: Session, flush_context: UOWTransaction) -> None:
    record: _Flush | None = flush_context.attributes.get(_RECORD)
    if record is None or not (
        record.saves or record.deletes or record.m2m or record.late_m2m
    ):
        return
    token = transaction._current.set(_SessionUnit(session))
    try:
        sent = _post(session, record)
    finally:
        transaction._current.reset(token)
    if sent and not session.info.get(_REFLUSHING):
        _flush_until_clean(session)


def _post(session: Session, record: _Flush) -> bool:
    sent = False
    # post_delete: model by model as for pre_delete, primary key descending.
    order = _sorted_by_key(list(record.deletes), reverse=True)
    order.sort(key=lambda st: -_table_rank(st.mapper))
    for st in order:
        instance, origin, wanted = record.deletes[st]
        if wanted:
            sent = True
            _send(
                post_delete,
                st.class_,
                instance=instance,
                using=_using(session, st.mapper, record.using),
                origin=origin,
                session=session,
            )
    # post_save: parents' tables before children's, then in pre_save order.
    saves = sorted(record.saves, key=lambda st: _table_rank(st.mapper))
    for st in saves:
        instance, created, fields, wanted = record.saves[st]
        if not wanted or not st.persistent:
            continue
        sent = True
        _send(
            post_save,
            st.class_,
            instance=instance,
            created=created,
            update_fields=fields,
            raw=False,
            using=_using(session, st.mapper, record.using),
            session=session,
        )
    for change in record.late_m2m:
        change.compute_pk_set()
        change.send("pre_", session, record)
        sent = True
    for change in record.m2m + record.late_m2m:
        change.send("post_", session, record)
        sent = True
    return sent


def _flush_until_clean(session: Session) -> None:
    """Flush again what post_* receivers changed, so nothing is left pending.

    ``commit()`` would re-flush by itself, but a plain ``flush()`` would leave
    the receivers' objects pending. ``Session.flush()`` refuses to run inside
    a flush, so the inner flush method is called, in a loop (not recursively).
    """
    session.info[_REFLUSHING] = True
    try:
        for _ in range(MAX_ROUNDS):
            if session._is_clean():
                return
            session._flush()
        if session._is_clean():
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


# -- many-to-many -------------------------------------------------------------------

_m2m_lock = threading.Lock()
# owner state -> {relationship key: {target state: None}}, for changes made from
# that side (the echo on the other side of a backref is not recorded).
_m2m_log: weakref.WeakKeyDictionary[
    InstanceState[Any], dict[str, dict[InstanceState[Any], bool]]
] = weakref.WeakKeyDictionary()


def _on_configured(mapper: Mapper[Any], cls: type) -> None:
    if not _installed(mapper):
        return
    for prop in mapper.relationships:
        if prop.parent is not mapper or prop.secondary is None:
            continue
        if prop.info.get("tocsin.m2m"):
            continue
        prop.info["tocsin.m2m"] = True
        listener = functools.partial(_on_m2m_event, prop)
        attribute = getattr(prop.parent.class_, prop.key)
        event.listen(attribute, "append", listener, raw=True, propagate=True)
        event.listen(attribute, "remove", listener, raw=True, propagate=True)


def _on_m2m_event(
    prop: RelationshipProperty[Any],
    state: InstanceState[Any],
    value: Any,
    initiator: Any,
) -> Any:
    if value is None or initiator is None or initiator.parent_token is not prop:
        return value  # the echo of a change made on the other side
    through, _reverse, _model = _m2m_meta(prop)
    if not m2m_changed.has_listeners(through):
        return value
    target = instance_state(value)
    cleared = initiator.op is OP_REMOVE and _called_from_clear()
    with _m2m_lock:
        for other in prop._reverse_property:
            if state in _m2m_log.get(target, {}).get(other.key, {}):
                return value  # the same link was first changed from the other side
        targets = _m2m_log.setdefault(state, {}).setdefault(prop.key, {})
        targets[target] = targets.get(target, False) or cleared
    return value


_COLLECTIONS_FILE = _collections.__file__


def _called_from_clear() -> bool:
    """Whether this removal comes from the collection's ``clear()``.

    SQLAlchemy reports ``clear()`` as one removal per item, like ``remove()``,
    while Django sends ``clear`` actions for it; the caller's frame tells them
    apart.
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
        first_position(other) < first_position(prop) for other in prop._reverse_property
    )
    return through, reverse, prop.mapper.class_


class _M2MChange:
    __slots__ = ("action", "instance", "owner", "pk_set", "prop", "targets")

    def __init__(
        self,
        owner: InstanceState[Any],
        prop: RelationshipProperty[Any],
        action: str,
        targets: list[InstanceState[Any]],
    ) -> None:
        self.owner = owner
        self.instance = owner.obj()
        self.prop = prop
        self.action = action
        self.targets = targets
        self.pk_set: set[Any] | None = None

    def ready(self) -> bool:
        return self.owner.key is not None and all(
            t.key is not None for t in self.targets
        )

    def compute_pk_set(self) -> None:
        if self.action == "clear":
            self.pk_set = None
        else:
            self.pk_set = {_pk(t) for t in self.targets}

    def send(self, phase: str, session: Session, record: _Flush) -> None:
        through, reverse, model = _m2m_meta(self.prop)
        _send(
            m2m_changed,
            through,
            action=phase + self.action,
            instance=self.instance,
            reverse=reverse,
            model=model,
            pk_set=None if self.pk_set is None else set(self.pk_set),
            using=_using(session, self.owner.mapper, record.using),
            session=session,
        )


def _pk(state: InstanceState[Any]) -> Any:
    key = state.key[1]  # type: ignore[index]
    return key[0] if len(key) == 1 else key


def _pre_m2m(
    session: Session, record: _Flush, deleted: set[InstanceState[Any]]
) -> bool:
    mine = []
    with _m2m_lock:
        for owner in list(_m2m_log.keys()):
            if owner.session_id == session.hash_key:
                mine.append((owner, _m2m_log.pop(owner)))
    sent = False
    for owner, changes in mine:
        if owner in deleted or owner in record.deletes:
            continue
        for key, targets in changes.items():
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
            added = [t for t in added if (owner, key, t) not in record.m2m_done]
            removed = [t for t in removed if (owner, key, t) not in record.m2m_done]
            record.m2m_done.update((owner, key, t) for t in added + removed)
            cleared = any(targets[t] for t in removed)
            actions = []
            if removed:
                actions.append(
                    _M2MChange(owner, prop, "clear" if cleared else "remove", removed)
                )
            if added:
                actions.append(_M2MChange(owner, prop, "add", added))
            for change in actions:
                if change.ready():
                    change.compute_pk_set()
                    change.send("pre_", session, record)
                    record.m2m.append(change)
                    sent = True
                else:
                    record.late_m2m.append(change)
    return sent


# -- bulk statements -------------------------------------------------------------------


def _on_execute(state: ORMExecuteState) -> Any:
    if not _registries:
        return None
    if state.is_select:
        if not _load_events and _select_needs_load_events(state.bind_mapper):
            _enable_load_events()
        return None
    if state.is_insert:
        kind = "insert"
    elif state.is_update:
        kind = "update"
    elif state.is_delete:
        kind = "delete"
    else:
        return None
    mapper = state.bind_mapper
    if mapper is None or not _installed(mapper):
        return None
    cls = mapper.class_
    if not (pre_bulk.has_listeners(cls) or post_bulk.has_listeners(cls)):
        return None
    session = state.session
    statement = state.statement
    using = _using(session, mapper, {})
    pks = _bulk_pks(state, mapper, kind)
    _send(
        pre_bulk,
        cls,
        kind=kind,
        statement=statement,
        pks=pks,
        using=using,
        session=session,
    )
    result = state.invoke_statement()
    if kind == "insert" and pks is None:
        try:
            rows = result.inserted_primary_key_rows  # type: ignore[attr-defined]
        except Exception:
            rows = None
        if rows and all(row is not None and None not in tuple(row) for row in rows):
            pks = [row[0] if len(row) == 1 else tuple(row) for row in rows]
    try:
        rowcount = result.rowcount  # type: ignore[attr-defined]
    except Exception:
        rowcount = None
    _send(
        post_bulk,
        cls,
        kind=kind,
        statement=statement,
        pks=pks,
        rowcount=rowcount,
        using=using,
        session=session,
    )
    return result


def _bulk_pks(
    state: ORMExecuteState, mapper: Mapper[Any], kind: str
) -> list[Any] | None:
    keys = [mapper.get_property_by_column(column).key for column in mapper.primary_key]
    params: Any = state.parameters
    many: list[Any] = params if isinstance(params, list) else [params] if params else []
    if many and all(all(key in row for key in keys) for row in many):
        return [
            row[keys[0]] if len(keys) == 1 else tuple(row[k] for k in keys)
            for row in many
        ]
    if kind == "insert":
        return None
    statement = state.statement
    where = getattr(statement, "whereclause", None)
    query = select(*(getattr(mapper.class_, key) for key in keys))
    if where is not None:
        query = query.where(where)
    rows = state.session.execute(query, execution_options={"autoflush": False}).all()
    return [row[0] if len(keys) == 1 else tuple(row) for row in rows]


# -- on_commit --------------------------------------------------------------------------


class _SessionUnit:
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


def _after_commit(session: Session) -> None:
    if session.info.get(_QUEUES):
        session.info[_COMMITTED] = (
            session.get_nested_transaction() or session.get_transaction()
        )


def _after_transaction_end(session: Session, ended: SessionTransaction) -> None:
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


def _session_unit(session: Session) -> transaction.UnitOfWork:
    return _SessionUnit(session)


transaction.register_unit_of_work_adapter(Session, _session_unit)
transaction.register_unit_of_work_adapter(
    scoped_session, lambda scoped: _SessionUnit(scoped())
)
try:
    from sqlalchemy.ext.asyncio import AsyncSession, async_scoped_session

    transaction.register_unit_of_work_adapter(
        AsyncSession, lambda session: _SessionUnit(session.sync_session)
    )
    transaction.register_unit_of_work_adapter(
        async_scoped_session, lambda scoped: _SessionUnit(scoped().sync_session)
    )
except ImportError:  # pragma: no cover
    pass
