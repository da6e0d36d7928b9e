"""The built-in signals: model, request and auth events, as in Django.

These are plain :class:`tocsin.Signal` objects; the emitters send them
(:mod:`tocsin.integrations.sqlalchemy` the model signals,
:mod:`tocsin.integrations.asgi` and :mod:`tocsin.integrations.wsgi` the
request signals, :mod:`tocsin.auth` the auth signals). Each docstring lists the
sender and the keyword arguments that every receiver gets, besides
``signal=``. Model signals accept a model class or a lazy
``"app_label.ModelName"`` string as ``sender`` once :mod:`tocsin.apps` is
populated.
"""

from __future__ import annotations

from ._signal import Signal

__all__ = [
    "class_prepared",
    "got_request_exception",
    "m2m_changed",
    "post_delete",
    "post_init",
    "post_save",
    "pre_delete",
    "pre_init",
    "pre_save",
    "request_finished",
    "request_started",
    "user_logged_in",
    "user_logged_out",
    "user_login_failed",
]

# -- model signals --------------------------------------------------------------

class_prepared = Signal(
    name="class_prepared",
    doc="""A model class was defined (mapped).

    sender: the model class. No other arguments.
    """,
)

pre_init = Signal(
    use_caching=True,
    name="pre_init",
    doc="""A model is about to be initialised.

    sender: the model class.
    args: positional arguments (a loaded row's values, in column order).
    kwargs: keyword arguments given to the constructor (a copy).
    """,
)

post_init = Signal(
    use_caching=True,
    name="post_init",
    doc="""A model instance was initialised, by its constructor or by a load.

    sender: the model class.
    instance: the new instance.
    """,
)

pre_save = Signal(
    use_caching=True,
    name="pre_save",
    doc="""An instance is about to be written (INSERT or UPDATE).

    sender: the model class.
    instance: the instance being saved.
    raw: always False (True in Django only when loading fixtures).
    using: the name of the database (engine) it is written to.
    update_fields: the changed column names as a frozenset, or None for a
        new instance.
    """,
)

post_save = Signal(
    use_caching=True,
    name="post_save",
    doc="""An instance was written, inside the still-open transaction.

    sender: the model class.
    instance: the saved instance (its primary key is set).
    created: True for an INSERT.
    update_fields, raw, using: as for pre_save.
    """,
)

pre_delete = Signal(
    use_caching=True,
    name="pre_delete",
    doc="""An instance is about to be deleted.

    sender: the model class.
    instance: the instance being deleted.
    using: the name of the database.
    origin: the object (or statement) whose deletion caused this one.
    """,
)

post_delete = Signal(
    use_caching=True,
    name="post_delete",
    doc="""An instance was deleted, inside the still-open transaction.

    sender, instance, using, origin: as for pre_delete.
    """,
)

m2m_changed = Signal(
    use_caching=True,
    name="m2m_changed",
    doc="""A many-to-many relation changed.

    sender: the association table (or its mapped class).
    action: "pre_add", "post_add", "pre_remove", "post_remove", "pre_clear"
        or "post_clear".
    instance: the object whose relation changed.
    reverse: True when the change was made from the related side.
    model: the class of the objects added or removed.
    pk_set: the primary keys added or removed (None for the clear actions).
    using: the name of the database.
    """,
)

# -- request signals ------------------------------------------------------------

request_started = Signal(
    name="request_started",
    doc="""A web request began.

    sender: the class of the wrapped application.
    scope: the ASGI scope (ASGI), or environ: the WSGI environ (WSGI).
    """,
)

request_finished = Signal(
    name="request_finished",
    doc="""A web request ended: its response was completely sent, the client
    went away, or the application failed.

    sender: the class of the wrapped application.
    """,
)

got_request_exception = Signal(
    name="got_request_exception",
    doc="""The application raised an exception while handling a request.

    sender: None.
    request: the ASGI scope or the WSGI environ of the request.
    """,
)

# -- auth signals ---------------------------------------------------------------

user_logged_in = Signal(
    name="user_logged_in",
    doc="""A user logged in.

    sender: the user's class.
    request: the current request (or None).
    user: the user.
    """,
)

user_logged_out = Signal(
    name="user_logged_out",
    doc="""A user logged out.

    sender: the user's class, or type(None) when nobody was logged in.
    request: the current request (or None).
    user: the user, or None when nobody was logged in.
    """,
)

user_login_failed = Signal(
    name="user_login_failed",
    doc="""An authentication attempt failed.

    sender: the name of the module that reports it ("tocsin.auth").
    credentials: the credentials given, with sensitive values masked.
    request: the current request (or None).
    """,
)
