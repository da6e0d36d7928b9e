"""Random sequences of session operations against the documented model signals.

A hypothesis state machine adds, changes and deletes objects of one small
model on one ``Session`` against a real database, and flushes, commits, rolls
back, opens savepoints and releases or rolls them back, in any order. A plain
reference model of docs/model-signals.md and docs/transactions.md predicts,
for every step, the signals of the flush it causes, the receivers connected
with ``on_commit=True`` that run (only at the outermost commit, in order, never
for rolled-back work) and the rows that the database holds.

The session has ``autoflush=False`` so that every flush is one the machine
asked for; whether an attribute is expired when it is set (which the docs
make a write even for the same value) is read from SQLAlchemy itself.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import String, create_engine, delete, event, inspect, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    SessionTransaction,
    mapped_column,
)

import tocsin.integrations.sqlalchemy as tocsin_sa
from tocsin import Signal
from tocsin.signals import post_delete, post_save, pre_delete, pre_save
from tocsin.testing import connected_to


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "flush_sequence_items"
    # Explicit keys let the machine reuse the key of a deleted object, which
    # makes SQLAlchemy's row switch (docs/model-signals.md, difference 7).
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(10))
    size: Mapped[int]

    def __repr__(self) -> str:
        # Never load: the object may be expired, deleted or detached.
        state = inspect(self)
        pk = state.identity[0] if state.identity else self.__dict__.get("id")
        return f"<Item id={pk} at {id(self):#x}>"


COLUMNS = ("name", "size")
KEYS = range(1, 7)
MAX_SAVEPOINTS = 3
names = st.sampled_from(["a", "b", "c"])
sizes = st.integers(0, 2)
picks = st.integers(0, 7)
Row = dict[str, Any]


# -- what the receivers saw ---------------------------------------------------------


@dataclass(eq=False)
class Sent:
    """One model signal as a receiver got it."""

    signal: str
    instance: Item
    sender: Any
    created: bool | None
    update_fields: frozenset[str] | None
    kwargs: dict[str, Any]
    pk: int
    values: Row  # the loaded column values when it was sent

    def describe(self) -> tuple[Any, ...]:
        fields = None if self.update_fields is None else sorted(self.update_fields)
        return (self.signal, self.instance, self.created, fields)


@dataclass(eq=False)
class Ran:
    """One run of the post_save receiver connected with on_commit=True."""

    instance: Item
    created: bool
    update_fields: frozenset[str] | None
    kwargs: dict[str, Any]
    commits: int  # COMMITs the engine had issued when it ran
    in_transaction: bool


class Journal:
    """The receivers, and what they recorded; shared by every example of a test."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.ran: list[Ran] = []
        self.commits = 0
        self.session: Session | None = None

    def reset(self, session: Session) -> None:
        self.sent.clear()
        self.ran.clear()
        self.session = session

    def take(self) -> list[Sent]:
        sent = list(self.sent)
        self.sent.clear()
        return sent

    def on_signal(
        self, sender: Any, signal: Signal, instance: Any, **kwargs: Any
    ) -> None:
        state = inspect(instance)
        pk = state.identity[0] if state.identity else state.dict["id"]
        self.sent.append(
            Sent(
                signal=str(signal.name),
                instance=instance,
                sender=sender,
                created=kwargs.get("created"),
                update_fields=kwargs.get("update_fields"),
                kwargs=kwargs,
                pk=pk,
                values={k: state.dict[k] for k in COLUMNS if k in state.dict},
            )
        )

    def on_commit(
        self,
        sender: Any,
        instance: Any,
        created: bool,
        update_fields: frozenset[str] | None,
        **kwargs: Any,
    ) -> None:
        assert self.session is not None
        self.ran.append(
            Ran(
                instance=instance,
                created=created,
                update_fields=update_fields,
                kwargs={"sender": sender, **kwargs},
                commits=self.commits,
                in_transaction=self.session.in_transaction(),
            )
        )

    def count_commit(self, connection: Connection) -> None:
        self.commits += 1


# -- the steps ----------------------------------------------------------------------
# One rule runs any step, so that hypothesis's swarm testing (which disables a
# random half of the rules in each example) does not keep savepoints, changes
# and commits apart.


@dataclass(frozen=True)
class Add:
    pick: int  # among the free keys
    name: str
    size: int


@dataclass(frozen=True)
class SetAttribute:
    pick: int  # among the pending and persistent objects
    attribute: str
    value: str | int | None  # None: the value it already holds
    load_first: bool  # read the attribute first, loading it if expired


@dataclass(frozen=True)
class Expire:
    pick: int  # among the persistent objects


@dataclass(frozen=True)
class Delete:
    pick: int  # among the persistent objects


@dataclass(frozen=True)
class Flush:
    pass


@dataclass(frozen=True)
class BeginNested:
    pass


@dataclass(frozen=True)
class EndSavepoint:
    release: bool  # commit the savepoint, else roll it back
    flush_first: bool


@dataclass(frozen=True)
class EndTransaction:
    commit: bool  # session.commit(), else session.rollback()


Step = (
    Add
    | SetAttribute
    | Expire
    | Delete
    | Flush
    | BeginNested
    | EndSavepoint
    | EndTransaction
)
same_value = st.none()
adds = st.builds(Add, picks, names, sizes)
savepoints = st.builds(BeginNested)
savepoint_ends = st.builds(EndSavepoint, st.booleans(), st.booleans())
# Adds and savepoints weigh double: each example should reach rolled-back and
# released savepoints that hold flushed work.
steps: st.SearchStrategy[Step] = st.one_of(
    adds,
    adds,
    st.builds(SetAttribute, picks, st.just("name"), names | same_value, st.booleans()),
    st.builds(SetAttribute, picks, st.just("size"), sizes | same_value, st.booleans()),
    st.builds(Expire, picks),
    st.builds(Delete, picks),
    st.builds(Flush),
    savepoints,
    savepoints,
    savepoint_ends,
    savepoint_ends,
    st.builds(EndTransaction, st.booleans()),
)


# -- the reference model ------------------------------------------------------------


@dataclass(eq=False)
class Obj:
    """What the model knows about one object that the session holds."""

    item: Item
    pk: int
    values: Row  # what its attributes hold, or would load
    status: str  # "pending", "persistent", "marked" (for deletion) or "deleted"
    touched: set[str] = field(default_factory=set)  # set since the last flush
    forced: set[str] = field(default_factory=set)  # set while expired: a write
    inserted_at: int | None = None  # savepoint depth of its INSERT, if uncommitted
    deleted_at: int | None = None  # savepoint depth of its DELETE, if uncommitted

    def changed(self, row: Row) -> frozenset[str]:
        return frozenset(
            key
            for key in self.touched
            if key in self.forced or self.values[key] != row[key]
        )


@dataclass
class Plan:
    """The signals one flush must send: deletions by key, then saves."""

    deletes: list[Obj]
    saves: list[tuple[Obj, bool, frozenset[str] | None]]
    # id(instance) -> the changes that its pre_save and post_save carry
    changes: dict[int, dict[str, tuple[Any, Any]]]


def _sorted(sent: list[Sent]) -> list[Sent]:
    return sorted(sent, key=lambda s: (s.pk, id(s.instance)))


@dataclass
class Harness:
    engine: Engine
    reader: Engine
    journal: Journal


class FlushSequences(RuleBasedStateMachine):
    harness: ClassVar[Harness]

    def __init__(self) -> None:
        super().__init__()
        self.engine = self.harness.engine
        self.reader = self.harness.reader
        self.journal = self.harness.journal
        with self.engine.begin() as connection:
            connection.execute(delete(Item))
        self.session = Session(self.engine, autoflush=False)
        self.journal.reset(self.session)
        self.objs: list[Obj] = []
        self.rows: dict[int, Row] = {}  # as the open transaction sees them
        self.committed: dict[int, Row] = {}
        self.replayed: dict[int, Row] = {}  # rebuilt from committed signals alone
        self.snapshots: list[dict[int, Row]] = []  # rows when each savepoint began
        self.savepoints: list[SessionTransaction] = []
        # Per open transaction and savepoint, the post_* signals of its flushes.
        self.queues: list[list[Sent]] = [[]]
        self.expected_runs: list[Sent] = []
        self.commit_at_the_end = False

    @initialize(
        expire_on_commit=st.booleans(),
        committed=st.lists(st.tuples(names, sizes), max_size=len(KEYS) - 2),
        commit_at_the_end=st.booleans(),
    )
    def start(
        self,
        expire_on_commit: bool,
        committed: list[tuple[str, int]],
        commit_at_the_end: bool,
    ) -> None:
        """Choose ``expire_on_commit``; commit some rows to start from.

        ``commit_at_the_end``: the teardown commits what is open (so every
        earlier savepoint rollback must have dropped its work), else it closes
        the session (so everything open must be dropped).
        """
        self.session.expire_on_commit = expire_on_commit
        self.commit_at_the_end = commit_at_the_end
        for name, size in committed:
            self.add(0, name, size)
        self.commit()

    # -- helpers ------------------------------------------------------------------

    @property
    def depth(self) -> int:
        return len(self.savepoints)

    def with_status(self, *statuses: str) -> list[Obj]:
        return [o for o in self.objs if o.status in statuses]

    def free_keys(self) -> list[int]:
        # A deleted (or marked) object's key is free: reusing it in the same
        # flush is a row switch.
        taken = {o.pk for o in self.with_status("pending", "persistent")}
        return [pk for pk in KEYS if pk not in taken]

    def plan(self) -> Plan:
        deletes = sorted(self.with_status("marked"), key=lambda o: o.pk)
        saves: list[tuple[Obj, bool, frozenset[str] | None]] = [
            (o, True, None) for o in self.with_status("pending")
        ]
        # A new object's changes are empty; an UPDATE's pair each changed
        # column's loaded value (unknown if it was expired when set) with the
        # value written.
        changes: dict[int, dict[str, tuple[Any, Any]]] = {
            id(o.item): {} for o, _, _ in saves
        }
        for o in self.with_status("persistent"):
            row = self.rows[o.pk]
            changed = o.changed(row)
            if changed:
                saves.append((o, False, changed))
                changes[id(o.item)] = {
                    key: (tocsin_sa.UNKNOWN if key in o.forced else row[key], value)
                    for key, value in o.values.items()
                    if key in changed
                }
        return Plan(deletes, saves, changes)

    def check_flush(self, plan: Plan, sent: list[Sent]) -> None:
        """The signals of one flush: docs/model-signals.md, "Order and timing"."""
        nd, ns = len(plan.deletes), len(plan.saves)
        expected: list[tuple[Any, ...]] = []
        expected += [("pre_delete", o.item, None, None) for o in plan.deletes]
        saves = sorted(plan.saves, key=lambda s: (s[0].pk, id(s[0].item)))
        expected += [
            ("pre_save", o.item, None, None if f is None else sorted(f))
            for o, _, f in saves
        ]
        expected += [
            ("post_delete", o.item, None, None) for o in reversed(plan.deletes)
        ]
        expected += [
            ("post_save", o.item, c, None if f is None else sorted(f))
            for o, c, f in saves
        ]
        # pre_save order is not documented; post_save follows it (checked below).
        canonical = (
            sent[:nd]
            + _sorted(sent[nd : nd + ns])
            + sent[nd + ns : 2 * nd + ns]
            + _sorted(sent[2 * nd + ns :])
        )
        assert [s.describe() for s in canonical] == expected, (
            f"the flush sent {[s.describe() for s in sent]}"
        )
        pre_saves = sent[nd : nd + ns]
        post_saves = sent[2 * nd + ns :]
        assert [s.instance for s in post_saves] == [s.instance for s in pre_saves], (
            "post_save must follow the order of pre_save"
        )
        for s in sent:
            assert s.sender is Item
            assert s.kwargs["session"] is self.session
            assert s.kwargs["using"] == "default"
            if s.signal.endswith("_save"):
                assert s.kwargs["raw"] is False
                assert dict(s.kwargs["changes"]) == plan.changes[id(s.instance)], (
                    f"{s.signal} of {s.instance} carried {s.kwargs['changes']}"
                )
            else:
                assert s.kwargs["origin"] is s.instance

    def apply_flush(self, plan: Plan, sent: list[Sent]) -> None:
        for o in plan.deletes:
            o.status = "deleted"
            o.deleted_at = self.depth
            del self.rows[o.pk]
        for o, created, _ in plan.saves:
            if created:
                o.status = "persistent"
                o.inserted_at = self.depth
            self.rows[o.pk] = dict(o.values)
        for o in self.objs:
            o.touched.clear()
            o.forced.clear()
        self.queues[-1].extend(s for s in sent if s.signal.startswith("post_"))

    def flushing(self, operation: Any) -> None:
        """Run an operation that flushes first, and check that flush."""
        plan = self.plan()
        operation()
        sent = self.journal.take()
        self.check_flush(plan, sent)
        self.apply_flush(plan, sent)

    def assert_clean(self) -> None:
        session = self.session
        assert not session.new, f"left pending: {session.new}"
        assert not session.dirty, f"left dirty: {session.dirty}"
        assert not session.deleted, f"left deleted: {session.deleted}"

    def revert(self, rows: dict[int, Row], depth: int) -> None:
        """A rollback to ``rows``, undoing what was flushed at ``depth`` or deeper."""
        kept = []
        for o in self.objs:
            if o.status == "pending" or (
                o.inserted_at is not None and o.inserted_at >= depth
            ):
                continue  # now transient
            if o.status == "marked" or (
                o.deleted_at is not None and o.deleted_at >= depth
            ):
                o.status = "persistent"
                o.deleted_at = None
            if o.status == "persistent":
                o.values = dict(rows[o.pk])
            o.touched.clear()
            o.forced.clear()
            kept.append(o)
        self.objs = kept
        self.rows = {pk: dict(row) for pk, row in rows.items()}

    def read_committed(self) -> dict[int, Row]:
        with self.reader.connect() as connection:
            result = connection.execute(select(Item.__table__))
            return {row.id: {"name": row.name, "size": row.size} for row in result}

    # -- the steps ------------------------------------------------------------------

    @rule(step=steps)
    def run(self, step: Step) -> None:
        """Run one step; a step that cannot apply to this state does nothing."""
        match step:
            case Add(pick, name, size):
                if self.free_keys():
                    self.add(pick, name, size)
            case SetAttribute(pick, attribute, value, load_first):
                if self.with_status("pending", "persistent"):
                    self.assign(pick, attribute, value, load_first)
            case Expire(pick):
                if self.with_status("persistent"):
                    self.expire(pick)
            case Delete(pick):
                if self.with_status("persistent"):
                    self.delete(pick)
            case Flush():
                self.flush()
            case BeginNested():
                if self.depth < MAX_SAVEPOINTS:
                    self.begin_nested()
            case EndSavepoint(release, flush_first):
                if self.depth:
                    if flush_first:
                        self.flush()
                    if release:
                        self.release_savepoint()
                    else:
                        self.rollback_savepoint()
            case EndTransaction(commit):
                if commit:
                    self.commit()
                else:
                    self.rollback()
            case _:
                raise AssertionError(step)

    def add(self, pick: int, name: str, size: int) -> None:
        free = self.free_keys()
        pk = free[pick % len(free)]
        item = Item(id=pk, name=name, size=size)
        self.session.add(item)
        self.objs.append(Obj(item, pk, {"name": name, "size": size}, "pending"))
        assert self.journal.take() == []

    def assign(self, pick: int, attribute: str, value: Any, load_first: bool) -> None:
        """Set an attribute; ``None``: to the value it holds (or would load)."""
        candidates = self.with_status("pending", "persistent")
        o = candidates[pick % len(candidates)]
        if load_first:
            getattr(o.item, attribute)  # loads it if it was expired
        # docs/model-signals.md, difference 4: setting an expired attribute is
        # a write even to the same value; SQLAlchemy says what is expired.
        expired = attribute in inspect(o.item).unloaded
        if value is None:
            value = o.values[attribute]
        setattr(o.item, attribute, value)
        o.values[attribute] = value
        if o.status == "persistent":
            o.touched.add(attribute)
            if expired:
                o.forced.add(attribute)
        assert self.journal.take() == []

    def expire(self, pick: int) -> None:
        candidates = self.with_status("persistent")
        o = candidates[pick % len(candidates)]
        self.session.expire(o.item)  # discards its unflushed changes
        o.values = dict(self.rows[o.pk])
        o.touched.clear()
        o.forced.clear()

    def delete(self, pick: int) -> None:
        candidates = self.with_status("persistent")
        o = candidates[pick % len(candidates)]
        self.session.delete(o.item)
        o.status = "marked"
        assert self.journal.take() == []

    def flush(self) -> None:
        self.flushing(self.session.flush)
        self.assert_clean()

    def commit(self) -> None:
        commits_before = self.journal.commits
        runs_before = len(self.journal.ran)
        # commit() flushes inside the innermost savepoint, releases every
        # savepoint, then commits the outermost transaction.
        self.flushing(self.session.commit)
        self.assert_clean()
        committed = [s for queue in self.queues for s in queue]
        expected = [s for s in committed if s.signal == "post_save"]
        ran = self.journal.ran[runs_before:]
        assert [(r.instance, r.created, r.update_fields) for r in ran] == [
            (s.instance, s.created, s.update_fields) for s in expected
        ], "the on_commit receiver must run once per committed post_save, in order"
        for r, s in zip(ran, expected, strict=True):
            same_send = {
                k: v
                for k, v in s.kwargs.items()
                if k not in ("created", "update_fields")
            }
            assert r.kwargs == {**same_send, "sender": Item, "signal": post_save}
            assert r.commits > commits_before, "ran before the COMMIT"
            assert not r.in_transaction
        self.expected_runs += expected
        for s in committed:
            if s.signal == "post_delete":
                del self.replayed[s.pk]
            elif s.created:
                self.replayed[s.pk] = dict(s.values)
            else:
                assert s.update_fields is not None
                for key in s.update_fields:
                    self.replayed[s.pk][key] = s.values[key]
        self.objs = [o for o in self.objs if o.status != "deleted"]
        for o in self.objs:
            o.inserted_at = o.deleted_at = None
        self.committed = {pk: dict(row) for pk, row in self.rows.items()}
        self.savepoints.clear()
        self.snapshots.clear()
        self.queues = [[]]
        assert self.read_committed() == self.committed == self.replayed

    def rollback(self) -> None:
        self.session.rollback()
        assert self.journal.take() == []
        self.revert(self.committed, 0)
        self.savepoints.clear()
        self.snapshots.clear()
        self.queues = [[]]

    def begin_nested(self) -> None:
        # begin_nested() flushes before the SAVEPOINT: that work belongs to the
        # enclosing transaction.
        savepoints: list[SessionTransaction] = []
        self.flushing(lambda: savepoints.append(self.session.begin_nested()))
        self.assert_clean()
        self.savepoints += savepoints
        self.snapshots.append({pk: dict(row) for pk, row in self.rows.items()})
        self.queues.append([])

    def release_savepoint(self) -> None:
        depth = self.depth
        self.flushing(self.savepoints[-1].commit)
        self.assert_clean()
        self.savepoints.pop()
        self.snapshots.pop()
        released = self.queues.pop()
        self.queues[-1] += released
        for o in self.objs:
            if o.inserted_at is not None and o.inserted_at >= depth:
                o.inserted_at = depth - 1
            if o.deleted_at is not None and o.deleted_at >= depth:
                o.deleted_at = depth - 1

    def rollback_savepoint(self) -> None:
        depth = self.depth
        self.savepoints.pop().rollback()
        assert self.journal.take() == []
        self.revert(self.snapshots.pop(), depth)
        self.queues.pop()

    # -- invariants -----------------------------------------------------------------

    @invariant()
    def no_signal_outside_the_rules_checks(self) -> None:
        assert self.journal.sent == []

    @invariant()
    def on_commit_receivers_ran_only_for_committed_saves(self) -> None:
        assert [r.instance for r in self.journal.ran] == [
            s.instance for s in self.expected_runs
        ]

    @invariant()
    def the_session_holds_what_the_model_holds(self) -> None:
        session = self.session
        assert session.get_nested_transaction() is (
            self.savepoints[-1] if self.savepoints else None
        )
        assert set(map(id, session.new)) == {
            id(o.item) for o in self.with_status("pending")
        }
        assert set(map(id, session.deleted)) == {
            id(o.item) for o in self.with_status("marked")
        }
        for o in self.objs:
            state = inspect(o.item)
            assert state.pending == (o.status == "pending"), o
            assert state.persistent == (o.status in ("persistent", "marked")), o
            assert state.deleted == (o.status == "deleted"), o
            if o.status != "deleted":
                loaded = {k: state.dict[k] for k in COLUMNS if k in state.dict}
                assert loaded == {k: o.values[k] for k in loaded}, o

    @invariant()
    def the_database_holds_the_model_rows(self) -> None:
        assert self.read_committed() == self.committed
        if self.session.in_transaction():
            result = self.session.execute(select(Item.__table__))
            rows = {row.id: {"name": row.name, "size": row.size} for row in result}
            assert rows == self.rows

    def teardown(self) -> None:
        ran = len(self.journal.ran)
        try:
            if sys.exc_info()[0] is not None:
                return  # a step failed: that is the error to report
            if self.commit_at_the_end:
                self.commit()
                ran = len(self.journal.ran)
            self.session.close()  # rolls back: nothing may run, nothing is sent
        finally:
            self.session.close()
            self.journal.session = None
        assert len(self.journal.ran) == ran
        assert self.journal.sent == []
        assert self.read_committed() == self.committed == self.replayed


# -- the tests ----------------------------------------------------------------------


def _sqlite_with_savepoints(url: str) -> Engine:
    # SQLAlchemy's recipe (docs/transactions.md): pysqlite before Python 3.12
    # commits at SAVEPOINT unless it leaves transactions to us.
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _no_pysqlite_transactions(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine


@pytest.fixture(scope="module")
def installed() -> Iterator[None]:
    """This module's model sends model signals while its tests run."""
    installation = tocsin_sa.install(Base)
    yield
    installation.uninstall()


@pytest.fixture(params=["sqlite", "postgresql"])
def harness(
    request: pytest.FixtureRequest, tmp_path: Any, installed: None
) -> Iterator[Harness]:
    """Engines on an empty table, and the receivers connected to the model signals."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'flush_sequences.db'}"
        engine = _sqlite_with_savepoints(url)
        reader = create_engine(url)
    else:
        url = request.getfixturevalue("postgres_url")
        # A session left open by a failure must not hang the DROP TABLE.
        options = {"options": "-c lock_timeout=10000"}
        engine = create_engine(url, connect_args=options)
        reader = create_engine(url, connect_args=options)
    journal = Journal()
    event.listen(engine, "commit", journal.count_commit)
    try:
        Base.metadata.drop_all(engine)
        Base.metadata.create_all(engine)
        with (
            connected_to(journal.on_signal, pre_save),
            connected_to(journal.on_signal, post_save),
            connected_to(journal.on_signal, pre_delete),
            connected_to(journal.on_signal, post_delete),
            connected_to(journal.on_commit, post_save, on_commit=True),
        ):
            yield Harness(engine, reader, journal)
    finally:
        reader.dispose()
        Base.metadata.drop_all(engine)
        engine.dispose()


def test_flush_sequences_send_the_documented_signals_and_on_commit_runs(
    harness: Harness,
) -> None:
    class Machine(FlushSequences):
        pass

    Machine.harness = harness
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=45,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
