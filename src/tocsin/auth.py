"""Send the auth signals from any application's login code.

tocsin does not authenticate anyone: your application (or its framework)
does, then calls one of these helpers, which send the catalog's auth signals
with Django's senders and arguments:

>>> from tocsin import auth, signals
>>> from tocsin.testing import capture
>>> class User:
...     is_authenticated = True
>>> alice = User()
>>> with capture(signals.user_logged_in, signals.user_login_failed) as sent:
...     _ = auth.login(alice, request="the request")
...     _ = auth.login_failed({"username": "alice", "password": "hunter2"})
>>> sent[0].sender is User, sent[0].kwargs["user"] is alice
(True, True)
>>> sent[1].sender, sent[1].kwargs["credentials"]
('tocsin.auth', {'username': 'alice', 'password': '********************'})

Receivers of ``user_login_failed`` never see a secret: every credential whose
key looks sensitive is masked first (see :func:`cleanse_credentials`).

The helpers send with :meth:`~tocsin.Signal.send` (or ``asend`` for the
``a``-prefixed variants), as Django does: a receiver's exception propagates
to the caller, so a failing ``user_logged_in`` receiver fails the login.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping, MutableSequence, MutableSet, Sequence, Set
from typing import TYPE_CHECKING, Any

from .signals import user_logged_in, user_logged_out, user_login_failed

if TYPE_CHECKING:
    from ._dispatch import Responses

__all__ = [
    "CLEANSED_SUBSTITUTE",
    "SENSITIVE_CREDENTIALS",
    "alogin",
    "alogin_failed",
    "alogout",
    "cleanse_credentials",
    "login",
    "login_failed",
    "logout",
]

#: A credential whose key matches this (anywhere, in any case) is masked.
SENSITIVE_CREDENTIALS = re.compile("API|TOKEN|KEY|SECRET|PASS|SIGNATURE", re.IGNORECASE)

#: What a sensitive credential's value is replaced with.
CLEANSED_SUBSTITUTE = "********************"

_SENDER = __name__


def cleanse_credentials(credentials: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``credentials`` with every sensitive value masked.

    A value is sensitive when its key matches :data:`SENSITIVE_CREDENTIALS`
    (``password``, ``api_key``, ``otp_token``, ``client_secret``,
    ``passphrase``, ...): it becomes :data:`CLEANSED_SUBSTITUTE`, whatever it
    was. Mappings nested in the values, also inside sequences and sets of
    any type, are cleansed the same way. The given mapping is not changed.

    >>> cleanse_credentials({"email": "a@example.com", "API_Key": "k-123"})
    {'email': 'a@example.com', 'API_Key': '********************'}

    The copy is made of plain types where the original's type cannot be
    rebuilt safely: mappings become dicts; lists, tuples, sets, frozensets,
    deques and named tuples keep their type; other sequences become lists
    (mutable ones) or tuples, other sets become sets or frozensets. Cleansing
    fails closed, so that the signal is always sent: a nested value that
    cannot be read (its iteration raises, or it contains itself) is masked as
    a whole.

    A secret under an innocent key (``{"pin": ...}``) is not recognised:
    name sensitive fields so that the pattern matches them.

    Raises:
        TypeError: ``credentials`` is not a mapping.

    .. versionadded:: 0.1
    """
    if not isinstance(credentials, Mapping):
        raise TypeError(
            "credentials must be a mapping of the submitted fields, such as "
            f"{{'username': ..., 'password': ...}}, not {type(credentials).__name__}."
        )
    return _cleanse_mapping(credentials, {id(credentials)})


def _cleanse_mapping(mapping: Mapping[Any, Any], walking: set[int]) -> dict[Any, Any]:
    return {
        key: (
            CLEANSED_SUBSTITUTE
            if SENSITIVE_CREDENTIALS.search(str(key))
            else _cleanse_value(value, walking)
        )
        for key, value in mapping.items()
    }


# Sequences of characters or bytes hold no credentials to walk into.
_TEXT = (str, bytes, bytearray, memoryview)


def _cleanse_value(value: Any, walking: set[int]) -> Any:
    """Cleanse one nested value; ``walking`` holds the containers being walked."""
    if isinstance(value, _TEXT) or not isinstance(value, Mapping | Sequence | Set):
        return value
    if id(value) in walking:
        return CLEANSED_SUBSTITUTE  # a container inside itself
    walking.add(id(value))
    try:
        if isinstance(value, Mapping):
            return _cleanse_mapping(value, walking)
        return _rebuild(value, [_cleanse_value(item, walking) for item in value])
    except Exception:
        # Fail closed: a value that cannot be walked may hide a secret, and
        # raising here would lose the signal.
        return CLEANSED_SUBSTITUTE
    finally:
        walking.discard(id(value))


def _rebuild(original: Sequence[Any] | Set[Any], items: list[Any]) -> Any:
    """A container of ``original``'s kind holding ``items``.

    Only types whose constructor is known are rebuilt as themselves; calling
    an unknown class's constructor could fail, or do anything.
    """
    kind: Any = type(original)
    if kind in (list, tuple, set, frozenset):
        return kind(items)
    if isinstance(original, deque):
        return deque(items, maxlen=original.maxlen)
    if isinstance(original, tuple) and hasattr(kind, "_fields"):
        return kind._make(items)  # a named tuple
    if isinstance(original, Set):
        return set(items) if isinstance(original, MutableSet) else frozenset(items)
    return list(items) if isinstance(original, MutableSequence) else tuple(items)


def _check_user(user: Any, function: str) -> None:
    if user is None:
        raise TypeError(
            f"{function}() needs the user who logged in, got None. "
            "(logout(None) reports an anonymous logout.)"
        )


def _logged_out_user(user: Any) -> Any:
    # As Django: an anonymous user object logs out as None.
    if user is not None and getattr(user, "is_authenticated", True) is False:
        return None
    return user


def login(user: Any, request: Any = None) -> Responses:
    """Send ``user_logged_in``: call it once ``user`` has logged in.

    Receivers get ``sender=type(user)``, ``request`` and ``user``.

    Returns:
        The receivers' ``(receiver, response)`` pairs.

    Raises:
        TypeError: ``user`` is None.

    .. versionadded:: 0.1
    """
    _check_user(user, "login")
    return user_logged_in.send(type(user), request=request, user=user)


def logout(user: Any, request: Any = None) -> Responses:
    """Send ``user_logged_out``: call it when ``user`` logs out.

    Receivers get ``sender=type(user)``, ``request`` and ``user``. When
    nobody was logged in (``user`` is None, or an object whose
    ``is_authenticated`` is False, such as Flask-Login's anonymous user),
    they get ``sender=type(None)`` and ``user=None``, as in Django.

    Returns:
        The receivers' ``(receiver, response)`` pairs.

    .. versionadded:: 0.1
    """
    user = _logged_out_user(user)
    return user_logged_out.send(type(user), request=request, user=user)


def login_failed(credentials: Mapping[str, Any], request: Any = None) -> Responses:
    """Send ``user_login_failed``: call it when authentication fails.

    Receivers get ``sender="tocsin.auth"``, ``credentials`` (a cleansed copy,
    see :func:`cleanse_credentials`) and ``request``.

    Returns:
        The receivers' ``(receiver, response)`` pairs.

    Raises:
        TypeError: ``credentials`` is not a mapping.

    .. versionadded:: 0.1
    """
    # Rebound at once, so that no frame of tocsin's holds the secrets while
    # receivers run (tracebacks with locals, debuggers, error trackers).
    credentials = cleanse_credentials(credentials)
    return user_login_failed.send(_SENDER, credentials=credentials, request=request)


async def alogin(user: Any, request: Any = None) -> Responses:
    """:func:`login` for async code: async receivers are awaited.

    .. versionadded:: 0.1
    """
    _check_user(user, "alogin")
    return await user_logged_in.asend(type(user), request=request, user=user)


async def alogout(user: Any, request: Any = None) -> Responses:
    """:func:`logout` for async code: async receivers are awaited.

    .. versionadded:: 0.1
    """
    user = _logged_out_user(user)
    return await user_logged_out.asend(type(user), request=request, user=user)


async def alogin_failed(
    credentials: Mapping[str, Any], request: Any = None
) -> Responses:
    """:func:`login_failed` for async code: async receivers are awaited.

    .. versionadded:: 0.1
    """
    credentials = cleanse_credentials(credentials)
    return await user_login_failed.asend(
        _SENDER, credentials=credentials, request=request
    )
