"""Flask-Login's logins and logouts, sent as tocsin's auth signals.

Flask-Login already announces ``login_user()`` and ``logout_user()`` on its
own (blinker) signals. After :func:`install`, each of those is also sent as
tocsin's ``user_logged_in`` or ``user_logged_out``, with Django's senders and
arguments, so receivers written for :mod:`tocsin.auth` work in a Flask app
without touching its views::

    from tocsin.integrations import flask_login as tocsin_flask_login

    tocsin_flask_login.install()

Flask-Login never checks passwords, so it has no failure signal: where your
view rejects a password, call :func:`login_failed` with the submitted fields.

Needs the ``flask`` extra: ``pip install "tocsin[flask]"``.
"""

from __future__ import annotations

from . import require

require("flask_login", extra="flask", package="Flask-Login")

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import flask
import flask_login  # type: ignore[import-untyped]

from .. import auth

if TYPE_CHECKING:
    from .._dispatch import Responses

__all__ = ["install", "login_failed", "uninstall"]


def _current_request() -> Any:
    if flask.has_request_context():
        return flask.request._get_current_object()  # type: ignore[attr-defined]
    return None


def _forward_login(sender: Any, user: Any = None, **extra: Any) -> None:
    auth.login(user, request=_current_request())


def _forward_logout(sender: Any, user: Any = None, **extra: Any) -> None:
    auth.logout(user, request=_current_request())


def install() -> None:
    """Send tocsin's auth signals for Flask-Login's, in every Flask app.

    After this call, ``flask_login.login_user()`` sends ``user_logged_in``
    (``sender=type(user)``, ``request`` the current ``flask.request`` or
    None outside a request, ``user``), and ``flask_login.logout_user()``
    sends ``user_logged_out`` (with ``user=None`` and ``sender=type(None)``
    when nobody was logged in). Receivers run inside Flask-Login's call:
    an exception from one propagates out of ``login_user()``.

    Calling it again changes nothing.

    .. versionadded:: 0.1
    """
    flask_login.user_logged_in.connect(_forward_login, weak=False)
    flask_login.user_logged_out.connect(_forward_logout, weak=False)


def uninstall() -> None:
    """Stop forwarding Flask-Login's signals (undoes :func:`install`).

    .. versionadded:: 0.1
    """
    flask_login.user_logged_in.disconnect(_forward_login)
    flask_login.user_logged_out.disconnect(_forward_logout)


def login_failed(credentials: Mapping[str, Any]) -> Responses:
    """Send ``user_login_failed`` for the current Flask request.

    Call it where your login view rejects the submitted fields; sensitive
    values are masked before any receiver sees them (see
    :func:`tocsin.auth.cleanse_credentials`). Outside a request, ``request``
    is None.

    .. versionadded:: 0.1
    """
    return auth.login_failed(credentials, request=_current_request())
