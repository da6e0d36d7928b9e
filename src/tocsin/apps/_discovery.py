"""Importing an app's modules: its package, its ``apps`` and ``models``
submodules, and the ``AppConfig`` class an entry of the app list names.

Every failure becomes an :exc:`ImproperlyConfigured` that names the entry as
it was written, and tells a module that does not exist (a typo, a missing
``sys.path`` entry) from one that raised while it was imported (the original
exception is then the ``__cause__``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import TypeVar, cast

from ._errors import ImproperlyConfigured, qualified

__all__ = [
    "APPS_MODULE_NAME",
    "MODELS_MODULE_NAME",
    "find_config_class",
    "import_app_module",
    "import_attribute",
    "import_named_package",
    "import_submodule",
]

MODELS_MODULE_NAME = "models"
APPS_MODULE_NAME = "apps"

C = TypeVar("C", bound=type)


def _is_missing(name: str, error: ModuleNotFoundError) -> bool:
    """Whether ``error`` says that ``name`` itself (or a parent) is missing,
    rather than something that the module imports."""
    missing = error.name
    return missing is not None and (name == missing or name.startswith(missing + "."))


def _import_failed(entry: str, error: BaseException) -> ImproperlyConfigured:
    return ImproperlyConfigured(
        f"App {entry!r}: importing it raised {type(error).__name__}: {error}"
    )


def import_app_module(entry: str) -> ModuleType | None:
    """Import ``entry`` as a module, or return ``None`` if no such module."""
    try:
        return importlib.import_module(entry)
    except ModuleNotFoundError as error:
        if _is_missing(entry, error):
            return None
        raise _import_failed(entry, error) from error
    except Exception as error:
        raise _import_failed(entry, error) from error


def import_named_package(entry: str, config_class: type, name: str) -> ModuleType:
    """Import the package that ``config_class.name`` (from ``entry``) names."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if not _is_missing(name, error):
            raise _import_failed(entry, error) from error
        raise ImproperlyConfigured(
            f"App {entry!r}: {qualified(config_class)}.name is {name!r}, "
            "but there is no such module. Check its spelling, and that "
            "its package is on sys.path."
        ) from None
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


def import_submodule(
    package: ModuleType, full_name: str, app: str
) -> ModuleType | None:
    """Import ``full_name`` (such as ``"shop.models"``) if ``package`` has it.

    Returns:
        The module, or ``None`` when the package has no such submodule.

    Raises:
        ImproperlyConfigured: importing it raised; the message names ``app``.
    """
    if not _has_submodule(package, full_name):
        return None
    try:
        return importlib.import_module(full_name)
    except Exception as error:
        raise ImproperlyConfigured(
            f"App {app!r}: importing {full_name!r} raised "
            f"{type(error).__name__}: {error}"
        ) from error


def find_config_class(entry: str, package: ModuleType, base: C) -> C | None:
    """The subclass of ``base`` (``AppConfig``) to use for the app package
    ``entry``: the one its ``apps`` submodule defines, or the one marked
    ``default = True`` there; ``None`` when there is none.

    Raises:
        ImproperlyConfigured: importing ``apps`` failed, or it defines
            several candidates and not exactly one default.
    """
    apps_name = f"{entry}.{APPS_MODULE_NAME}"
    apps_module = import_submodule(package, apps_name, entry)
    if apps_module is None:
        return None
    # Only classes defined in apps.py count, not ones it imports.
    candidates: list[C] = [
        cast("C", value)
        for value in vars(apps_module).values()
        if isinstance(value, type)
        and issubclass(value, base)
        and value is not base
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


def import_attribute(entry: str) -> object:
    """Import ``entry`` as ``"module.path.Attribute"`` and return the attribute.

    Raises:
        ImproperlyConfigured: there is no such module or attribute, or
            importing the module raised.
    """
    module_name, _, attribute = entry.rpartition(".")
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
    value = getattr(module, attribute, None)
    if value is None:
        raise ImproperlyConfigured(
            f"Cannot import app {entry!r}: module {module_name!r} has no "
            f"attribute {attribute!r} (and there is no module {entry!r})."
        )
    return value
