"""The JSON form of a send: what a durable receiver gets back in the worker.

JSON only, never pickle: unpickling data read from a database or a broker
runs code. Values are JSON values, plus tagged objects (a dict with one key
that starts with ``$``) for the Python types that senders use:

- a mapped SQLAlchemy instance becomes its class and primary key, and is
  fetched again in the worker's session (``None`` if the row is gone); an
  instance deleted in the sending transaction carries a snapshot of its
  columns instead, and comes back as a transient instance;
- a class (a model, the sender) becomes its import path;
- a ``Session`` becomes a marker for the worker's session;
- tuples, sets, datetimes, dates, times, decimals and UUIDs keep their type;
  a read-only mapping (``changes=`` of ``pre_save``/``post_save``) comes back
  read-only, and SQLAlchemy's ``UNKNOWN`` (an old value never loaded) as
  itself.

Anything else fails at send time with :class:`PayloadError`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import importlib
import json
import types
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import NoInspectionAvailable
from sqlalchemy.orm import Mapper, Session, configure_mappers
from sqlalchemy.orm.attributes import set_committed_value

from ..integrations.sqlalchemy import UNKNOWN

__all__ = ["VERSION", "PayloadError", "decode", "encode", "import_path", "resolve"]

#: The payload format; a worker refuses (dead-letters) newer ones.
VERSION = 1


class PayloadError(TypeError):
    """A send carries a value that a durable receiver cannot be given.

    .. versionadded:: 0.1
    """


def import_path(obj: Any) -> str | None:
    """``"module:Qualified.name"``, or ``None`` if it cannot be imported by name."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        return None
    if "<" in qualname:  # <lambda>, <locals>
        return None
    return f"{module}:{qualname}"


def resolve(path: str) -> Any:
    """The object at ``"module:Qualified.name"``.

    A class that this process has sent is found without an import (a script's
    ``__main__`` classes, for an in-process worker).

    Raises:
        LookupError: The module or the name does not exist (any more).
    """
    seen = _classes.get(path)
    if seen is not None:
        return seen
    module_name, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise LookupError(f"cannot import module {module_name!r} ({error})") from error
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise LookupError(f"{module_name!r} has no {qualname!r}") from None
    return obj


def encode(sender: Any, named: dict[str, Any], receiver: str) -> str:
    """The JSON text of a send.

    Raises:
        PayloadError: An argument holds a value that has no JSON form; the
            message names the argument and the receiver.
    """
    args = {}
    for key, value in named.items():
        try:
            args[key] = _encode(value)
        except _Unsupported as error:
            raise PayloadError(
                f"Cannot send {key}={error.value!r} to the durable receiver "
                f"{receiver}: {error.reason} Send JSON values, model instances, "
                "classes, datetimes, decimals or UUIDs (for example the primary "
                "key instead of the object), or make the receiver non-durable."
            ) from None
    try:
        encoded_sender = _encode(sender)
    except _Unsupported as error:
        raise PayloadError(
            f"Cannot send from sender={sender!r} to the durable receiver "
            f"{receiver}: {error.reason} A durable receiver's sender must be "
            "None, a string, a number or an importable class."
        ) from None
    return json.dumps(
        {"v": VERSION, "sender": encoded_sender, "args": args},
        allow_nan=False,
        separators=(",", ":"),
    )


def decode(text: str, session: Session) -> tuple[Any, dict[str, Any]]:
    """The sender and the named arguments of a send, for the worker.

    Raises:
        LookupError: The payload is from a newer tocsin, or names a model or
            class that no longer exists.
    """
    data = json.loads(text)
    version = data.get("v")
    if version != VERSION:
        raise LookupError(
            f"the payload has format version {version!r} but this worker reads "
            f"version {VERSION}: it was written by another version of tocsin; "
            "run the worker with the version of the sending application."
        )
    return (
        _decode(data["sender"], session),
        {key: _decode(value, session) for key, value in data["args"].items()},
    )


class _Unsupported(Exception):
    def __init__(self, value: Any, reason: str) -> None:
        self.value = value
        self.reason = reason


_TAGGED: dict[type, tuple[str, Callable[[Any], Any]]] = {
    dt.datetime: ("$datetime", dt.datetime.isoformat),
    dt.date: ("$date", dt.date.isoformat),
    dt.time: ("$time", dt.time.isoformat),
    decimal.Decimal: ("$decimal", str),
    uuid.UUID: ("$uuid", str),
}
_UNTAG: dict[str, Callable[[Any], Any]] = {
    "$datetime": dt.datetime.fromisoformat,
    "$date": dt.date.fromisoformat,
    "$time": dt.time.fromisoformat,
    "$decimal": decimal.Decimal,
    "$uuid": uuid.UUID,
}


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise _Unsupported(value, "JSON has no NaN or infinity.")
        return value
    tagged = _TAGGED.get(type(value))
    if tagged is not None:
        return {tagged[0]: tagged[1](value)}
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if isinstance(value, tuple):
        return {"$tuple": [_encode(item) for item in value]}
    if isinstance(value, set | frozenset):
        return {"$set": [_encode(item) for item in value]}
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise _Unsupported(value, "a JSON object's keys are strings.")
        encoded = {key: _encode(item) for key, item in value.items()}
        if any(key.startswith("$") for key in encoded):
            return {"$dict": encoded}  # not to be read back as a tagged value
        return encoded
    if isinstance(value, types.MappingProxyType):
        return {"$mapping": _encode(dict(value))}
    if value is UNKNOWN:
        return {"$unknown": None}
    if isinstance(value, Session):
        return {"$session": None}
    if isinstance(value, type):
        return {"$class": _class_path(value)}
    return _encode_instance(value)


def _encode_instance(value: Any) -> Any:
    try:
        state = sa_inspect(value)
    except NoInspectionAvailable:
        raise _Unsupported(
            value, f"a {type(value).__qualname__} object has no JSON form."
        ) from None
    mapper: Mapper[Any] = state.mapper
    path = _class_path(mapper.class_)
    if state.deleted or state.was_deleted:
        columns = {
            attr.key: _encode(state.dict.get(attr.key)) for attr in mapper.column_attrs
        }
        return {"$model": path, "deleted": columns}
    identity = state.identity
    if identity is None:
        raise _Unsupported(
            value, "the instance has no primary key yet (it was never flushed)."
        )
    return {"$model": path, "pk": [_encode(part) for part in identity]}


_classes: dict[str, type] = {}


def _class_path(cls: type) -> str:
    path = import_path(cls)
    if path is None:
        raise _Unsupported(cls, f"the class {cls.__qualname__} is local to a function.")
    _classes[path] = cls
    return path


def _decode(value: Any, session: Session) -> Any:
    if isinstance(value, list):
        return [_decode(item, session) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 or "$model" in value:
        tag = next(iter(value))
        if tag in _UNTAG:
            return _UNTAG[tag](value[tag])
        if tag == "$tuple":
            return tuple(_decode(item, session) for item in value[tag])
        if tag == "$set":
            return frozenset(_decode(item, session) for item in value[tag])
        if tag == "$dict":
            return {k: _decode(v, session) for k, v in value[tag].items()}
        if tag == "$mapping":
            return types.MappingProxyType(_decode(value[tag], session))
        if tag == "$unknown":
            return UNKNOWN
        if tag == "$session":
            return session
        if tag == "$class":
            return _resolve_class(value[tag])
        if tag == "$model":
            return _decode_instance(value, session)
    return {key: _decode(item, session) for key, item in value.items()}


def _resolve_class(path: str) -> Any:
    try:
        return resolve(path)
    except LookupError as error:
        raise LookupError(f"the class {path} no longer exists: {error}") from None


def _decode_instance(value: dict[str, Any], session: Session) -> Any:
    cls = _resolve_class(value["$model"])
    if "deleted" in value:
        mapper: Mapper[Any] = sa_inspect(cls)
        configure_mappers()  # a fresh worker may not have used the models yet
        instance = mapper.class_manager.new_instance()
        for key, column in value["deleted"].items():
            set_committed_value(instance, key, _decode(column, session))
        return instance
    pk = tuple(_decode(part, session) for part in value["pk"])
    return session.get(cls, pk if len(pk) > 1 else pk[0])
