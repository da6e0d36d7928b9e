"""tocsin.auth: who logs out (sync and async), what the errors say, and how
cleansing walks shared, self-containing and custom containers."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Iterator, MutableSet, Set
from typing import Any

import pytest

from tocsin import auth
from tocsin.signals import user_logged_out
from tocsin.testing import capture

SECRET = "hunter2-correct-horse"
MASK = auth.CLEANSED_SUBSTITUTE


class User:
    is_authenticated = True


class AnonymousUser:
    is_authenticated = False


class PlainAccount:
    """A user object with no ``is_authenticated`` attribute at all."""


def logged_out_with(user: Any, *, asynchronously: bool) -> list[tuple[Any, Any]]:
    with capture(user_logged_out) as sent:
        if asynchronously:
            asyncio.run(auth.alogout(user, request="the request"))
        else:
            auth.logout(user, request="the request")
    return [(s.sender, s.kwargs["user"]) for s in sent]


@pytest.mark.parametrize("asynchronously", [False, True])
def test_a_logged_in_user_logs_out_as_itself(asynchronously: bool) -> None:
    alice = User()
    assert logged_out_with(alice, asynchronously=asynchronously) == [(User, alice)]


@pytest.mark.parametrize("asynchronously", [False, True])
@pytest.mark.parametrize("anonymous", [None, AnonymousUser()])
def test_an_anonymous_user_logs_out_as_none(
    anonymous: Any, asynchronously: bool
) -> None:
    assert logged_out_with(anonymous, asynchronously=asynchronously) == [
        (type(None), None)
    ]


@pytest.mark.parametrize("asynchronously", [False, True])
def test_a_user_without_is_authenticated_counts_as_logged_in(
    asynchronously: bool,
) -> None:
    account = PlainAccount()
    assert logged_out_with(account, asynchronously=asynchronously) == [
        (PlainAccount, account)
    ]


@pytest.mark.parametrize("function", ["login", "alogin"])
def test_a_login_without_a_user_says_how_to_report_an_anonymous_logout(
    function: str,
) -> None:
    expected = (
        f"{function}() needs the user who logged in, got None. "
        "(logout(None) reports an anonymous logout.)"
    )

    def log_in_nobody() -> Any:
        if function == "login":
            return auth.login(None)
        return asyncio.run(auth.alogin(None))

    with pytest.raises(TypeError, match=f"^{re.escape(expected)}$"):
        log_in_nobody()


def test_credentials_that_are_not_a_mapping_name_their_type_and_the_expected_shape() -> (
    None
):
    expected = (
        "credentials must be a mapping of the submitted fields, such as "
        "{'username': ..., 'password': ...}, not list."
    )
    with pytest.raises(TypeError, match=f"^{re.escape(expected)}$"):
        auth.cleanse_credentials(["alice", SECRET])  # type: ignore[arg-type]


def test_the_same_container_under_two_keys_is_cleansed_both_times() -> None:
    shared = {"password": SECRET, "username": "alice"}
    cleansed = auth.cleanse_credentials({"first": shared, "second": [shared, shared]})
    assert cleansed == {
        "first": {"password": MASK, "username": "alice"},
        "second": [
            {"password": MASK, "username": "alice"},
            {"password": MASK, "username": "alice"},
        ],
    }


def test_credentials_that_hold_themselves_are_masked_where_they_reappear() -> None:
    credentials: dict[str, Any] = {"username": "alice"}
    credentials["again"] = credentials
    assert auth.cleanse_credentials(credentials) == {
        "username": "alice",
        "again": MASK,
    }


class TagSet(MutableSet[Any]):
    """A mutable set that is not a ``set``."""

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self.items = list(items)

    def __contains__(self, item: object) -> bool:
        return item in self.items

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def add(self, item: Any) -> None:
        self.items.append(item)

    def discard(self, item: Any) -> None:
        self.items.remove(item)


class FrozenTags(Set[Any]):
    """An immutable set that is not a ``frozenset``."""

    def __init__(self, items: Iterable[Any]) -> None:
        self.items = tuple(items)

    def __contains__(self, item: object) -> bool:
        return item in self.items

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def test_custom_sets_become_a_set_or_a_frozenset_by_mutability() -> None:
    cleansed = auth.cleanse_credentials(
        {
            "mutable": TagSet(["admin", ("api_token", "x")]),
            "frozen": FrozenTags(["read", "write"]),
        }
    )
    assert type(cleansed["mutable"]) is set
    assert cleansed["mutable"] == {"admin", ("api_token", "x")}
    assert type(cleansed["frozen"]) is frozenset
    assert cleansed["frozen"] == frozenset({"read", "write"})
