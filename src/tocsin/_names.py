"""How the inspection tools name receivers, senders and source locations.

``tocsin signals``/``graph``/``check`` and the debug timeline show the same
names, so that a timeline recorded in one process matches the graph drawn in
another: ``module.qualname`` for a receiver (through decorators, bound
methods and partials), ``file:line`` of its source.
"""

from __future__ import annotations

import functools
import inspect
import os
import reprlib
import types

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["display_path", "qualified_name", "sender_label", "source_of"]

_short = reprlib.Repr()
_short.maxstring = _short.maxother = 60


def qualified_name(obj: object) -> str:
    if isinstance(obj, functools.partial):
        return f"functools.partial({qualified_name(obj.func)})"
    target = inspect.unwrap(obj) if callable(obj) else obj
    if isinstance(obj, types.MethodType):
        target = obj.__func__
    module = getattr(target, "__module__", None) or type(obj).__module__
    name = getattr(target, "__qualname__", None) or type(obj).__qualname__
    return f"{module}.{name}"


def source_of(receiver: object) -> tuple[str | None, int | None]:
    """The file (relative to the current directory when under it) and line."""
    target: Any = receiver
    while True:
        if isinstance(target, types.MethodType):
            target = target.__func__
        elif isinstance(target, functools.partial):
            target = target.func
        elif hasattr(target, "__wrapped__"):
            target = target.__wrapped__
        else:
            break
    code = getattr(target, "__code__", None)
    if code is None and not inspect.isfunction(target):
        call = vars(type(target)).get("__call__")  # an instance with __call__
        code = getattr(call, "__code__", None)
    if code is None:
        return None, None
    module = getattr(target, "__module__", None)
    return display_path(code.co_filename, module), code.co_firstlineno


def display_path(path: str, module: str | None = None) -> str:
    """``path`` relative to the current directory when under it, else to the
    directory that holds the top-level package of ``module``
    (``tocsin/apps/_registry.py``)."""
    cwd = os.getcwd().rstrip(os.sep) + os.sep
    if path.startswith(cwd):
        return path[len(cwd) :].replace(os.sep, "/")
    parts = path.replace(os.sep, "/").split("/")
    if module:
        # As many trailing parts as the module's dotted name has, plus the
        # file of a package's __init__.
        keep = module.count(".") + 1 + (parts[-1] == "__init__.py")
        return "/".join(parts[-keep:])
    return "/".join(parts)


def sender_label(sender: object) -> str | None:
    if sender is None:
        return None
    if isinstance(sender, type):
        return f"{sender.__module__}.{sender.__qualname__}"
    if isinstance(sender, str):
        return sender
    return _short.repr(sender)
