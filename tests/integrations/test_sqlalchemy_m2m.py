"""m2m_changed from many-to-many relationships, on both sides."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.signals import m2m_changed
from tocsin.testing import connected_to


@pytest.fixture
def people(engine: Engine, models: Any) -> Any:
    """A session with a user (pk 1) and three tags (pks 1, 2, 3)."""
    with Session(engine) as session:
        user = models.User(name="u")
        tags = [models.Tag(name=f"t{i}") for i in (1, 2, 3)]
        session.add_all([user, *tags])
        session.commit()
        yield session, user, tags


def _m2m(recorded: Any) -> list[tuple[Any, ...]]:
    return [row[2:] for row in recorded.trace("m2m_changed")]


def test_add_sends_one_pre_add_post_add_pair_with_the_new_pks(
    people: Any, models: Any, recorded: Any
) -> None:
    session, user, (t1, t2, _t3) = people
    user.tags.add(t1)
    user.tags.add(t2)
    recorded.clear()
    session.commit()
    assert _m2m(recorded) == [
        ("pre_add", user, False, "Tag", {1, 2}),
        ("post_add", user, False, "Tag", {1, 2}),
    ]
    sent = recorded.trace("m2m_changed")
    assert {row[1] for row in sent} == {"user_tags"}
    assert recorded.trace("pre_save", "post_save") == []  # the owner is not saved
    kwargs = recorded.sent[0].kwargs
    assert kwargs["using"] == "default"
    assert kwargs["session"] is session


def test_the_sender_is_the_association_table(people: Any, models: Any) -> None:
    session, user, (t1, _t2, _t3) = people
    senders = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        senders.append(sender)

    with connected_to(receiver, m2m_changed, sender=models.user_tags):
        user.tags.add(t1)
        session.commit()
    assert senders == [models.user_tags, models.user_tags]


def test_pre_add_runs_before_the_rows_exist_and_post_add_after(
    people: Any, models: Any
) -> None:
    session, user, (t1, _t2, _t3) = people
    counts = []

    def count(sender: Any, action: str, session: Session, **kwargs: Any) -> None:
        rows = session.scalar(select(func.count()).select_from(models.user_tags))
        counts.append((action, rows))

    with connected_to(count, m2m_changed, sender=models.user_tags):
        user.tags.add(t1)
        session.commit()
    assert counts == [("pre_add", 0), ("post_add", 1)]


def test_remove_from_the_reverse_side_is_reverse_with_the_other_model(
    people: Any, models: Any, recorded: Any
) -> None:
    session, user, (t1, t2, _t3) = people
    user.tags.update({t1, t2})
    session.commit()
    recorded.clear()
    t1.users.remove(user)
    session.commit()
    assert _m2m(recorded) == [
        ("pre_remove", t1, True, "User", {1}),
        ("post_remove", t1, True, "User", {1}),
    ]


def test_add_from_the_reverse_side(people: Any, models: Any, recorded: Any) -> None:
    session, user, (t1, _t2, _t3) = people
    t1.users.add(user)
    recorded.clear()
    session.commit()
    assert _m2m(recorded) == [
        ("pre_add", t1, True, "User", {1}),
        ("post_add", t1, True, "User", {1}),
    ]


def test_replacing_the_collection_is_remove_then_add(
    people: Any, models: Any, recorded: Any
) -> None:
    session, user, (t1, t2, t3) = people
    user.tags = {t1, t2}
    session.commit()
    recorded.clear()
    user.tags = {t2, t3}
    session.commit()
    # Documented difference: one flush writes both, so both pre_* actions
    # come before both post_* actions (Django: pre/post remove, pre/post add).
    assert _m2m(recorded) == [
        ("pre_remove", user, False, "Tag", {1}),
        ("pre_add", user, False, "Tag", {3}),
        ("post_remove", user, False, "Tag", {1}),
        ("post_add", user, False, "Tag", {3}),
    ]


def test_clear_sends_clear_actions_without_pks(
    people: Any, models: Any, recorded: Any
) -> None:
    session, user, (t1, t2, _t3) = people
    user.tags = {t1, t2}
    session.commit()
    recorded.clear()
    user.tags.clear()
    session.commit()
    assert _m2m(recorded) == [
        ("pre_clear", user, False, "Tag", None),
        ("post_clear", user, False, "Tag", None),
    ]
    assert session.scalar(select(func.count()).select_from(models.user_tags)) == 0


def test_removing_the_last_item_is_a_remove_not_a_clear(
    people: Any, models: Any, recorded: Any
) -> None:
    session, user, (t1, _t2, _t3) = people
    user.tags.add(t1)
    session.commit()
    recorded.clear()
    user.tags.remove(t1)
    session.commit()
    assert _m2m(recorded) == [
        ("pre_remove", user, False, "Tag", {1}),
        ("post_remove", user, False, "Tag", {1}),
    ]


def test_adding_a_pending_object_reports_its_real_pk_after_its_insert(
    people: Any, models: Any, recorded: Any
) -> None:
    session, user, _tags = people
    new_tag = models.Tag(name="new")
    user.tags.add(new_tag)
    recorded.clear()
    session.commit()
    # pre_add waits for the INSERT that gives new_tag its primary key.
    assert recorded.trace("post_save", "m2m_changed") == [
        ("post_save", "Tag", new_tag, True, None),
        ("m2m_changed", "user_tags", "pre_add", user, False, "Tag", {4}),
        ("m2m_changed", "user_tags", "post_add", user, False, "Tag", {4}),
    ]


def test_add_then_remove_before_the_flush_sends_nothing(
    people: Any, models: Any, recorded: Any
) -> None:
    session, user, (t1, _t2, _t3) = people
    user.tags.add(t1)
    user.tags.discard(t1)
    pending = models.Tag(name="never")
    user.tags.add(pending)
    user.tags.discard(pending)
    recorded.clear()
    session.commit()
    assert _m2m(recorded) == []


def test_deleting_an_object_with_m2m_rows_sends_no_m2m_changed(
    people: Any, models: Any, recorded: Any
) -> None:
    session, user, (t1, t2, _t3) = people
    user.tags = {t1, t2}
    session.commit()
    recorded.clear()
    session.delete(user)
    session.commit()
    assert _m2m(recorded) == []
    assert session.scalar(select(func.count()).select_from(models.user_tags)) == 0


def test_an_association_class_is_the_sender(
    engine: Engine, models: Any, recorded: Any
) -> None:
    with Session(engine) as session:
        team, user = models.Team(), models.User(name="u")
        session.add_all([team, user])
        session.commit()
        team.members.add(user)
        recorded.clear()
        session.commit()
        assert [(s.sender, s.kwargs["action"]) for s in recorded.sent] == [
            (models.Membership, "pre_add"),
            (models.Membership, "post_add"),
        ]


def test_no_listener_records_nothing_for_m2m(people: Any, models: Any) -> None:
    from tocsin.integrations import sqlalchemy as tocsin_sa

    session, user, (t1, _t2, _t3) = people
    user.tags.add(t1)
    assert len(tocsin_sa._m2m.log) == 0
    session.commit()
