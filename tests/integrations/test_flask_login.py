"""Flask-Login's logins and logouts as tocsin's auth signals."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import flask
import flask_login
import httpx
import pytest
from _servers import waitress_server

from tocsin.integrations import flask_login as bridge
from tocsin.signals import user_logged_in, user_logged_out, user_login_failed
from tocsin.testing import capture

SECRET = "s3cret-pw"
MASK = "********************"


class User(flask_login.UserMixin):  # type: ignore[misc]
    def __init__(self, user_id: str) -> None:
        self.id = user_id


USERS = {"alice": User("alice")}


def make_app() -> flask.Flask:
    app = flask.Flask(__name__)
    app.secret_key = "test only"
    manager = flask_login.LoginManager(app)

    @manager.user_loader  # type: ignore[untyped-decorator]
    def load(user_id: str) -> User | None:
        return USERS.get(user_id)

    @app.post("/login")
    def login() -> tuple[str, int]:
        form = flask.request.form
        user = USERS.get(form["username"])
        if user is None or form["password"] != SECRET:
            bridge.login_failed(dict(form))
            return "no", 401
        flask_login.login_user(user)
        return "yes", 200

    @app.post("/logout")
    def logout() -> str:
        flask_login.logout_user()
        return "bye"

    return app


@pytest.fixture
def installed() -> Iterator[None]:
    bridge.install()
    try:
        yield
    finally:
        bridge.uninstall()


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with waitress_server(make_app()) as url:
        yield url


def test_a_login_and_logout_over_http_send_tocsins_auth_signals(
    installed: None, url: str
) -> None:
    requests: list[tuple[str, str]] = []

    def remember_request(sender: Any, request: Any, **kwargs: Any) -> None:
        # Read while the request is live: the receiver runs inside the view.
        requests.append((type(request).__name__, request.path))

    user_logged_in.connect(remember_request, weak=False)
    user_logged_out.connect(remember_request, weak=False)
    try:
        with (
            capture(user_logged_in, user_logged_out) as sent,
            httpx.Client(timeout=10) as client,
        ):
            answer = client.post(
                f"{url}/login", data={"username": "alice", "password": SECRET}
            )
            assert answer.text == "yes"
            assert client.post(f"{url}/logout").text == "bye"
    finally:
        user_logged_in.disconnect(remember_request)
        user_logged_out.disconnect(remember_request)

    assert [(s.signal, s.sender, s.kwargs["user"]) for s in sent] == [
        (user_logged_in, User, USERS["alice"]),
        (user_logged_out, User, USERS["alice"]),
    ]
    assert requests == [("Request", "/login"), ("Request", "/logout")]


def test_a_rejected_password_sends_login_failed_with_it_masked(
    installed: None, url: str
) -> None:
    with capture(user_login_failed) as sent, httpx.Client(timeout=10) as client:
        answer = client.post(
            f"{url}/login", data={"username": "alice", "password": "wrong"}
        )
        assert answer.status_code == 401

    assert [(s.sender, s.kwargs["credentials"]) for s in sent] == [
        ("tocsin.auth", {"username": "alice", "password": MASK})
    ]
    assert isinstance(sent[0].kwargs["request"], flask.Request)


def test_an_anonymous_logout_is_sent_with_no_user(installed: None) -> None:
    app = make_app()
    with capture(user_logged_out) as sent:
        assert app.test_client().post("/logout").text == "bye"

    assert [(s.sender, s.kwargs["user"]) for s in sent] == [(type(None), None)]


def test_installing_twice_forwards_each_login_once(installed: None) -> None:
    bridge.install()
    app = make_app()
    with capture(user_logged_in) as sent:
        app.test_client().post("/login", data={"username": "alice", "password": SECRET})

    assert len(sent) == 1


def test_nothing_is_forwarded_before_install_or_after_uninstall() -> None:
    app = make_app()
    form = {"username": "alice", "password": SECRET}
    with capture(user_logged_in, user_logged_out) as sent:
        app.test_client().post("/login", data=form)
        bridge.install()
        bridge.uninstall()
        app.test_client().post("/login", data=form)

    assert sent == []


def test_login_failed_outside_a_request_has_no_request() -> None:
    with capture(user_login_failed) as sent:
        bridge.login_failed({"username": "x", "password": SECRET})

    assert sent[0].kwargs["request"] is None
    assert sent[0].kwargs["credentials"]["password"] == MASK


def test_importing_without_flask_login_names_the_extra_to_install() -> None:
    code = (
        "import sys; sys.modules['flask_login'] = None\n"
        "import tocsin.integrations.flask_login"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 1
    assert "MissingExtraError" in result.stderr
    assert 'pip install "tocsin[flask]"' in result.stderr
