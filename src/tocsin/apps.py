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

A *model* is a class for which :data:`tocsin.signals.class_prepared` was sent
(the SQLAlchemy integration sends it when a class is mapped) or that was
given to :meth:`Registry.register_model`. A registry registers a prepared
class under the app whose package contains the class's module, whether the
class was prepared before or after :meth:`~Registry.populate` (this module
keeps a record of the classes prepared since it was imported).

The registry is an object: :data:`apps` is the default instance, used by the
model signals' lazy ``"app_label.ModelName"`` senders; tests can create their
own :class:`Registry` and pass it with ``apps=``.

The errors::

    AppRegistryError
     ├── ImproperlyConfigured       an entry of the app list is wrong
     │    └── LazyReferenceError    a lazy "app_label.ModelName" never resolves
     ├── AppRegistryNotReady        asked for something populate() provides
     └── AppReadyError              an AppConfig.ready() raised

:meth:`Registry.populate` is all or nothing: when it raises, the registry is
left as it was before the call (see its docstring for what it cannot undo).

.. versionadded:: 0.1
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from .signals import class_prepared

__all__ = [
    "AppConfig",
    "AppReadyError",
    "AppRegistryError",
    "AppRegistryNotReady",
    "ImproperlyConfigured",
    "LazyReferenceError",
    "Registry",
    "apps",
]

MODELS_MODULE_NAME = "models"
APPS_MODULE_NAME = "apps"


# -- errors ---------------------------------------------------------------------


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
    """A model signal was connected with a lazy ``"app_label.ModelName"``
    sender that no registered model matches.

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


# -- AppConfig --------------------------------------------------------------------


class AppConfig:
    """One application: its name, label, package directory, and start-up hook.

    Subclass it in the app's ``apps.py`` to set the attributes or to
    override :meth:`ready`::

        class ShopConfig(AppConfig):
            name = "shop"

            def ready(self):
                import shop.signals  # noqa: F401 (connects the receivers)

    Class attributes a subclass may set:

    - ``name`` (required when the subclass is given by its dotted path): the
      dotted path of the app's package, such as ``"shop"``.
    - ``label``: the short name used in ``"label.ModelName"`` references;
      by default the last component of ``name``. Must be a Python identifier
      and unique among the installed apps.
    - ``verbose_name``: a human-readable name; by default the label, titled.
    - ``path``: the app's directory; needed only for a namespace package
      spread over several directories.
    - ``default``: when ``apps.py`` defines several ``AppConfig`` subclasses,
      the one with ``default = True`` is used for the app's module path. Set
      ``default = False`` to keep a lone subclass from being picked.

    Args:
        app_name: The dotted path of the app's package.
        app_module: The imported package.

    Raises:
        ImproperlyConfigured: the label is not an identifier, or the
            directory of the package cannot be determined.

    .. versionadded:: 0.1
    """

    name: str
    label: str
    verbose_name: str
    path: str
    default: bool

    def __init__(self, app_name: str, app_module: ModuleType) -> None:
        self.name = app_name
        self.module = app_module
        #: The registry this app was installed in; set by populate().
        self.apps: Registry | None = None
        #: The app's imported ``models`` module, or ``None`` if it has none.
        self.models_module: ModuleType | None = None
        if not _class_defines(self, "label"):
            self.label = app_name.rpartition(".")[2]
        if not self.label.isidentifier():
            raise ImproperlyConfigured(
                f"App {app_name!r}: the label {self.label!r} is not a valid "
                "Python identifier. Set a label such as "
                f"{_suggest_label(self.label)!r} on its AppConfig."
            )
        if not _class_defines(self, "verbose_name"):
            self.verbose_name = self.label.title()
        if not _class_defines(self, "path"):
            self.path = _path_of(app_name, app_module)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.label}>"

    def ready(self) -> None:
        """Run start-up code once the registry holds every app and model.

        Called once by :meth:`Registry.populate`, after every app's models
        module was imported, in the order the apps were listed. Import the
        app's signal receivers here, so that they are connected exactly once
        and only when the app is installed. :meth:`Registry.get_model` works
        here; calling :meth:`Registry.populate` does not.

        .. versionadded:: 0.1
        """

    def get_models(self) -> list[type]:
        """The models registered for this app, in registration order.

        .. versionadded:: 0.1
        """
        if self.apps is None:
            return []
        return self.apps._models_of(self.label)

    def get_model(self, model_name: str) -> type:
        """The model of this app named ``model_name`` (case-insensitive).

        Raises:
            LookupError: this app has no such model.

        .. versionadded:: 0.1
        """
        model = None
        if self.apps is not None:
            model = self.apps._find_model(self.label, model_name.lower())
        if model is None:
            raise LookupError(f"App {self.label!r} has no model {model_name!r}.")
        return model

    @classmethod
    def create(cls, entry: str) -> AppConfig:
        """Make the ``AppConfig`` for one entry of an app list.

        Args:
            entry: The dotted path of the app's package (its ``apps``
                submodule is searched for an ``AppConfig`` subclass, as
                Django does), or the dotted path of an ``AppConfig``
                subclass.

        Raises:
            ImproperlyConfigured: the entry names no importable module or
                class, importing it failed, or the class is unusable; the
                message names the entry.

        .. versionadded:: 0.1
        """
        module = _import_app_module(entry)
        if module is not None:
            config_class = _discover_config(entry, module)
            if config_class is None:
                return AppConfig(entry, module)
            declared = getattr(config_class, "name", None)
            if declared is not None and declared != entry:
                raise ImproperlyConfigured(
                    f"App {entry!r}: {_qualified(config_class)} declares "
                    f"name = {declared!r}, but it is the AppConfig of "
                    f"{entry!r}. Make its name {entry!r}."
                )
            return config_class(entry, module)

        config_class = _import_config_class(entry)
        name: object = getattr(config_class, "name", None)
        if not name:
            raise ImproperlyConfigured(
                f"App {entry!r}: the AppConfig {_qualified(config_class)} has "
                "no 'name'. Set name to the dotted path of the app's package, "
                'such as name = "shop".'
            )
        if not isinstance(name, str):
            raise ImproperlyConfigured(
                f"App {entry!r}: {_qualified(config_class)}.name must be a "
                f"string (the dotted path of the app's package), not {name!r}."
            )
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if not _is_missing(name, error):
                raise _import_failed(entry, error) from error
            raise ImproperlyConfigured(
                f"App {entry!r}: {_qualified(config_class)}.name is {name!r}, "
                "but there is no such module. Check its spelling, and that "
                "its package is on sys.path."
            ) from None
        except Exception as error:
            raise _import_failed(entry, error) from error
        return config_class(name, module)

    def import_models(self) -> None:
        """Import the app's ``models`` module, if it has one.

        Raises:
            ImproperlyConfigured: importing it raised; the message names the
                app and the original exception is the ``__cause__``.

        .. versionadded:: 0.1
        """
        models_name = f"{self.name}.{MODELS_MODULE_NAME}"
        if not _has_submodule(self.module, models_name):
            self.models_module = None
            return
        try:
            self.models_module = importlib.import_module(models_name)
        except Exception as error:
            raise ImproperlyConfigured(
                f"App {self.label!r}: importing {models_name!r} raised "
                f"{type(error).__name__}: {error}"
            ) from error


def _class_defines(config: AppConfig, attribute: str) -> bool:
    return any(attribute in vars(klass) for klass in type(config).__mro__)


def _suggest_label(label: str) -> str:
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in label)
    return cleaned if cleaned.isidentifier() else f"app_{cleaned}"


def _qualified(klass: type) -> str:
    return f"{klass.__module__}.{klass.__qualname__}"


def _path_of(app_name: str, module: ModuleType) -> str:
    paths = list(getattr(module, "__path__", []))
    if len(paths) != 1:
        filename = getattr(module, "__file__", None)
        if filename is not None:
            paths = [os.path.dirname(filename)]
        else:
            paths = list(dict.fromkeys(paths))  # namespace packages repeat
    if len(paths) > 1:
        raise ImproperlyConfigured(
            f"App {app_name!r} is a namespace package spread over {paths!r}: "
            "give it an AppConfig subclass with a 'path' class attribute."
        )
    if not paths:
        raise ImproperlyConfigured(
            f"App {app_name!r} has no directory on disk: give it an AppConfig "
            "subclass with a 'path' class attribute."
        )
    return str(paths[0])


def _is_missing(name: str, error: ModuleNotFoundError) -> bool:
    """Whether ``error`` says that ``name`` itself (or a parent) is missing,
    rather than something that the module imports."""
    missing = error.name
    return missing is not None and (name == missing or name.startswith(missing + "."))


def _import_failed(entry: str, error: BaseException) -> ImproperlyConfigured:
    return ImproperlyConfigured(
        f"App {entry!r}: importing it raised {type(error).__name__}: {error}"
    )


def _import_app_module(entry: str) -> ModuleType | None:
    """Import ``entry`` as a module, or return ``None`` if no such module."""
    try:
        return importlib.import_module(entry)
    except ModuleNotFoundError as error:
        if _is_missing(entry, error):
            return None
        raise _import_failed(entry, error) from error
    except Exception as error:
        raise _import_failed(entry, error) from error


def _has_submodule(package: ModuleType, full_name: str) -> bool:
    if not hasattr(package, "__path__"):
        return False  # a plain module has no submodules
    if full_name in sys.modules:
        return True
    try:
        return importlib.util.find_spec(full_name) is not None
    except (ImportError, ValueError):
        return False


def _discover_config(entry: str, module: ModuleType) -> type[AppConfig] | None:
    """The ``AppConfig`` subclass to use for the app package ``entry``."""
    apps_name = f"{entry}.{APPS_MODULE_NAME}"
    if not _has_submodule(module, apps_name):
        return None
    try:
        apps_module = importlib.import_module(apps_name)
    except Exception as error:
        raise ImproperlyConfigured(
            f"App {entry!r}: importing {apps_name!r} raised "
            f"{type(error).__name__}: {error}"
        ) from error
    # Only classes defined in apps.py count, not ones it imports.
    candidates = [
        value
        for value in vars(apps_module).values()
        if isinstance(value, type)
        and issubclass(value, AppConfig)
        and value is not AppConfig
        and value.__module__ == apps_name
        and getattr(value, "default", True)
    ]
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    defaults = [c for c in candidates if getattr(c, "default", None) is True]
    if len(defaults) == 1:
        return defaults[0]
    names = ", ".join(sorted(c.__qualname__ for c in defaults or candidates))
    if defaults:
        problem = f"declares more than one default AppConfig: {names}"
    else:
        problem = (
            f"declares several AppConfig subclasses ({names}) and none is the default"
        )
    raise ImproperlyConfigured(
        f"App {entry!r}: {apps_name} {problem}. Mark exactly one with "
        "default = True, or list the one to use by its dotted path."
    )


def _import_config_class(entry: str) -> type[AppConfig]:
    """Import ``entry`` as the dotted path of an ``AppConfig`` subclass."""
    module_name, _, class_name = entry.rpartition(".")
    if not module_name:
        raise ImproperlyConfigured(
            f"Cannot import app {entry!r}: there is no module named {entry!r}. "
            "Check the spelling in the list given to populate(), and that the "
            "package is on sys.path."
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if not _is_missing(module_name, error):
            raise _import_failed(entry, error) from error
        raise ImproperlyConfigured(
            f"Cannot import app {entry!r}: there is no module named "
            f"{error.name!r}. Check the spelling in the list given to "
            "populate(), and that the package is on sys.path."
        ) from None
    except Exception as error:
        raise _import_failed(entry, error) from error
    candidate = getattr(module, class_name, None)
    if candidate is None:
        raise ImproperlyConfigured(
            f"Cannot import app {entry!r}: module {module_name!r} has no "
            f"attribute {class_name!r} (and there is no module {entry!r})."
        )
    if not (isinstance(candidate, type) and issubclass(candidate, AppConfig)):
        raise ImproperlyConfigured(
            f"App {entry!r} is neither a module nor an AppConfig subclass: "
            f"it is {candidate!r}."
        )
    return candidate


# -- the record of prepared classes ---------------------------------------------

# Every class for which class_prepared was sent since this module was
# imported, by (module, qualname): a registry populated later still finds the
# models that were imported first. The newest class wins, as after a reload.
# A fact about the process, not configuration; classes are held weakly.
# The modules imported before this one: class_prepared sent by them was not
# recorded. Only used to explain a lookup that fails because of it.
_modules_before_import = frozenset(sys.modules)

_prepared: weakref.WeakValueDictionary[tuple[str, str], type] = (
    weakref.WeakValueDictionary()
)


_prepared_lock = threading.Lock()


def _remember_prepared(sender: object, **kwargs: Any) -> None:
    if isinstance(sender, type):
        with _prepared_lock:
            _prepared[(sender.__module__, sender.__qualname__)] = sender


def _prepared_classes() -> list[type]:
    with _prepared_lock:
        return list(_prepared.values())


class_prepared.connect(_remember_prepared, weak=False, dispatch_uid=_remember_prepared)


# -- lazy "app_label.ModelName" references ----------------------------------------


def _split_reference(reference: str) -> tuple[str, str]:
    """Split ``"app_label.ModelName"`` into the label and the lowercased name.

    Raises:
        ValueError: ``reference`` is not of that form.
    """
    label, dot, name = reference.partition(".")
    if not dot or not label or not name or "." in name:
        raise ValueError(
            f"Invalid model reference {reference!r}: a lazy model sender must "
            "be 'app_label.ModelName', such as 'shop.User'."
        )
    return label, name.lower()


def _always() -> bool:
    return True


@dataclass(eq=False)
class _Pending:
    """Something to do with a model once it is registered (private)."""

    reference: str
    key: tuple[str, str]
    run: Callable[[type], None]
    description: str
    """Who waits, for error messages: "The 'post_save' receiver shop.f"."""
    owner: object = None
    """What created it (the signal), to find it again on disconnect."""
    match_key: object = None
    alive: Callable[[], bool] = field(default=_always)
    """False once the receiver it would connect is gone."""


# -- the registry -------------------------------------------------------------------


@dataclass
class _State:
    app_configs: dict[str, AppConfig]
    all_models: dict[str, dict[str, type]]
    apps_ready: bool
    models_ready: bool
    ready: bool


class Registry:
    """The installed applications and their models.

    :data:`apps` is the default instance; create another one to keep a test
    or an embedded application apart, and pass it where a registry is taken
    (``post_save.connect(..., apps=registry)``).

    The registry listens to :data:`tocsin.signals.class_prepared` (through a
    weak reference: it stops when the registry is garbage collected).

    Args:
        installed_apps: When given, :meth:`populate` is called with it.

    .. versionadded:: 0.1
    """

    def __init__(self, installed_apps: Iterable[str] | None = None) -> None:
        self._state = _State({}, {}, False, False, False)
        # _lock serialises populate() (and is held while it runs user code);
        # _state_lock guards the dicts for a moment at a time and is never held
        # while importing or calling user code, so that a class prepared in
        # another thread during populate() cannot deadlock with it.
        self._lock = threading.RLock()
        self._state_lock = threading.Lock()
        self._loading = False
        self._pending: dict[tuple[str, str], list[_Pending]] = {}
        class_prepared.connect(self._class_prepared, weak=True)
        if installed_apps is not None:
            self.populate(installed_apps)

    def __repr__(self) -> str:
        labels = ", ".join(self._state.app_configs) or "no apps"
        status = "ready" if self._state.ready else "not ready"
        return f"<tocsin.apps.Registry ({status}): {labels}>"

    # -- state ------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether :meth:`populate` has completed.

        .. versionadded:: 0.1
        """
        return self._state.ready

    @property
    def apps_ready(self) -> bool:
        """Whether the app configs are known (set early in :meth:`populate`).

        .. versionadded:: 0.1
        """
        return self._state.apps_ready

    @property
    def models_ready(self) -> bool:
        """Whether every app's models module was imported (set before the
        ``ready()`` calls).

        .. versionadded:: 0.1
        """
        return self._state.models_ready

    # -- populate ---------------------------------------------------------------

    def populate(self, installed_apps: Iterable[str]) -> None:
        """Install the apps: import each, import its models, call its ``ready()``.

        The work is done once: later calls return at once, whatever their
        argument. When two threads call it together, one does the work and
        the other waits for it to finish.

        In order:

        1. An :class:`AppConfig` is made for each entry (see
           :meth:`AppConfig.create`), and the labels are checked for
           duplicates.
        2. Each app's ``models`` module is imported, in order, and the
           classes prepared so far in the apps' packages are registered.
        3. Each app's :meth:`AppConfig.ready` is called, in order.
        4. Every lazy ``"app_label.ModelName"`` sender must now resolve.

        On any error the registry is left as it was before the call (no app
        configs, not ready) and a later call can succeed. What it cannot undo
        is what the imported modules and the ``ready()`` calls already did:
        modules stay imported and receivers stay connected.

        Args:
            installed_apps: Dotted paths of app packages or of ``AppConfig``
                subclasses, as Django's ``INSTALLED_APPS``.

        Raises:
            TypeError: ``installed_apps`` is a string, or holds a non-string.
            ImproperlyConfigured: an entry is wrong; the message names it.
            AppReadyError: a ``ready()`` raised; the message names the app.
            LazyReferenceError: a lazy sender names a model that no app
                provides.
            RuntimeError: called from inside a ``ready()``.

        .. versionadded:: 0.1
        """
        if self._state.ready:
            return
        entries = _check_entries(installed_apps)
        with self._lock:
            if self._state.ready:
                return
            if self._loading:
                raise RuntimeError(
                    "populate() isn't reentrant: it was called again while it "
                    "runs, from an app's import or ready()."
                )
            self._loading = True
            before = self._snapshot()
            try:
                self._populate(entries)
            except BaseException:
                self._restore(before)
                raise
            finally:
                self._loading = False

    def _populate(self, entries: list[str]) -> None:
        configs: dict[str, AppConfig] = {}
        names: dict[str, str] = {}
        for entry in entries:
            config = AppConfig.create(entry)
            if config.label in configs:
                other = configs[config.label]
                raise ImproperlyConfigured(
                    f"Application labels aren't unique: {config.label!r} is the "
                    f"label of {other.name!r} and of {config.name!r} (from "
                    f"{entry!r}). Give one of them another label in its "
                    "AppConfig."
                )
            if config.name in names:
                raise ImproperlyConfigured(
                    f"Application names aren't unique: {config.name!r} is "
                    f"listed twice ({names[config.name]!r} and {entry!r})."
                )
            names[config.name] = entry
            config.apps = self
            configs[config.label] = config

        with self._state_lock:
            self._state.app_configs = configs
            for label in configs:
                self._state.all_models.setdefault(label, {})
            self._state.apps_ready = True

        for config in configs.values():
            config.import_models()
        # Classes prepared before this registry knew their app.
        for cls in _prepared_classes():
            if cls.__module__ in sys.modules:
                self._register_if_installed(cls)
        self._state.models_ready = True

        for config in configs.values():
            try:
                config.ready()
            except Exception as error:
                raise AppReadyError(
                    f"App {config.label!r}: {_qualified(type(config))}.ready() "
                    f"raised {type(error).__name__}: {error}"
                ) from error
        self._check_lazy_references()
        self._state.ready = True

    def _check_lazy_references(self) -> None:
        with self._state_lock:
            pending = [op for ops in self._pending.values() for op in ops]
        problems = [self._unresolved(op) for op in pending if op.alive()]
        if problems:
            raise LazyReferenceError("\n".join(problems))

    def _unresolved(self, op: _Pending, populated: bool = False) -> str:
        label = op.key[0]
        config = self._state.app_configs.get(label)
        if config is None:
            why = f"app {label!r} isn't installed"
        else:
            why = f"app {label!r} has no model {op.reference.partition('.')[2]!r}"
            known = [m.__name__ for m in self._models_of(label)]
            if known:
                why += f" (its models: {', '.join(known)})"
        message = (
            f"{op.description} has a lazy reference to {op.reference!r}, but {why}."
        )
        if populated:
            message += " The registry is already populated: it will not appear later."
        if config is not None:
            models = f"{config.name}.{MODELS_MODULE_NAME}"
            early = sorted(
                name
                for name in _modules_before_import
                if name == models or name.startswith(models + ".")
            )
            if early:
                message += (
                    f" Note: {', '.join(early)} "
                    f"{'was' if len(early) == 1 else 'were'} imported before "
                    "tocsin.apps, so the classes prepared then are unknown: "
                    "import tocsin.apps first, or call register_model()."
                )
        return message

    def _snapshot(self) -> _State:
        with self._state_lock:
            state = self._state
            return _State(
                dict(state.app_configs),
                {label: dict(models) for label, models in state.all_models.items()},
                state.apps_ready,
                state.models_ready,
                state.ready,
            )

    def _restore(self, state: _State) -> None:
        with self._state_lock:
            self._state = state

    def _isolate(self) -> Callable[[], None]:
        """Save everything, waiting references included; return the function
        that puts it back (for test helpers that borrow the default registry).
        """
        state = self._snapshot()
        with self._state_lock:
            pending = {key: list(ops) for key, ops in self._pending.items()}

        def restore() -> None:
            self._restore(state)
            with self._state_lock:
                self._pending = pending

        return restore

    # -- apps ---------------------------------------------------------------------

    def get_app_configs(self) -> list[AppConfig]:
        """The installed apps' configs, in the order they were listed.

        Raises:
            AppRegistryNotReady: :meth:`populate` has not started.

        .. versionadded:: 0.1
        """
        self._check_apps_ready()
        return list(self._state.app_configs.values())

    def get_app_config(self, app_label: str) -> AppConfig:
        """The config of the installed app labelled ``app_label``.

        Raises:
            LookupError: no installed app has that label.
            AppRegistryNotReady: :meth:`populate` has not started.

        .. versionadded:: 0.1
        """
        self._check_apps_ready()
        try:
            return self._state.app_configs[app_label]
        except KeyError:
            labels = ", ".join(self._state.app_configs) or "none"
            raise LookupError(
                f"No installed app with label {app_label!r} (installed: {labels})."
            ) from None

    def _check_apps_ready(self) -> None:
        if not self._state.apps_ready:
            raise AppRegistryNotReady(
                "Apps aren't loaded yet: call apps.populate([...]) with your "
                "app list at start-up first."
            )

    def is_installed(self, app_name: str) -> bool:
        """Whether an app with the dotted package path ``app_name`` is installed.

        .. versionadded:: 0.1
        """
        return any(c.name == app_name for c in self._state.app_configs.values())

    def get_containing_app_config(self, module_name: str) -> AppConfig | None:
        """The installed app whose package contains the module ``module_name``
        (the innermost one when apps are nested), or ``None``.

        .. versionadded:: 0.1
        """
        best = None
        for config in self._state.app_configs.values():
            name = config.name
            if (module_name == name or module_name.startswith(name + ".")) and (
                best is None or len(name) > len(best.name)
            ):
                best = config
        return best

    # -- models ---------------------------------------------------------------------

    def get_models(self) -> list[type]:
        """Every registered model, app by app, in registration order.

        .. versionadded:: 0.1
        """
        with self._state_lock:
            return [
                model
                for models in self._state.all_models.values()
                for model in models.values()
            ]

    def get_model(self, app_label: str, model_name: str | None = None) -> type:
        """The model ``"app_label.ModelName"``, or ``(app_label, model_name)``.

        The model name is case-insensitive, as in Django.

        Raises:
            LookupError: there is no such app or model.
            AppRegistryNotReady: the model is not registered and
                :meth:`populate` has not imported the models yet.
            ValueError: a single argument that is not ``"label.Model"``.

        .. versionadded:: 0.1
        """
        if model_name is None:
            reference = app_label
            app_label, key = _split_reference(reference)
            model_name = reference.partition(".")[2]
        else:
            key = model_name.lower()
        model = self._find_model(app_label, key)
        if model is not None:
            return model
        if not self._state.models_ready:
            raise AppRegistryNotReady(
                f"Cannot look up {app_label}.{model_name}: models aren't loaded "
                "yet. Call apps.populate([...]) first, or register_model()."
            )
        if app_label not in self._state.all_models:
            self.get_app_config(app_label)  # raises, listing the installed apps
        raise LookupError(f"App {app_label!r} has no model {model_name!r}.")

    def register_model(self, app_label: str, model: type) -> None:
        """Register ``model`` under ``app_label``; complete the lazy senders
        waiting for it.

        Called for you when :data:`~tocsin.signals.class_prepared` is sent for
        a class inside an installed app. Call it yourself for an ORM that does
        not send ``class_prepared``, or to file a model under another label.
        Registering the same class again is a no-op; a new class with the
        same module and name replaces the old one (a reload).

        Raises:
            TypeError: ``model`` is not a class.
            ImproperlyConfigured: another class of the same name is already
                registered under ``app_label``.

        .. versionadded:: 0.1
        """
        if not isinstance(model, type):
            raise TypeError(f"register_model() takes a class, not {model!r}.")
        key = model.__name__.lower()
        with self._state_lock:
            models = self._state.all_models.setdefault(app_label, {})
            old = models.get(key)
            if old is model:
                return
            if old is not None and (old.__module__, old.__qualname__) != (
                model.__module__,
                model.__qualname__,
            ):
                raise ImproperlyConfigured(
                    f"Conflicting {model.__name__!r} models in app {app_label!r}: "
                    f"{_qualified(old)} and {_qualified(model)}. Rename one, or "
                    "register it under another app label."
                )
            models[key] = model
            waiting = self._pending.pop((app_label, key), [])
        for op in waiting:
            op.run(model)

    def _register_if_installed(self, cls: type) -> None:
        config = self.get_containing_app_config(cls.__module__)
        if config is not None:
            self.register_model(config.label, cls)

    def _class_prepared(self, sender: object, **kwargs: Any) -> None:
        if isinstance(sender, type):
            self._register_if_installed(sender)

    def _find_model(self, app_label: str, key: str) -> type | None:
        models = self._state.all_models.get(app_label)
        return None if models is None else models.get(key)

    def _models_of(self, app_label: str) -> list[type]:
        with self._state_lock:
            return list(self._state.all_models.get(app_label, {}).values())

    # -- lazy operations (used by tocsin.signals.ModelSignal) ----------------------------

    def _model_or_pending(self, op: _Pending) -> type | None:
        """Return the model ``op`` waits for if it is registered; otherwise
        record ``op``, to run when it is.

        Raises:
            LazyReferenceError: the registry is ready and the model unknown.
        """
        with self._state_lock:
            model = self._find_model(*op.key)
            if model is not None:
                return model
            if not self._state.ready:
                self._pending.setdefault(op.key, []).append(op)
                return None
        raise LazyReferenceError(self._unresolved(op, populated=True))

    def _has_pending(
        self, key: tuple[str, str], owner: object, match_key: object
    ) -> bool:
        with self._state_lock:
            return any(
                op.owner is owner and op.match_key == match_key
                for op in self._pending.get(key, ())
            )

    def _drop_pending(
        self, key: tuple[str, str], owner: object, match_key: object
    ) -> bool:
        with self._state_lock:
            ops = self._pending.get(key)
            if not ops:
                return False
            kept = [
                op
                for op in ops
                if not (op.owner is owner and op.match_key == match_key)
            ]
            if kept:
                self._pending[key] = kept
            else:
                del self._pending[key]
            return len(kept) != len(ops)

    def pending_references(self) -> list[str]:
        """The lazy ``"app_label.ModelName"`` references still waiting for
        their model, each described with what is waiting.

        .. versionadded:: 0.1
        """
        with self._state_lock:
            ops = [op for ops in self._pending.values() for op in ops]
        return [f"{op.description} -> {op.reference!r}" for op in ops if op.alive()]


def _check_entries(installed_apps: Iterable[str]) -> list[str]:
    if isinstance(installed_apps, str):
        raise TypeError(
            "populate() takes a list of app names, not a string: write "
            f"populate([{installed_apps!r}])."
        )
    entries = list(installed_apps)
    for entry in entries:
        if not isinstance(entry, str) or not entry:
            raise TypeError(
                "populate() takes dotted paths of app packages or of AppConfig "
                f"subclasses, such as 'shop' or 'shop.apps.ShopConfig'; got {entry!r}."
            )
    return entries


#: The default registry, used by lazy model senders unless ``apps=`` is given.
#:
#: .. versionadded:: 0.1
apps = Registry()
