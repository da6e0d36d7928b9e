"""pre_delete / post_delete: cascades, orphans, row switches, SET NULL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.signals import post_delete, pre_delete
from tocsin.testing import connected_to


def _user_with_posts(session: Session, models: Any) -> Any:
    user = models.User(name="u")
    user.posts = [
        models.Post(title="p1", comments=[models.Comment()]),
        models.Post(title="p2"),
    ]
    session.add(user)
    session.commit()
    return user


def test_cascade_sends_every_pre_delete_first_then_post_delete_in_django_order(
    engine: Engine, models: Any, recorded: Any
) -> None:
    with Session(engine) as session:
        _user_with_posts(session, models)
    with Session(engine) as session:
        user = session.get(models.User, 1)
        session.delete(user)
        post1, post2 = session.get(models.Post, 1), session.get(models.Post, 2)
        comment = session.get(models.Comment, 1)
        recorded.clear()
        session.commit()
        # As Django: dependents first, primary keys ascending, then the
        # post_delete signals model by model with primary keys descending.
        assert recorded.trace("pre_delete", "post_delete") == [
            ("pre_delete", "Comment", comment, user),
            ("pre_delete", "Post", post1, user),
            ("pre_delete", "Post", post2, user),
            ("pre_delete", "User", user, user),
            ("post_delete", "Comment", comment, user),
            ("post_delete", "Post", post2, user),
            ("post_delete", "Post", post1, user),
            ("post_delete", "User", user, user),
        ]
        assert recorded.sent[0].kwargs["using"] == "default"
        assert recorded.sent[0].kwargs["session"] is session


def test_pre_delete_runs_while_the_rows_exist_and_post_delete_after(
    engine: Engine, models: Any
) -> None:
    counts = []

    def count(sender: Any, signal: Any, session: Session, **kwargs: Any) -> None:
        total = session.scalar(select(func.count(models.Post.id)))
        counts.append((signal.name, total))

    with Session(engine) as session:
        user = _user_with_posts(session, models)
        with (
            connected_to(count, pre_delete, sender=models.User),
            connected_to(count, post_delete, sender=models.User),
        ):
            session.delete(user)
            session.commit()
    assert counts == [("pre_delete", 2), ("post_delete", 0)]


def test_a_delete_orphan_sends_pre_delete_with_its_grandchildren_and_no_save(
    engine: Engine, models: Any, recorded: Any
) -> None:
    with Session(engine) as session:
        user = _user_with_posts(session, models)
        post1 = user.posts[0]
        comment = post1.comments[0]
        user.posts.remove(post1)
        recorded.clear()
        session.commit()
        assert recorded.trace("pre_delete", "post_delete", "pre_save", "post_save") == [
            ("pre_delete", "Comment", comment, post1),
            ("pre_delete", "Post", post1, post1),
            ("post_delete", "Comment", comment, post1),
            ("post_delete", "Post", post1, post1),
        ]
        assert session.scalar(select(func.count(models.Comment.id))) == 0


def test_moving_a_child_to_another_parent_is_a_save_not_an_orphan_delete(
    engine: Engine, models: Any, recorded: Any
) -> None:
    with Session(engine) as session:
        user = _user_with_posts(session, models)
        other = models.User(name="other")
        session.add(other)
        session.flush()
        post = user.posts[0]
        other.posts.append(post)
        recorded.clear()
        session.commit()
        assert recorded.trace("pre_delete", "post_delete") == []
        assert ("post_save", "Post", post, False, frozenset({"user_id"})) in (
            recorded.trace("post_save")
        )


def test_a_row_switch_reads_as_a_delete_then_a_creation(
    engine: Engine, models: Any, recorded: Any
) -> None:
    with Session(engine) as session:
        session.add(models.Tag(id=1, name="old"))
        session.commit()
        old = session.get(models.Tag, 1)
        session.delete(old)
        new = models.Tag(id=1, name="new")
        session.add(new)
        recorded.clear()
        session.commit()
        assert recorded.trace("pre_delete", "post_delete", "pre_save", "post_save") == [
            ("pre_delete", "Tag", old, old),
            ("pre_save", "Tag", new, None, None),
            ("post_delete", "Tag", old, old),
            ("post_save", "Tag", new, True, None),
        ]
        assert session.scalars(select(models.Tag.name)).all() == ["new"]


def test_set_null_children_get_no_save_signals(
    engine: Engine, models: Any, recorded: Any
) -> None:
    with Session(engine) as session:
        user = models.User(name="u", audits=[models.Audit(), models.Audit()])
        session.add(user)
        session.commit()
        audits = list(user.audits)
        session.delete(user)
        recorded.clear()
        session.commit()
        assert recorded.trace("pre_delete", "post_delete", "pre_save", "post_save") == [
            ("pre_delete", "User", user, user),
            ("post_delete", "User", user, user),
        ]
        assert [a.user_id for a in audits] == [None, None]


def test_an_exception_in_pre_delete_keeps_the_row(engine: Engine, models: Any) -> None:
    def protect(sender: Any, instance: Any, **kwargs: Any) -> None:
        raise PermissionError(f"{instance!r} is protected")

    with Session(engine) as session:
        session.add(models.Tag(name="keep"))
        session.commit()
        with connected_to(protect, pre_delete, sender=models.Tag):
            session.delete(session.get(models.Tag, 1))
            with pytest.raises(PermissionError, match="protected"):
                session.commit()
        session.rollback()
        assert session.scalars(select(models.Tag.name)).all() == ["keep"]


def test_an_exception_in_post_delete_rolls_the_delete_back(
    engine: Engine, models: Any
) -> None:
    def fail(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("post_delete failed")

    with Session(engine) as session:
        session.add(models.Tag(name="keep"))
        session.commit()
        with connected_to(fail, post_delete, sender=models.Tag):
            session.delete(session.get(models.Tag, 1))
            with pytest.raises(RuntimeError, match="post_delete failed"):
                session.commit()
        session.rollback()
        assert session.scalars(select(models.Tag.name)).all() == ["keep"]


def test_a_pre_delete_receiver_can_delete_more_objects(
    engine: Engine, models: Any, recorded: Any
) -> None:
    def also_delete_tags(
        sender: Any, instance: Any, session: Session, **kwargs: Any
    ) -> None:
        for tag in session.scalars(select(models.Tag)):
            session.delete(tag)

    with Session(engine) as session:
        session.add_all([models.User(name="u"), models.Tag(), models.Tag()])
        session.commit()
        with connected_to(also_delete_tags, pre_delete, sender=models.User):
            session.delete(session.get(models.User, 1))
            session.commit()
        assert sorted(row[1] for row in recorded.trace("post_delete")) == [
            "Tag",
            "Tag",
            "User",
        ]
        assert session.scalar(select(func.count(models.Tag.id))) == 0
