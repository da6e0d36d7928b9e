"""The errors of :mod:`tocsin.apps`, in this tree::

    AppRegistryError
     ├── ImproperlyConfigured       an entry of the app list is wrong
     │    └── LazyReferenceError    a lazy "app_label.ModelName" never resolves
     ├── AppRegistryNotReady        asked for something populate() provides
     └── AppReadyError              an AppConfig.ready() raised

Each message names the app (the entry as it was written) and, when the
user's code raised, keeps the original exception as the ``__cause__``.
"""

from __future__ import annotations

__all__ = [
    "AppReadyError",
    "AppRegistryError",
    "AppRegistryNotReady",
    "ImproperlyConfigured",
    "LazyReferenceError",
]


class AppRegistryError(Exception):
    """Base class of the errors raised by :mod:`tocsin.apps`.

    .. versionadded:: 0.1
    """


class ImproperlyConfigured(AppRegistryError):
    """An entry of the list given to :meth:`Registry.populate` is wrong: the
    module does not exist, the ``AppConfig`` has no ``name``, two apps share a
    label, or importing the app (or its models) failed.

    .. versionadded:: 0.1
    """


class LazyReferenceError(ImproperlyConfigured):
    """A lazy ``"app_label.ModelName"`` reference (a model signal's sender,
    or a :meth:`Registry.lazy_model_operation`) names no registered model.

    .. versionadded:: 0.1
    """


class AppRegistryNotReady(AppRegistryError):
    """Something that :meth:`Registry.populate` provides was asked for before
    it ran.

    .. versionadded:: 0.1
    """


class AppReadyError(AppRegistryError):
    """An :meth:`AppConfig.ready` raised; the original exception is the
    ``__cause__``.

    .. versionadded:: 0.1
    """


def qualified(klass: type) -> str:
    """How the error messages name a class: ``module.QualName``."""
    return f"{klass.__module__}.{klass.__qualname__}"
