"""pre_bulk and post_bulk: the opt-in signals of ORM bulk statements."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Mapper, ORMExecuteState

from ..._signal import Signal
from . import _state

__all__ = ["post_bulk", "pre_bulk"]

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


def on_statement(state: ORMExecuteState) -> Any:
    """Run an ORM INSERT, UPDATE or DELETE between pre_bulk and post_bulk.

    Returns the statement's result, or None (SQLAlchemy then runs it) when no
    receiver listens.
    """
    if state.is_insert:
        kind = "insert"
    elif state.is_update:
        kind = "update"
    elif state.is_delete:
        kind = "delete"
    else:
        return None
    mapper = state.bind_mapper
    if mapper is None or not _state.installed(mapper):
        return None
    cls = mapper.class_
    if not (pre_bulk.has_listeners(cls) or post_bulk.has_listeners(cls)):
        return None
    session = state.session
    statement = state.statement
    using = _state.using(session, mapper, {})
    pks = _bulk_pks(state, mapper, kind)
    pre_bulk.send(
        cls, kind=kind, statement=statement, pks=pks, using=using, session=session
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
    post_bulk.send(
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
