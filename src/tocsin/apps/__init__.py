"""Applications: ``AppConfig``, the registry, ``ready()`` and model lookup.

The layout that Django users know works as is::

    myapp/
        apps.py      # class MyAppConfig(AppConfig): name = "myapp"
                     #     def ready(self): import myapp.signals
        models.py
        signals.py   # @receiver(post_save, sender="myapp.User") ...

and at start-up, once::

    from tocsin.apps import apps
    apps.populate(["myapp", "otherapp.apps.OtherConfig"])

:meth:`Registry.populate` imports each app, then each app's ``models``
module, then calls every :meth:`AppConfig.ready` once, in order.

:data:`apps` is the default :class:`Registry`, created when this package is
imported; it resolves the model signals' lazy ``"app_label.ModelName"``
senders unless ``apps=`` names another one, and
:meth:`Registry.lazy_model_operation` runs any function when its models are
registered. A registry is an object with no shared state: tests can create
their own.

Where things are (the modules are private; import from here):

- ``_config``: :class:`AppConfig`;
- ``_discovery``: importing an app's package, ``apps`` and ``models``
  modules, and finding its ``AppConfig``;
- ``_registry``: :class:`Registry` (populate, model lookup, the record of
  prepared classes, the waiting operations);
- ``_lazy``: ``"app_label.ModelName"`` references and :class:`LazyOperation`;
- ``_errors``: the errors, in this tree::

    AppRegistryError
     ├── ImproperlyConfigured       an entry of the app list is wrong
     │    └── LazyReferenceError    a lazy "app_label.ModelName" never resolves
     ├── AppRegistryNotReady        asked for something populate() provides
     └── AppReadyError              an AppConfig.ready() raised

:meth:`Registry.populate` is all or nothing: when it raises, the registry is
left as it was before the call (see its docstring for what it cannot undo).

.. versionadded:: 0.1
"""

from .. import signals as _signals
from ._config import AppConfig
from ._errors import (
    AppReadyError,
    AppRegistryError,
    AppRegistryNotReady,
    ImproperlyConfigured,
    LazyReferenceError,
)
from ._lazy import LazyOperation
from ._registry import Registry

__all__ = [
    "AppConfig",
    "AppReadyError",
    "AppRegistryError",
    "AppRegistryNotReady",
    "ImproperlyConfigured",
    "LazyOperation",
    "LazyReferenceError",
    "Registry",
    "apps",
]

#: The default registry: it resolves the model signals' lazy senders unless
#: ``apps=`` is given. It listens to ``class_prepared`` from now on.
#:
#: .. versionadded:: 0.1
apps = Registry()

# The catalog is a lower layer and never imports this package: it is told
# which registry resolves lazy senders by default.
_signals.ModelSignal.default_apps = apps

# Reprs and tracebacks name the public path (tocsin.apps.Registry).
for _name in __all__:
    if isinstance(globals()[_name], type):
        globals()[_name].__module__ = __name__
del _name
