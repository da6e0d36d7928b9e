"""``AppConfig``: one application, its label and directory, and ``ready()``."""

from __future__ import annotations

import os
from types import ModuleType
from typing import TYPE_CHECKING

from ._discovery import (
    MODELS_MODULE_NAME,
    find_config_class,
    import_app_module,
    import_attribute,
    import_named_package,
    import_submodule,
)
from ._errors import ImproperlyConfigured, qualified

if TYPE_CHECKING:
    from ._registry import Registry

__all__ = ["AppConfig"]


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
        if self.apps is None:
            raise LookupError(f"App {self.label!r} has no model {model_name!r}.")
        return self.apps.get_registered_model(self.label, model_name)

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
        module = import_app_module(entry)
        if module is not None:
            config_class = find_config_class(entry, module, AppConfig)
            if config_class is None:
                return AppConfig(entry, module)
            declared = getattr(config_class, "name", None)
            if declared is not None and declared != entry:
                raise ImproperlyConfigured(
                    f"App {entry!r}: {qualified(config_class)} declares "
                    f"name = {declared!r}, but it is the AppConfig of "
                    f"{entry!r}. Make its name {entry!r}."
                )
            return config_class(entry, module)

        config_class = _config_class(entry)
        name: object = getattr(config_class, "name", None)
        if not name:
            raise ImproperlyConfigured(
                f"App {entry!r}: the AppConfig {qualified(config_class)} has "
                "no 'name'. Set name to the dotted path of the app's package, "
                'such as name = "shop".'
            )
        if not isinstance(name, str):
            raise ImproperlyConfigured(
                f"App {entry!r}: {qualified(config_class)}.name must be a "
                f"string (the dotted path of the app's package), not {name!r}."
            )
        return config_class(name, import_named_package(entry, config_class, name))

    def import_models(self) -> None:
        """Import the app's ``models`` module, if it has one.

        Raises:
            ImproperlyConfigured: importing it raised; the message names the
                app and the original exception is the ``__cause__``.

        .. versionadded:: 0.1
        """
        self.models_module = import_submodule(
            self.module, f"{self.name}.{MODELS_MODULE_NAME}", self.label
        )


def _config_class(entry: str) -> type[AppConfig]:
    """Import ``entry`` as the dotted path of an ``AppConfig`` subclass."""
    candidate = import_attribute(entry)
    if not (isinstance(candidate, type) and issubclass(candidate, AppConfig)):
        raise ImproperlyConfigured(
            f"App {entry!r} is neither a module nor an AppConfig subclass: "
            f"it is {candidate!r}."
        )
    return candidate


def _class_defines(config: AppConfig, attribute: str) -> bool:
    return any(attribute in vars(klass) for klass in type(config).__mro__)


def _suggest_label(label: str) -> str:
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in label)
    return cleaned if cleaned.isidentifier() else f"app_{cleaned}"


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
