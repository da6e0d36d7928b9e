"""The built-in signals: model, request and auth events, as in Django.

These are :class:`tocsin.Signal` objects; the emitters send them
(:mod:`tocsin.integrations.sqlalchemy` the model signals,
:mod:`tocsin.integrations.asgi` and :mod:`tocsin.integrations.wsgi` the
request signals, :mod:`tocsin.auth` the auth signals). Each docstring lists the
sender and the keyword arguments that every receiver gets, besides
``signal=``.

The model signals (all but ``class_prepared``) are :class:`ModelSignal`
objects: besides a model class, their ``connect()``, ``disconnect()`` and
``@receiver`` take a lazy ``"app_label.ModelName"`` string as ``sender``,
resolved through an app registry (:mod:`tocsin.apps`) when that model is
registered. This catalog is a lower layer than the registry and never
imports it: :mod:`tocsin.apps` sets :attr:`ModelSignal.default_apps` when it
is imported.
"""

from __future__ import annotations

import functools
import types
import warnings
import weakref
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, ClassVar

from . import _refs
from ._signal import Signal, WeakReceiverWarning

if TYPE_CHECKING:
    from .apps import LazyOperation, Registry

__all__ = [
    "ModelSignal",
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


class ModelSignal(Signal):
    """A signal whose senders are model classes, which can be named lazily.

    Wherever a sender is taken when connecting (``connect()``,
    :meth:`disconnect`, ``@receiver``), a model signal also accepts the string
    ``"app_label.ModelName"`` (the model name is case-insensitive, as in
    Django), with an optional ``apps=`` registry (by default
    :attr:`default_apps`). The connection is then a
    :meth:`~tocsin.apps.Registry.lazy_model_operation` of that registry: made
    at once if it knows the model, otherwise when the model is registered
    (when ``class_prepared`` is sent for it, or by ``register_model()``).

    The receiver and the options are checked at ``connect()``, not when the
    model arrives; a weakly connected receiver is still held weakly while it
    waits (if it is garbage collected first, the waiting connection is
    cancelled); connecting it twice is a no-op, and :meth:`disconnect`
    cancels a waiting connection.

    A reference that never resolves is an error, not a silent drop:
    :meth:`tocsin.apps.Registry.populate` raises
    :exc:`~tocsin.apps.LazyReferenceError` when, once every app's models are
    imported and every ``ready()`` has run, a waiting reference names an app
    that is not installed or a model that the app does not have; after
    ``populate()``, connecting to an unknown model raises it at once. A
    malformed string raises ``ValueError``; a lazy sender without ``apps=``
    before :mod:`tocsin.apps` was imported raises ``RuntimeError``.

    Sending is exactly :meth:`Signal.send`: send with the model class, never
    with the string.

    .. versionadded:: 0.1
    """

    #: The registry that resolves lazy senders given without ``apps=``:
    #: :mod:`tocsin.apps` sets it to :data:`tocsin.apps.apps` when imported.
    default_apps: ClassVar[Registry | None] = None

    def connect(
        self,
        receiver: Callable[..., Any],
        sender: object = None,
        weak: bool = True,
        dispatch_uid: Hashable | None = None,
        *,
        priority: float = 0,
        apps: Registry | None = None,
        **options: Any,
    ) -> None:
        """:meth:`Signal.connect`; ``sender`` may be ``"app_label.ModelName"``
        (resolved by ``apps``, by default :attr:`default_apps`).

        .. versionadded:: 0.1
        """
        if not isinstance(sender, str):
            super().connect(
                receiver, sender, weak, dispatch_uid, priority=priority, **options
            )
            return
        registry = self._registry(apps, sender)
        key = _refs.connection_keys(receiver, None, dispatch_uid)[0]
        waiting = self._waiting(registry, sender, key)
        # Check everything now, where the mistake is, on a throwaway signal:
        # the real connection may happen much later.
        Signal(name=self.name).connect(
            receiver, None, weak, dispatch_uid, priority=priority, **options
        )
        if waiting:
            return  # connecting twice is a no-op, as for a class sender
        connection = _LazyConnection(
            self, key, receiver, weak, (dispatch_uid, priority, options)
        )
        module, _ = _refs.source_location(receiver)
        connection.operation = registry.lazy_model_operation(
            connection,
            sender,
            description=f"The {self.name or 'signal'} receiver "
            f"{module + '.' if module else ''}{_refs.describe(receiver)}",
        )

    def disconnect(
        self,
        receiver: Callable[..., Any] | None = None,
        sender: object = None,
        dispatch_uid: Hashable | None = None,
        apps: Registry | None = None,
    ) -> bool:
        """Disconnect a receiver; ``sender`` may be ``"app_label.ModelName"``
        (resolved by ``apps``, by default :attr:`default_apps`).

        Returns:
            ``True`` if a connection (made or waiting) was removed.

        .. versionadded:: 0.1
        """
        if not isinstance(sender, str) or (receiver is None and dispatch_uid is None):
            return super().disconnect(receiver, sender, dispatch_uid)
        registry = self._registry(apps, sender)
        key = _refs.connection_keys(receiver, None, dispatch_uid)[0]
        cancelled = [op.cancel() for op in self._waiting(registry, sender, key)]
        try:
            model = registry.get_registered_model(sender)
        except LookupError:
            return any(cancelled)
        return super().disconnect(receiver, model, dispatch_uid) or any(cancelled)

    def _registry(self, apps: Registry | None, sender: str) -> Registry:
        registry = apps if apps is not None else self.default_apps
        if registry is None:
            raise RuntimeError(
                f"The lazy sender {sender!r} needs an app registry, and there is "
                "none yet: import tocsin.apps (its default registry resolves "
                "lazy senders) before connecting, or pass apps=registry."
            )
        return registry

    def _waiting(
        self, registry: Registry, reference: str, key: Hashable
    ) -> list[LazyOperation]:
        """This signal's connections of ``key`` waiting for ``reference``."""
        return [
            op
            for op in registry.pending_operations(reference)
            if isinstance(op.function, _LazyConnection)
            and op.function.key == (self, key)
        ]


class _LazyConnection:
    """The lazy operation that connects a receiver once its model arrives.

    It holds a weakly connected receiver weakly, and cancels the operation
    when the receiver dies first (``cancel()`` takes no lock, so it is safe in
    a weak-reference callback).
    """

    def __init__(
        self,
        signal: ModelSignal,
        key: Hashable,
        receiver: Callable[..., Any],
        weak: bool,
        how: tuple[Hashable | None, float, dict[str, Any]],
    ) -> None:
        self.key = (signal, key)
        self.signal = signal
        self.weak = weak
        self.how = how  # dispatch_uid, priority, options
        self.operation: LazyOperation | None = None
        self.receiver: Callable[[], Callable[..., Any] | None] = (
            (lambda: receiver)
            if not weak
            else weakref.WeakMethod(receiver, self._receiver_died)
            if isinstance(receiver, types.MethodType)
            else weakref.ref(receiver, self._receiver_died)
        )

    def __call__(self, model: type) -> None:
        receiver = self.receiver()
        if receiver is None:
            return
        dispatch_uid, priority, options = self.how
        connect = functools.partial(
            self.signal.connect,
            receiver,
            model,
            self.weak,
            dispatch_uid,
            priority=priority,
        )
        if self.weak and _refs.is_transient_function(receiver):
            # Already warned about at connect; the warning would now point
            # at whoever prepared the model.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", WeakReceiverWarning)
                connect(**options)
        else:
            connect(**options)

    def _receiver_died(self, ref: object) -> None:
        if self.operation is not None:
            self.operation.cancel()


class_prepared = Signal(
    name="class_prepared",
    doc="""A model class was defined (mapped).

    sender: the model class. No other arguments.
    """,
)

pre_init = ModelSignal(
    use_caching=True,
    name="pre_init",
    trace=False,  # sent once per loaded row
    doc="""A model is about to be initialised.

    sender: the model class.
    args: positional arguments (a loaded row's values, in column order).
    kwargs: keyword arguments given to the constructor (a copy).
    """,
)

post_init = ModelSignal(
    use_caching=True,
    name="post_init",
    trace=False,  # sent once per loaded row
    doc="""A model instance was initialised, by its constructor or by a load.

    sender: the model class.
    instance: the new instance.
    """,
)

pre_save = ModelSignal(
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

post_save = ModelSignal(
    use_caching=True,
    name="post_save",
    doc="""An instance was written, inside the still-open transaction.

    sender: the model class.
    instance: the saved instance (its primary key is set).
    created: True for an INSERT.
    update_fields, raw, using: as for pre_save.
    """,
)

pre_delete = ModelSignal(
    use_caching=True,
    name="pre_delete",
    doc="""An instance is about to be deleted.

    sender: the model class.
    instance: the instance being deleted.
    using: the name of the database.
    origin: the object (or statement) whose deletion caused this one.
    """,
)

post_delete = ModelSignal(
    use_caching=True,
    name="post_delete",
    doc="""An instance was deleted, inside the still-open transaction.

    sender, instance, using, origin: as for pre_delete.
    """,
)

m2m_changed = ModelSignal(
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
    scope: the ASGI scope (ASGI), or environ: the WSGI environ (WSGI), of
        the request that finished (a tocsin addition: Django sends none, but
        requests run concurrently, so a receiver needs to know which one).
    """,
)

got_request_exception = Signal(
    name="got_request_exception",
    doc="""The application raised an exception while handling a request.

    sender: None.
    request: the ASGI scope or the WSGI environ of the request.
    exception: the exception raised (a tocsin addition; Django's receivers
        read sys.exc_info(), which async receivers cannot).
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
