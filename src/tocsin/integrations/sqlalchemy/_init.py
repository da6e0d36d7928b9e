"""pre_init and post_init: on construction (a wrapped ``__init__``) and on load."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import InstanceState, Mapper, ORMExecuteState

from ...signals import post_init, pre_init
from . import _state

__all__: list[str] = []


def wrap_init(cls: type) -> None:
    """Make constructing ``cls`` send pre_init and post_init.

    SQLAlchemy has an event before ``__init__`` but none after it, so each
    mapped class's own (instrumented) ``__init__`` is wrapped; only the wrapper
    of the instance's own class sends, so a ``super().__init__()`` chain sends
    once.
    """
    original = cls.__dict__.get("__init__")
    if original is None or getattr(original, "_tocsin_wrapped", False):
        return

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if type(self) is not cls:
            original(self, *args, **kwargs)
            return
        if pre_init.has_listeners(cls):
            pre_init.send(cls, args=args, kwargs=dict(kwargs))
        original(self, *args, **kwargs)
        if post_init.has_listeners(cls):
            post_init.send(cls, instance=self)

    __init__._tocsin_wrapped = True  # type: ignore[attr-defined]
    cls.__init__ = __init__  # type: ignore[misc]


def unwrap_init(cls: type) -> None:
    """Give ``cls`` back the ``__init__`` that :func:`wrap_init` wrapped."""
    wrapper = cls.__dict__.get("__init__")
    if getattr(wrapper, "_tocsin_wrapped", False):
        cls.__init__ = wrapper.__wrapped__  # type: ignore[misc, union-attr]


# A listener for SQLAlchemy's per-row "load" event costs every query about 10%
# even when it returns at once, so it is registered only once some pre_init or
# post_init receiver exists for an installed model: install() checks, and so
# does every ORM SELECT, for its main model, that model's subclasses and the
# models it is related to, before its rows are loaded.
_load_events = False


def listened(cls: type) -> bool:
    """Whether ``cls`` has a pre_init or post_init receiver."""
    return pre_init.has_listeners(cls) or post_init.has_listeners(cls)


def listen_to_loads(base: type) -> None:
    """Send the init signals for loads of ``base``'s models, if they are wanted yet."""
    if _load_events:
        event.listen(base, "load", _on_load, raw=True, propagate=True)


def stop_listening_to_loads(base: type, last: bool) -> None:
    """Undo :func:`listen_to_loads`; ``last``: no installed base is left."""
    global _load_events
    if event.contains(base, "load", _on_load):
        event.remove(base, "load", _on_load)
    if last:
        _load_events = False


def enable_load_events() -> None:
    """Start listening to loads, for every installed base."""
    global _load_events
    with _state.lock:
        if _load_events:
            return
        for base in _state.bases:
            event.listen(base, "load", _on_load, raw=True, propagate=True)
        _load_events = True


def on_select(state: ORMExecuteState) -> None:
    """Before an ORM SELECT: listen to loads if its rows may need the init signals."""
    if not _load_events and _select_needs_load_events(state.bind_mapper):
        enable_load_events()


def _select_needs_load_events(mapper: Mapper[Any] | None) -> bool:
    if mapper is None or not _state.installed(mapper):
        return False
    related = [rel.mapper for rel in mapper.relationships]
    for candidate in (mapper, *related):
        for each in candidate.self_and_descendants:
            if listened(each.class_):
                return True
    return False


def _on_load(state: InstanceState[Any], context: Any) -> None:
    cls = state.class_
    if pre_init.has_listeners(cls):
        values = state.dict
        args = tuple(values[key] for key in _column_keys(state.mapper) if key in values)
        pre_init.send(cls, args=args, kwargs={})
    if post_init.has_listeners(cls):
        post_init.send(cls, instance=state.object)


@functools.cache
def _column_keys(mapper: Mapper[Any]) -> tuple[str, ...]:
    return tuple(prop.key for prop in mapper.column_attrs)
