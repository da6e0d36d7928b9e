"""``Registry``: the installed applications, their models, and the
operations that wait for a model.

A *model* is a class for which :data:`tocsin.signals.class_prepared` was sent
(the SQLAlchemy integration sends it when a class is mapped) or that was
given to :meth:`Registry.register_model`. Each registry listens to
``class_prepared`` from the moment it is created, and keeps its own record of
the classes prepared since then: a class prepared before :meth:`populate`
is registered by it, one prepared after it is registered at once, each under
the installed app whose package contains the class's module.
"""

from __future__ import annotations

import sys
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..signals import class_prepared
from ._config import AppConfig
from ._discovery import MODELS_MODULE_NAME
from ._errors import (
    AppReadyError,
    AppRegistryNotReady,
    ImproperlyConfigured,
    LazyReferenceError,
    qualified,
)
from ._lazy import LazyOperation, Waiting, resolve, run_all, split_reference

__all__ = ["Registry"]


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

    From its creation, the registry listens to
    :data:`tocsin.signals.class_prepared` (through a weak reference: it stops
    when the registry is garbage collected) and records the classes prepared,
    held weakly, so that :meth:`populate` finds the models imported before
    it. A class prepared before the registry was created is unknown to it:
    give it to :meth:`register_model`. Two registries share nothing.

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
        self._waiting = Waiting()
        # Every class prepared since this registry was created, by (module,
        # qualname): the newest class wins, as after a reload.
        self._prepared: weakref.WeakValueDictionary[tuple[str, str], type] = (
            weakref.WeakValueDictionary()
        )
        # What was imported before: class_prepared sent then was not heard.
        # Only used to explain a lookup that fails because of it.
        self._modules_before = frozenset(sys.modules)
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
        4. Every lazy ``"app_label.ModelName"`` reference (a model
           signal's sender, a :meth:`lazy_model_operation`) must now resolve.

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
        with self._state_lock:
            prepared = list(self._prepared.values())
        for cls in prepared:
            if cls.__module__ in sys.modules:
                self._register_if_installed(cls)
        self._state.models_ready = True

        for config in configs.values():
            try:
                config.ready()
            except Exception as error:
                raise AppReadyError(
                    f"App {config.label!r}: {qualified(type(config))}.ready() "
                    f"raised {type(error).__name__}: {error}"
                ) from error
        with self._state_lock:
            waiting = self._waiting.items()
            # Under the same lock as the check: an operation added later
            # sees ready and fails at once instead of waiting forever.
            self._state.ready = not waiting
        if waiting:
            raise LazyReferenceError(
                "\n".join(self._unresolved(op, key) for key, op in waiting)
            )

    def _unresolved(
        self, op: LazyOperation, key: tuple[str, str], populated: bool = False
    ) -> str:
        label = key[0]
        reference = op._reference_to(key)
        config = self._state.app_configs.get(label)
        if config is None:
            why = f"app {label!r} isn't installed"
        else:
            why = f"app {label!r} has no model {reference.partition('.')[2]!r}"
            known = [m.__name__ for m in self._models_of(label)]
            if known:
                why += f" (its models: {', '.join(known)})"
        message = f"{op.description} has a lazy reference to {reference!r}, but {why}."
        if populated:
            message += " The registry is already populated: it will not appear later."
        if config is not None:
            models = f"{config.name}.{MODELS_MODULE_NAME}"
            early = sorted(
                name
                for name in self._modules_before
                if name == models or name.startswith(models + ".")
            )
            if early:
                message += (
                    f" Note: {', '.join(early)} "
                    f"{'was' if len(early) == 1 else 'were'} imported before "
                    "this registry was created (tocsin.apps creates the default "
                    "one when it is imported), so the classes prepared then are "
                    "unknown to it: create the registry first, or call "
                    "register_model()."
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
            waiting = self._waiting.copy()

        def restore() -> None:
            self._restore(state)
            with self._state_lock:
                self._waiting = waiting

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
        app_label, model_name, key = _names(app_label, model_name)
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

    def get_registered_model(
        self, app_label: str, model_name: str | None = None
    ) -> type:
        """The model ``"app_label.ModelName"`` (or ``(app_label,
        model_name)``) if it is registered now.

        Unlike :meth:`get_model`, it never raises
        :exc:`AppRegistryNotReady`: it answers at any time, even while
        :meth:`populate` runs, as Django's does.

        Raises:
            LookupError: no such model is registered (yet).
            ValueError: a single argument that is not ``"label.Model"``.

        .. versionadded:: 0.1
        """
        app_label, model_name, key = _names(app_label, model_name)
        model = self._find_model(app_label, key)
        if model is None:
            raise LookupError(f"App {app_label!r} has no model {model_name!r}.")
        return model

    def register_model(self, app_label: str, model: type) -> None:
        """Register ``model`` under ``app_label``; run the lazy operations
        (such as lazy model-signal senders) that were waiting for it.

        Called for you when :data:`~tocsin.signals.class_prepared` is sent for
        a class inside an installed app. Call it yourself for an ORM that does
        not send ``class_prepared``, or to file a model under another label.
        Registering the same class again is a no-op; a new class with the
        same module and name replaces the old one (a reload).

        Raises:
            TypeError: ``model`` is not a class.
            ImproperlyConfigured: another class of the same name is already
                registered under ``app_label``.
            Exception: what a waiting operation raised (the others still
                run; several errors are raised together as an
                ``ExceptionGroup``).

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
                    f"{qualified(old)} and {qualified(model)}. Rename one, or "
                    "register it under another app label."
                )
            models[key] = model
            runnable = self._waiting.arrived((app_label, key), self._find_model)
        run_all(runnable)

    def _register_if_installed(self, cls: type) -> None:
        config = self.get_containing_app_config(cls.__module__)
        if config is not None:
            self.register_model(config.label, cls)

    def _class_prepared(self, sender: object, **kwargs: Any) -> None:
        if isinstance(sender, type):
            with self._state_lock:
                self._prepared[(sender.__module__, sender.__qualname__)] = sender
            self._register_if_installed(sender)

    def _find_model(self, app_label: str, key: str) -> type | None:
        models = self._state.all_models.get(app_label)
        return None if models is None else models.get(key)

    def _models_of(self, app_label: str) -> list[type]:
        with self._state_lock:
            return list(self._state.all_models.get(app_label, {}).values())

    # -- lazy operations ----------------------------------------------------------

    def lazy_model_operation(
        self,
        function: Callable[..., Any],
        *references: str,
        description: str | None = None,
    ) -> LazyOperation:
        """Call ``function(*models)`` once every model named in
        ``references`` is registered; at once if they all are.

        The models are passed in the order of ``references``. The function
        runs once, in the thread that registers the last missing model (or
        in this one), outside the registry's locks; what it raises
        propagates there. The registry holds it strongly until it runs or
        is cancelled.

        A reference that never resolves is an error, never a silent wait:
        :meth:`populate` raises :exc:`LazyReferenceError` when it ends with
        operations still waiting, and once the registry is ready a reference
        to an unknown model raises it here, at once.

        Args:
            function: The callable to run with the model classes.
            references: ``"app_label.ModelName"`` strings (the model name
                is case-insensitive, the label is not).
            description: Who waits, for the error messages and
                :meth:`pending_references`; by default the function's
                qualified name.

        Returns:
            A :class:`LazyOperation`; its ``cancel()`` makes sure the
            function never runs.

        Raises:
            TypeError: ``function`` is not callable, or a reference is not a
                string.
            ValueError: a reference is not ``"app_label.ModelName"``.
            LazyReferenceError: the registry is ready and a model is
                unknown.

        .. versionadded:: 0.1
        """
        op = LazyOperation(function, references, description)
        with self._state_lock:
            populated = self._state.ready
            if populated:
                missing = [k for k in op.model_keys if self._find_model(*k) is None]
            else:
                missing = self._waiting.add(op, self._find_model)
            models = resolve(op, self._find_model)
        if models is not None:
            op._run(models)
        elif populated:
            raise LazyReferenceError(
                "\n".join(self._unresolved(op, key, populated=True) for key in missing)
            )
        return op

    def pending_operations(self, reference: str | None = None) -> list[LazyOperation]:
        """The lazy operations still waiting, or those waiting for the model
        ``reference`` (``"app_label.ModelName"``).

        .. versionadded:: 0.1
        """
        key = None if reference is None else split_reference(reference)
        with self._state_lock:
            if key is not None:
                return self._waiting.waiting_for(key)
            return list(dict.fromkeys(op for _, op in self._waiting.items()))

    def pending_references(self) -> list[str]:
        """The lazy ``"app_label.ModelName"`` references still waiting for
        their model, each described with what is waiting.

        .. versionadded:: 0.1
        """
        with self._state_lock:
            waiting = self._waiting.items()
        return [f"{op.description} -> {op._reference_to(key)!r}" for key, op in waiting]


def _names(app_label: str, model_name: str | None) -> tuple[str, str, str]:
    """``(app_label, model_name, lowercased model_name)`` from either form
    that :meth:`Registry.get_model` takes."""
    if model_name is None:
        reference = app_label
        app_label, key = split_reference(reference)
        return app_label, reference.partition(".")[2], key
    return app_label, model_name, model_name.lower()


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
