"""``changes``: the previous values that pre_save and post_save carry (SQLite, PostgreSQL).

The state machine of test_sqlalchemy_flush_sequences checks ``changes`` against
a reference model over random sequences of sets, expiries, flushes,
savepoints and commits; these tests pin down each documented case.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.integrations.sqlalchemy import UNKNOWN
from tocsin.signals import post_delete, post_save, pre_save
from tocsin.testing import connected_to


def _changes(recorded: Any) -> list[tuple[str, dict[str, tuple[Any, Any]]]]:
    return [
        (item.signal.name, dict(item.kwargs["changes"]))
        for item in recorded.sent
        if item.signal.name in ("pre_save", "post_save")
    ]


def test_an_update_carries_the_old_and_new_value_of_each_changed_column(
    engine: Engine, models: Any, recorded: Any
) -> None:
    with Session(engine, expire_on_commit=False) as session:
        user = models.User(name="ada", email="old@x")
        session.add(user)
        session.commit()
        user.email = "new@x"
        recorded.clear()
        session.commit()
    expected = {"email": ("old@x", "new@x")}
    assert _changes(recorded) == [("pre_save", expected), ("post_save", expected)]
    assert recorded.sent[0].kwargs["update_fields"] == frozenset(expected)


def test_a_new_object_carries_no_changes(
    engine: Engine, models: Any, recorded: Any
) -> None:
    with Session(engine, expire_on_commit=False) as session:
        session.add(models.User(name="ada", email="a@x"))
        session.commit()
    assert _changes(recorded) == [("pre_save", {}), ("post_save", {})]
    (pre_save_sent,) = [s for s in recorded.sent if s.signal is pre_save]
    with pytest.raises(TypeError):  # one mapping, shared by the receivers: read-only
        pre_save_sent.kwargs["changes"]["name"] = (None, "ada")


@pytest.mark.parametrize(
    ("old", "new"),
    [("a@x", "b@x"), (None, "b@x"), ("a@x", None), ("a@x", "A@x")],
)
def test_changes_pair_any_old_and_new_value_including_null(
    engine: Engine, models: Any, recorded: Any, old: Any, new: Any
) -> None:
    with Session(engine, expire_on_commit=False) as session:
        user = models.User(name="ada", email=old)
        session.add(user)
        session.commit()
        user.email = new
        user.name = "ada"  # the same value: not a change
        recorded.clear()
        session.commit()
    assert _changes(recorded) == [
        ("pre_save", {"email": (old, new)}),
        ("post_save", {"email": (old, new)}),
    ]


def test_an_attribute_set_while_expired_has_an_unknown_old_value(
    engine: Engine, models: Any, recorded: Any
) -> None:
    with Session(engine) as session:
        user = models.User(name="ada", email="a@x")
        session.add(user)
        session.commit()  # expires every attribute
        user.email = "b@x"  # not loaded first: SQLAlchemy never knew "a@x"
        recorded.clear()
        session.commit()
    assert _changes(recorded) == [
        ("pre_save", {"email": (UNKNOWN, "b@x")}),
        ("post_save", {"email": (UNKNOWN, "b@x")}),
    ]
    assert repr(UNKNOWN) == "UNKNOWN"


def test_a_changed_many_to_one_carries_its_foreign_key_values(
    engine: Engine, models: Any, recorded: Any
) -> None:
    with Session(engine, expire_on_commit=False) as session:
        first, second = models.User(name="a"), models.User(name="b")
        post = models.Post(user=first)
        session.add_all([first, second, post])
        session.commit()
        assert (first.id, second.id) == (1, 2)
        post.user = second
        recorded.clear()
        session.commit()
        late = models.User(name="c")  # no primary key until it is inserted
        post.user = late
        session.flush()
        post_changes = [c for c in _changes(recorded) if c[1]]
    assert post_changes == [
        ("pre_save", {"user_id": (1, 2)}),
        ("post_save", {"user_id": (1, 2)}),
        ("pre_save", {"user_id": (2, UNKNOWN)}),
        ("post_save", {"user_id": (2, 3)}),
    ]


def test_post_save_reports_what_pre_save_receivers_changed_in_update_fields(
    engine: Engine, models: Any
) -> None:
    def lower_email(sender: Any, instance: Any, **kwargs: Any) -> None:
        instance.email = instance.email.lower()

    seen: list[Any] = []

    def remember(sender: Any, changes: Any, **kwargs: Any) -> None:
        seen.append(dict(changes))

    with Session(engine, expire_on_commit=False) as session:
        user = models.User(name="ada", email="a@x")
        session.add(user)
        session.commit()
        with (
            connected_to(lower_email, pre_save, sender=models.User),
            connected_to(remember, post_save, sender=models.User),
        ):
            user.email = "NEW@X"
            session.commit()
    assert seen == [{"email": ("a@x", "new@x")}]  # the value written


def test_old_values_are_read_only_for_a_model_with_a_save_receiver(
    engine: Engine, models: Any
) -> None:
    # No pre_save or post_save receiver for User (only post_delete): its
    # update records no old values, so the flush pays nothing for changes.
    records: list[Any] = []

    def peek(session: Session, flush_context: Any) -> None:
        records.append(flush_context.attributes.get("tocsin.flush"))

    def nothing(sender: Any, **kwargs: Any) -> None:
        pass

    event.listen(Session, "after_flush", peek)
    try:
        with Session(engine, expire_on_commit=False) as session:
            user = models.User(name="a", email="a@x")
            session.add(user)
            session.commit()
            with connected_to(nothing, post_delete, sender=models.User):
                user.email = "b@x"
                session.commit()
            with connected_to(nothing, post_save, sender=models.User):
                user.email = "c@x"
                session.commit()
    finally:
        event.remove(Session, "after_flush", peek)
    without, with_receiver = (
        next(iter(record.saves.values())) for record in records[1:]
    )
    assert without[2] == with_receiver[2] == frozenset({"email"})
    assert without[4] is None
    assert with_receiver[4] == {"email": "b@x"}
