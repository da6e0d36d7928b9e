"""tocsin.auth: the helpers that send the auth signals, and credential cleansing."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tocsin import Signal, auth
from tocsin.signals import user_logged_in, user_logged_out, user_login_failed
from tocsin.testing import capture, connected_to

SECRET = "hunter2-correct-horse"
MASK = "********************"


class User:
    is_authenticated = True

    def __init__(self, name: str) -> None:
        self.name = name


class AnonymousUser:
    is_authenticated = False


def test_login_sends_user_logged_in_from_the_users_class() -> None:
    alice = User("alice")
    with capture(user_logged_in) as sent:
        auth.login(alice, request="the request")

    assert [(s.sender, s.kwargs, s.mode) for s in sent] == [
        (User, {"request": "the request", "user": alice}, "send")
    ]


def test_login_returns_the_receivers_responses() -> None:
    def greet(sender: Any, user: User, **kwargs: Any) -> str:
        return f"welcome back, {user.name}"

    with connected_to(greet, user_logged_in, sender=User):
        assert auth.login(User("bob")) == [(greet, "welcome back, bob")]


def test_login_without_a_user_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"login\(\) needs the user"):
        auth.login(None)


def test_logout_sends_user_logged_out_from_the_users_class() -> None:
    alice = User("alice")
    with capture(user_logged_out) as sent:
        auth.logout(alice, request="the request")

    assert [(s.sender, s.kwargs) for s in sent] == [
        (User, {"request": "the request", "user": alice})
    ]


@pytest.mark.parametrize("anonymous", [None, AnonymousUser()])
def test_an_anonymous_logout_is_sent_with_no_user(anonymous: Any) -> None:
    with capture(user_logged_out) as sent:
        auth.logout(anonymous)

    assert [(s.sender, s.kwargs) for s in sent] == [
        (type(None), {"request": None, "user": None})
    ]


def test_login_failed_is_sent_by_tocsin_auth_with_the_request() -> None:
    with capture(user_login_failed) as sent:
        auth.login_failed({"username": "alice"}, request="the request")

    assert [(s.sender, s.kwargs) for s in sent] == [
        (
            "tocsin.auth",
            {"credentials": {"username": "alice"}, "request": "the request"},
        )
    ]


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWORD",
        "passwd",
        "passphrase",
        "new_password2",
        "api_key",
        "X-Api-Key",
        "apikey",
        "token",
        "otp_token",
        "secret",
        "client_secret",
        "signature",
        "key",
    ],
)
def test_a_sensitive_credential_is_masked(key: str) -> None:
    cleansed = auth.cleanse_credentials({key: SECRET, "username": "alice"})

    assert cleansed == {key: MASK, "username": "alice"}


@pytest.mark.parametrize("key", ["username", "email", "remember_me", "next"])
def test_an_ordinary_credential_is_kept(key: str) -> None:
    assert auth.cleanse_credentials({key: "visible"}) == {key: "visible"}


def test_every_kind_of_value_under_a_sensitive_key_is_masked() -> None:
    cleansed = auth.cleanse_credentials(
        {"password": {"old": SECRET}, "token": [SECRET], "secret": None}
    )

    assert cleansed == {"password": MASK, "token": MASK, "secret": MASK}


def test_nested_credentials_are_cleansed_too() -> None:
    credentials = {
        "user": {"name": "alice", "password": SECRET},
        "factors": [{"kind": "totp", "otp_token": "123456"}],
        "pair": ("a", {"api_key": SECRET}),
    }

    assert auth.cleanse_credentials(credentials) == {
        "user": {"name": "alice", "password": MASK},
        "factors": [{"kind": "totp", "otp_token": MASK}],
        "pair": ("a", {"api_key": MASK}),
    }


def test_the_callers_credentials_are_left_unchanged() -> None:
    credentials = {"username": "alice", "password": SECRET}
    with capture(user_login_failed) as sent:
        auth.login_failed(credentials)

    assert credentials == {"username": "alice", "password": SECRET}
    assert sent[0].kwargs["credentials"] is not credentials


@pytest.mark.parametrize("credentials", [None, "alice:hunter2", [("user", "alice")]])
def test_credentials_that_are_not_a_mapping_are_a_type_error(credentials: Any) -> None:
    with pytest.raises(TypeError, match="credentials must be a mapping"):
        auth.login_failed(credentials)


def test_a_password_never_reaches_a_receiver_a_log_line_or_a_frame(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Everything a failed login can leak through, checked for the secret.

    Receivers log what they get at DEBUG; one forwards it to an application
    signal whose failing receiver is logged by ``send_robust`` (with the
    credentials in its message); one raises with the credentials in its
    message, which propagates to the caller with a traceback.
    """
    caplog.set_level(logging.DEBUG)  # the root logger: every logger
    seen: list[Any] = []
    audit = Signal(name="audit")

    def log_it(sender: Any, credentials: Any, **kwargs: Any) -> None:
        seen.append(credentials)
        logging.getLogger("app.security").debug("failed login: %r", credentials)

    def forward(sender: Any, credentials: Any, **kwargs: Any) -> None:
        audit.send_robust(sender, credentials=credentials)

    def broken_audit(sender: Any, credentials: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"audit store down, lost {credentials}")

    def refuse(sender: Any, credentials: Any, **kwargs: Any) -> None:
        raise PermissionError(f"locked out: {credentials!r}")

    credentials = {"username": "alice", "password": SECRET, "api_key": SECRET}
    with (
        connected_to(log_it, user_login_failed),
        connected_to(forward, user_login_failed),
        connected_to(broken_audit, audit),
        connected_to(refuse, user_login_failed),
        pytest.raises(PermissionError) as raised,
    ):
        auth.login_failed(credentials)

    assert seen == [{"username": "alice", "password": MASK, "api_key": MASK}]
    assert "app.security" in {record.name for record in caplog.records}
    assert "tocsin" in {record.name for record in caplog.records}
    assert SECRET not in caplog.text
    for record in caplog.records:
        assert SECRET not in record.getMessage()
        assert SECRET not in (record.exc_text or "")
    assert SECRET not in str(raised.value)
    assert MASK in str(raised.value)
    # No tocsin frame in the traceback holds the secret (error trackers such
    # as Sentry record frame locals).
    traceback = raised.value.__traceback__
    tocsin_frames = 0
    while traceback is not None:
        frame = traceback.tb_frame
        if frame.f_globals.get("__name__", "").startswith("tocsin"):
            tocsin_frames += 1
            assert SECRET not in repr(frame.f_locals)
        traceback = traceback.tb_next
    assert tocsin_frames >= 2


def test_the_async_variants_await_async_receivers() -> None:
    calls: list[tuple[str, Any, dict[str, Any]]] = []

    async def remember(sender: Any, signal: Signal, **kwargs: Any) -> None:
        await asyncio.sleep(0)
        calls.append((signal.name or "", sender, kwargs))

    alice = User("alice")

    async def main() -> None:
        await auth.alogin(alice, request="r")
        await auth.alogout(AnonymousUser(), request="r")
        await auth.alogin_failed({"login": "alice", "Password": SECRET}, request="r")

    with (
        connected_to(remember, user_logged_in),
        connected_to(remember, user_logged_out),
        connected_to(remember, user_login_failed),
    ):
        asyncio.run(main())

    assert calls == [
        ("user_logged_in", User, {"request": "r", "user": alice}),
        ("user_logged_out", type(None), {"request": "r", "user": None}),
        (
            "user_login_failed",
            "tocsin.auth",
            {"credentials": {"login": "alice", "Password": MASK}, "request": "r"},
        ),
    ]


def test_alogin_without_a_user_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"alogin\(\) needs the user"):
        asyncio.run(auth.alogin(None))
