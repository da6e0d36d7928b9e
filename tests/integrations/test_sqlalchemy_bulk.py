"""Bulk statements: no per-object signals; pre_bulk/post_bulk as the opt-in."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.integrations.sqlalchemy import post_bulk, pre_bulk
from tocsin.testing import capture


@pytest.fixture
def session(engine: Engine, models: Any) -> Any:
    with Session(engine) as session:
        session.add_all([models.Tag(name=f"t{i}") for i in (1, 2, 3)])
        session.commit()
        yield session


def test_bulk_statements_send_no_model_signals(
    session: Session, models: Any, recorded: Any
) -> None:
    recorded.clear()
    session.execute(insert(models.Tag), [{"name": "t4"}, {"name": "t5"}])
    session.execute(update(models.Tag).where(models.Tag.id == 1).values(name="x"))
    session.execute(delete(models.Tag).where(models.Tag.id == 2))
    session.connection().execute(models.Tag.__table__.delete())
    session.commit()
    assert recorded.sent == []


def test_bulk_update_reports_the_matched_primary_keys(
    session: Session, models: Any
) -> None:
    statement = update(models.Tag).where(models.Tag.id >= 2).values(name="x")
    with capture(pre_bulk, post_bulk) as sent:
        result = session.execute(statement)
    assert result.rowcount == 2  # type: ignore[attr-defined]
    assert [(s.signal, s.sender, s.kwargs["kind"]) for s in sent] == [
        (pre_bulk, models.Tag, "update"),
        (post_bulk, models.Tag, "update"),
    ]
    pre, post = sent
    assert sorted(pre.kwargs["pks"]) == sorted(post.kwargs["pks"]) == [2, 3]
    assert pre.kwargs["statement"] is statement
    assert post.kwargs["rowcount"] == 2
    assert pre.kwargs["using"] == "default"
    assert pre.kwargs["session"] is session


def test_bulk_delete_runs_pre_bulk_while_the_rows_exist(
    session: Session, models: Any
) -> None:
    names: list[list[str]] = []

    def before(sender: Any, pks: list[int], session: Session, **kwargs: Any) -> None:
        rows = session.scalars(select(models.Tag.name).where(models.Tag.id.in_(pks)))
        names.append(sorted(rows))

    pre_bulk.connect(before, sender=models.Tag, weak=False)
    try:
        session.execute(delete(models.Tag).where(models.Tag.name != "t2"))
    finally:
        pre_bulk.disconnect(before, sender=models.Tag)
    assert names == [["t1", "t3"]]
    assert session.scalars(select(models.Tag.name)).all() == ["t2"]


def test_bulk_update_by_primary_key_takes_the_keys_from_the_parameters(
    session: Session, models: Any
) -> None:
    with capture(post_bulk) as sent:
        session.execute(
            update(models.Tag), [{"id": 1, "name": "a"}, {"id": 3, "name": "c"}]
        )
    assert sent[0].kwargs["pks"] == [1, 3]
    assert session.scalars(select(models.Tag.name).order_by(models.Tag.id)).all() == [
        "a",
        "t2",
        "c",
    ]


def test_bulk_insert_reports_given_keys_or_the_key_of_a_single_row(
    session: Session, models: Any
) -> None:
    with capture(pre_bulk, post_bulk) as sent:
        session.execute(insert(models.Tag), [{"id": 10, "name": "a"}, {"id": 11}])
        session.execute(insert(models.Tag).values(name="single"))
    given_pre, given_post, single_pre, single_post = sent
    assert given_pre.kwargs["pks"] == given_post.kwargs["pks"] == [10, 11]
    assert single_pre.kwargs["pks"] is None
    new_id = session.scalar(select(models.Tag.id).where(models.Tag.name == "single"))
    assert single_post.kwargs["pks"] == [new_id]


def test_a_failing_pre_bulk_receiver_stops_the_statement(
    session: Session, models: Any
) -> None:
    def refuse(sender: Any, **kwargs: Any) -> None:
        raise PermissionError("no bulk deletes")

    pre_bulk.connect(refuse, sender=models.Tag, weak=False)
    try:
        with pytest.raises(PermissionError):
            session.execute(delete(models.Tag))
    finally:
        pre_bulk.disconnect(refuse, sender=models.Tag)
    session.rollback()
    assert len(session.scalars(select(models.Tag)).all()) == 3


def test_selects_and_other_models_are_left_alone(session: Session, models: Any) -> None:
    with capture(pre_bulk, post_bulk, sender=models.User) as sent:
        session.execute(update(models.Tag).values(name="x"))
        session.scalars(select(models.Tag)).all()
    assert sent == []
