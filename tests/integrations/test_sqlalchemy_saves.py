"""pre_save / post_save from SQLAlchemy flushes (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.integrations.sqlalchemy import ReceiverLoopError
from tocsin.signals import post_save, pre_save
from tocsin.testing import connected_to


def test_add_and_commit_sends_pre_save_then_post_save_with_created(
    engine: Engine, models: Any, recorded: Any
) -> None:
    with Session(engine) as session:
        user = models.User(name="a")
        session.add(user)
        recorded.clear()
        session.commit()
        assert recorded.trace("pre_save", "post_save") == [
            ("pre_save", "User", user, None, None),
            ("post_save", "User", user, True, None),
        ]
        pre, post = recorded.sent
        assert pre.kwargs["raw"] is False
        assert post.kwargs["raw"] is False
        assert pre.kwargs["using"] == post.kwargs["using"] == "default"
        assert pre.kwargs["session"] is session
        assert post.kwargs["session"] is session


def test_post_save_sees_the_primary_key_and_runs_inside_the_transaction(
    engine: Engine, models: Any
) -> None:
    seen = []

    def receiver(sender: Any, instance: Any, session: Session, **kwargs: Any) -> None:
        seen.append((instance.id, session.in_transaction()))
        count = session.scalar(select(func.count()).select_from(models.User))
        seen.append(count)

    with connected_to(receiver, post_save, sender=models.User), Session(engine) as s:
        s.add(models.User(name="a"))
        s.commit()
    assert seen == [(1, True), 1]


def test_changing_a_loaded_attribute_sends_one_pair_with_the_changed_columns(
    engine: Engine, models: Any, recorded: Any
) -> None:
    with Session(engine) as session:
        user = models.User(name="a")
        session.add(user)
        session.commit()
        user.name = "b"
        user.email = "b@example.org"
        recorded.clear()
        session.commit()
        assert recorded.trace("pre_save", "post_save") == [
            ("pre_save", "User", user, None, frozenset({"name", "email"})),
            ("post_save", "User", user, False, frozenset({"name", "email"})),
        ]


def test_setting_a_loaded_attribute_to_the_same_value_sends_nothing(
    engine: Engine, models: Any, recorded: Any
) -> None:
    with Session(engine) as session:
        user = models.User(name="a")
        session.add(user)
        session.flush()
        recorded.clear()
        user.name = "a"
        session.commit()
        assert recorded.trace("pre_save", "post_save") == []


def test_setting_an_expired_attribute_to_the_same_value_is_an_update(
    engine: Engine, models: Any, recorded: Any
) -> None:
    # SQLAlchemy cannot compare with a value it has not loaded, so it writes.
    with Session(engine) as session:
        user = models.User(name="a")
        session.add(user)
        session.commit()
        session.expire(user, ["name"])
        recorded.clear()
        user.name = "a"
        session.commit()
        assert recorded.trace("pre_save", "post_save") == [
            ("pre_save", "User", user, None, frozenset({"name"})),
            ("post_save", "User", user, False, frozenset({"name"})),
        ]


def test_changing_a_many_to_one_reports_its_foreign_key_column(
    engine: Engine, models: Any, recorded: Any
) -> None:
    with Session(engine) as session:
        first, second = models.User(name="a"), models.User(name="b")
        post = models.Post(user=first)
        session.add_all([first, second, post])
        session.commit()
        recorded.clear()
        post.user = second
        session.commit()
        assert ("post_save", "Post", post, False, frozenset({"user_id"})) in (
            recorded.trace("post_save")
        )


def test_post_save_receiver_adding_a_profile_commits_both_in_one_transaction(
    engine: Engine, models: Any
) -> None:
    def create_profile(
        sender: Any, instance: Any, created: bool, session: Session, **kwargs: Any
    ) -> None:
        if created:
            session.add(models.Profile(user=instance))

    with connected_to(create_profile, post_save, sender=models.User):
        with Session(engine) as session:
            session.add(models.User(name="a"))
            session.commit()
        with Session(engine) as session:
            session.add(models.User(name="rolled back"))
            session.flush()
            assert session.scalar(select(func.count(models.Profile.id))) == 2
            session.rollback()
    with Session(engine) as session:
        profiles = session.scalars(select(models.Profile)).all()
        assert [(p.user.name, p.user_id) for p in profiles] == [("a", 1)]


def test_a_plain_flush_leaves_nothing_pending_from_receivers(
    engine: Engine, models: Any
) -> None:
    def create_profile(
        sender: Any, instance: Any, created: bool, session: Session, **kwargs: Any
    ) -> None:
        if created:
            session.add(models.Profile(user=instance))

    with (
        connected_to(create_profile, post_save, sender=models.User),
        Session(engine) as session,
    ):
        user = models.User(name="a")
        session.add(user)
        session.flush()
        assert not session.new
        assert not session.dirty
        assert user.profile is not None
        assert user.profile.id is not None


def test_post_save_receiver_modifying_the_instance_sends_a_second_pair(
    engine: Engine, models: Any, recorded: Any
) -> None:
    def add_email(sender: Any, instance: Any, **kwargs: Any) -> None:
        if instance.email is None:
            instance.email = f"{instance.name}@example.org"

    with (
        connected_to(add_email, post_save, sender=models.User),
        Session(engine) as session,
    ):
        user = models.User(name="a")
        session.add(user)
        session.flush()
        assert not session.dirty
        assert recorded.trace("pre_save", "post_save") == [
            ("pre_save", "User", user, None, None),
            ("post_save", "User", user, True, None),
            ("pre_save", "User", user, None, frozenset({"email"})),
            ("post_save", "User", user, False, frozenset({"email"})),
        ]
        session.commit()
    with Session(engine) as session:
        assert session.scalar(select(models.User.email)) == "a@example.org"


def test_a_receiver_changing_the_instance_every_time_ends_in_a_clear_error(
    engine: Engine, models: Any
) -> None:
    def flip(sender: Any, instance: Any, **kwargs: Any) -> None:
        instance.name = "x" if instance.name != "x" else "y"

    with (
        connected_to(flip, post_save, sender=models.User),
        Session(engine) as session,
    ):
        session.add(models.User(name="a"))
        with pytest.raises(ReceiverLoopError, match=r"post_save.*only when needed"):
            session.flush()


def test_a_pre_save_receiver_adding_objects_forever_ends_in_a_clear_error(
    engine: Engine, models: Any
) -> None:
    def breed(sender: Any, instance: Any, session: Session, **kwargs: Any) -> None:
        session.add(models.Tag(name="more"))

    with (
        connected_to(breed, pre_save, sender=models.Tag),
        Session(engine) as session,
    ):
        session.add(models.Tag())
        with pytest.raises(ReceiverLoopError, match="pre_save"):
            session.flush()


def test_pre_save_receiver_may_modify_the_instance_before_it_is_written(
    engine: Engine, models: Any
) -> None:
    def normalise(sender: Any, instance: Any, **kwargs: Any) -> None:
        instance.name = instance.name.lower()

    with (
        connected_to(normalise, pre_save, sender=models.User),
        Session(engine) as session,
    ):
        session.add(models.User(name="ALICE"))
        session.commit()
    with Session(engine) as session:
        assert session.scalar(select(models.User.name)) == "alice"


def test_pre_save_receiver_adding_an_object_gets_it_signalled_and_written(
    engine: Engine, models: Any, recorded: Any
) -> None:
    def tag_new_users(
        sender: Any, instance: Any, session: Session, **kwargs: Any
    ) -> None:
        if instance.id is None:
            session.add(models.Tag(name=f"for {instance.name}"))

    with (
        connected_to(tag_new_users, pre_save, sender=models.User),
        Session(engine) as session,
    ):
        session.add(models.User(name="a"))
        session.commit()
        assert sorted(row[1] for row in recorded.trace("post_save")) == ["Tag", "User"]
        assert session.scalar(select(models.Tag.name)) == "for a"


def test_an_exception_in_pre_save_writes_nothing_and_leaves_the_session_usable(
    engine: Engine, models: Any
) -> None:
    def refuse(sender: Any, instance: Any, **kwargs: Any) -> None:
        if instance.name == "bad":
            raise ValueError("refused")

    with (
        connected_to(refuse, pre_save, sender=models.User),
        Session(engine) as session,
    ):
        bad = models.User(name="bad")
        session.add(bad)
        with pytest.raises(ValueError, match="refused"):
            session.flush()
        assert bad.id is None
        session.expunge(bad)
        session.add(models.User(name="good"))
        session.commit()
    with Session(engine) as session:
        assert session.scalars(select(models.User.name)).all() == ["good"]


def test_an_exception_in_post_save_rolls_the_flush_back(
    engine: Engine, models: Any
) -> None:
    def fail(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("post_save failed")

    with Session(engine) as session:
        session.add(models.User(name="kept"))
        session.commit()
        with connected_to(fail, post_save, sender=models.User):
            session.add(models.User(name="lost"))
            with pytest.raises(RuntimeError, match="post_save failed"):
                session.commit()
        session.rollback()
    with Session(engine) as session:
        assert session.scalars(select(models.User.name)).all() == ["kept"]


def test_merge_of_a_new_object_is_created(
    engine: Engine, models: Any, recorded: Any
) -> None:
    with Session(engine) as session:
        merged = session.merge(models.User(name="m"))
        session.commit()
        assert recorded.trace("post_save") == [
            ("post_save", "User", merged, True, None)
        ]


def test_merge_of_a_detached_changed_object_is_an_update(
    engine: Engine, models: Any, recorded: Any
) -> None:
    with Session(engine) as session:
        session.add(models.User(id=7, name="m"))
        session.commit()
    recorded.clear()
    with Session(engine) as session:
        merged = session.merge(models.User(id=7, name="n"))
        session.commit()
        assert recorded.trace("post_save") == [
            ("post_save", "User", merged, False, frozenset({"name"}))
        ]


def test_add_then_expunge_before_flush_sends_nothing(
    engine: Engine, models: Any, recorded: Any
) -> None:
    with Session(engine) as session:
        user = models.User(name="gone")
        session.add(user)
        session.expunge(user)
        session.commit()
        assert recorded.trace("pre_save", "post_save") == []


def test_a_new_parent_is_saved_and_signalled_before_its_child_added_first(
    engine: Engine, models: Any, recorded: Any
) -> None:
    with Session(engine) as session:
        post = models.Post(user=models.User(name="author"))
        session.add(post)  # the child first; its parent comes by cascade
        session.commit()
        # The parent's row must exist before the child's foreign key can name
        # it, and a post_save receiver of the child may read its parent.
        assert [row[1] for row in recorded.trace("post_save")] == ["User", "Post"]


def test_an_object_expunged_by_a_pre_save_receiver_gets_no_post_save(
    engine: Engine, models: Any, recorded: Any
) -> None:
    def keep_drafts_out(
        sender: Any, instance: Any, session: Session, **kwargs: Any
    ) -> None:
        if instance.name.startswith("draft"):
            session.expunge(instance)

    with (
        connected_to(keep_drafts_out, pre_save, sender=models.User),
        Session(engine) as session,
    ):
        session.add_all([models.User(name="draft"), models.User(name="kept")])
        session.commit()
        pre = sorted(row[2].name for row in recorded.trace("pre_save"))
        post = [row[2].name for row in recorded.trace("post_save")]
        assert (pre, post) == (["draft", "kept"], ["kept"])
        assert session.scalars(select(models.User.name)).all() == ["kept"]


def test_no_listener_means_nothing_is_recorded_on_the_flush(
    engine: Engine, models: Any
) -> None:
    from sqlalchemy import event

    records = []

    def peek(session: Session, flush_context: Any) -> None:
        records.append(flush_context.attributes.get("tocsin.flush"))

    event.listen(Session, "after_flush", peek)
    try:
        with Session(engine) as session:
            session.add(models.User(name="a"))
            session.commit()
    finally:
        event.remove(Session, "after_flush", peek)
    (record,) = records
    assert record is not None
    assert not record.saves
    assert not record.deletes
