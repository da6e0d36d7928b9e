"""pre_init / post_init on construction and load; class_prepared; inheritance."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import tocsin.integrations.sqlalchemy as tocsin_sa
from tocsin.signals import class_prepared, post_init, pre_init
from tocsin.testing import capture


def test_construction_sends_pre_init_with_a_copy_of_kwargs_then_post_init(
    models: Any, recorded: Any
) -> None:
    kwargs = {"name": "a"}
    user = models.User(**kwargs)
    assert recorded.trace("pre_init", "post_init") == [
        ("pre_init", "User", (), {"name": "a"}),
        ("post_init", "User", user),
    ]
    assert recorded.sent[0].kwargs["kwargs"] is not kwargs
    assert user.name == "a"


def test_post_init_sees_the_initialised_instance(models: Any) -> None:
    names = []

    def receiver(sender: Any, instance: Any, **kwargs: Any) -> None:
        names.append(instance.name)

    post_init.connect(receiver, sender=models.User, weak=False)
    try:
        models.User(name="seen")
    finally:
        post_init.disconnect(receiver, sender=models.User)
    assert names == ["seen"]


def test_a_custom_init_calling_super_sends_once(install: Any) -> None:
    class Base(DeclarativeBase):
        pass

    install(Base)

    class Named(Base):
        __tablename__ = "named"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]

        def __init__(self, first: str, last: str) -> None:
            super().__init__(name=f"{first} {last}")

    with capture(pre_init, post_init) as sent:
        named = Named("Ada", "Lovelace")
    assert [(s.signal.name, s.kwargs) for s in sent] == [
        ("pre_init", {"args": ("Ada", "Lovelace"), "kwargs": {}}),
        ("post_init", {"instance": named}),
    ]
    assert named.name == "Ada Lovelace"


def test_loading_a_row_sends_pre_init_with_the_row_values_then_post_init(
    engine: Engine, models: Any, recorded: Any
) -> None:
    with Session(engine) as session:
        session.add(models.User(name="a", email="a@example.org"))
        session.commit()
    with Session(engine) as session:
        recorded.clear()
        user = session.scalars(select(models.User)).one()
        assert recorded.trace("pre_init", "post_init") == [
            ("pre_init", "User", (1, "a", "a@example.org"), {}),
            ("post_init", "User", user),
        ]


def test_refresh_and_reloading_an_expired_object_send_nothing(
    engine: Engine, models: Any, recorded: Any
) -> None:
    with Session(engine) as session:
        user = models.User(name="a")
        session.add(user)
        session.commit()  # expires user
        recorded.clear()
        assert user.name == "a"
        session.refresh(user)
        assert recorded.trace("pre_init", "post_init") == []


def test_an_already_loaded_identity_is_not_initialised_again(
    engine: Engine, models: Any, recorded: Any
) -> None:
    with Session(engine) as session:
        session.add(models.User(name="a"))
        session.commit()
        first = session.get(models.User, 1)
        recorded.clear()
        assert session.scalars(select(models.User)).one() is first
        assert recorded.trace("pre_init", "post_init") == []


def test_joined_inheritance_sends_one_pair_with_the_subclass_as_sender(
    engine: Engine, models: Any, recorded: Any
) -> None:
    with Session(engine) as session:
        car = models.Car(seats=2)
        session.add(car)
        session.commit()
        car.seats = 4
        car.wheels = 3
        session.commit()
        assert recorded.trace("pre_init", "post_init", "pre_save", "post_save") == [
            ("pre_init", "Car", (), {"seats": 2}),
            ("post_init", "Car", car),
            ("pre_save", "Car", car, None, None),
            ("post_save", "Car", car, True, None),
            ("pre_save", "Car", car, None, frozenset({"seats", "wheels"})),
            ("post_save", "Car", car, False, frozenset({"seats", "wheels"})),
        ]
    with Session(engine) as session:
        recorded.clear()
        loaded = session.scalars(select(models.Vehicle)).one()
        assert type(loaded) is models.Car
        assert [row[:2] for row in recorded.trace("pre_init", "post_init")] == [
            ("pre_init", "Car"),
            ("post_init", "Car"),
        ]


def test_class_prepared_is_sent_once_when_a_model_is_defined_after_install(
    install: Any,
) -> None:
    class Base(DeclarativeBase):
        pass

    install(Base)
    with capture(class_prepared) as sent:

        class Defined(Base):
            __tablename__ = "defined"
            id: Mapped[int] = mapped_column(primary_key=True)

        install(Base)  # idempotent
    assert [(s.sender, s.kwargs) for s in sent] == [(Defined, {})]


def test_install_sends_class_prepared_for_models_defined_before_it(
    install: Any,
) -> None:
    class Base(DeclarativeBase):
        pass

    class Early(Base):
        __tablename__ = "early"
        id: Mapped[int] = mapped_column(primary_key=True)

    class Later(Base):
        __tablename__ = "later"
        id: Mapped[int] = mapped_column(primary_key=True)

    with capture(class_prepared, pre_init) as sent:
        install(Base)
        install(Base)
        Early()
    assert [(s.signal.name, s.sender) for s in sent] == [
        ("class_prepared", Early),
        ("class_prepared", Later),
        ("pre_init", Early),
    ]
    assert Base in tocsin_sa.installed_bases()


def test_models_of_a_base_that_is_not_installed_send_nothing() -> None:
    class Plain(DeclarativeBase):
        pass

    class Quiet(Plain):
        __tablename__ = "quiet"
        id: Mapped[int] = mapped_column(primary_key=True)

    with capture(pre_init, post_init) as sent:
        Quiet()
    assert sent == []


@pytest.mark.parametrize("bad", [object(), "Base", DeclarativeBase.__mro__[-1]])
def test_install_rejects_what_is_not_a_declarative_base(bad: Any) -> None:
    with pytest.raises(TypeError, match="declarative base"):
        tocsin_sa.install(bad)


def test_install_needs_a_base() -> None:
    with pytest.raises(TypeError, match=r"install\(Base\)"):
        tocsin_sa.install()


def test_a_post_init_receiver_hears_loads_of_its_model(
    engine: Engine, models: Any
) -> None:
    loaded: list[Any] = []

    def receiver(sender: Any, instance: Any, **kwargs: Any) -> None:
        loaded.append(instance)

    with Session(engine) as session:
        session.add(models.Post(title="p", user=models.User(name="u")))
        session.commit()
    post_init.connect(receiver, sender=models.Post, weak=False)
    try:
        with Session(engine) as session:
            user = session.get(models.User, 1)
            assert user is not None
            posts = list(user.posts)  # a lazy load of the related model
    finally:
        post_init.disconnect(receiver, sender=models.Post)
    assert loaded == posts
    assert len(posts) == 1
