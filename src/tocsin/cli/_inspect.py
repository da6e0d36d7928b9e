"""Load an application for inspection and describe its signals.

Used by ``tocsin signals``, ``check`` and ``graph``. Loading imports the
``-A`` module, populates the app registry (so that every ``ready()`` runs)
and, meanwhile, notes each ``Signal.connect`` call: a receiver connected
weakly that was garbage collected before loading ended is *dead* (it will
never be called), and a second connection under a ``dispatch_uid`` already
taken was silently ignored. Nothing is sent and nothing stays connected that
the application did not connect itself.

Signals are discovered in the catalog (:mod:`tocsin.signals`), in every
module of the application's packages (the ``-A`` module's top-level package
and each installed app's) and among the signals connected to while loading.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import traceback
import types
import weakref
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .. import Signal
from .._names import qualified_name, sender_label, source_of
from . import CommandError
from ._app import add_app_option, load_app

__all__ = [
    "Connection",
    "Inspection",
    "LoadError",
    "ReceiverRow",
    "SignalEntry",
    "add_inspect_arguments",
    "inspect_app",
    "loaded",
]

APP_VARIABLE = "TOCSIN_APP"


def add_inspect_arguments(parser: argparse.ArgumentParser) -> None:
    add_app_option(
        parser,
        "the application to load: a module, or module:attr naming a "
        f"tocsin.apps.Registry (default: ${APP_VARIABLE})",
    )
    parser.add_argument(
        "--internal",
        action="store_true",
        help="show tocsin's own receivers too (the app registry's, ...)",
    )


@dataclass(frozen=True)
class ReceiverRow:
    """One receiver of a signal, as the inspection commands show it."""

    name: str  # module.qualname
    file: str | None
    line: int | None
    sender: str | None  # None: every sender
    dispatch_uid: str | None
    priority: float
    weak: bool
    is_async: bool
    on_commit: bool
    durable: str | None  # the queue
    durable_name: str | None
    dead: bool

    @property
    def internal(self) -> bool:
        """One of tocsin's own receivers (hidden unless ``--internal``)."""
        return self.name.startswith("tocsin.")

    @property
    def location(self) -> str:
        if self.file is None:
            return "?"
        return f"{self.file}:{self.line}" if self.line else self.file

    @property
    def flags(self) -> list[str]:
        flags = []
        if self.is_async:
            flags.append("async")
        if self.weak:
            flags.append("weak")
        if self.on_commit:
            flags.append("on_commit")
        if self.durable is not None:
            flags.append(f"durable:{self.durable}")
        if self.dead:
            flags.append("dead")
        return flags


@dataclass
class SignalEntry:
    name: str
    signal: Signal
    receivers: list[ReceiverRow] = field(default_factory=list)


@dataclass
class Connection:
    """One ``connect()`` call seen while loading."""

    signal: weakref.ref[Signal]
    receiver: Callable[[], object]
    name: str
    file: str | None
    line: int | None
    sender: str | None
    sender_id: int
    dispatch_uid: Hashable | None
    weak: bool
    priority: float


@dataclass
class Inspection:
    spec: str
    registry: Any
    signals: list[SignalEntry]
    connections: list[Connection]
    load_error: BaseException | None = None

    def label(self, signal: Signal) -> str:
        for entry in self.signals:
            if entry.signal is signal:
                return entry.name
        return signal.name or repr(signal)


class LoadError(Exception):
    """The application failed to import or to populate (exit status 1)."""


def loaded(args: argparse.Namespace) -> Inspection | None:
    """:func:`inspect_app`, or ``None`` once the failure is printed."""
    try:
        return inspect_app(args)
    except LoadError as error:
        print(error, file=sys.stderr)
        return None


def inspect_app(args: argparse.Namespace) -> Inspection:
    """Load the application named by ``-A`` (or ``$TOCSIN_APP``).

    Raises:
        CommandError: no application was named (a usage error).
        LoadError: importing or populating the application failed; the
            message holds the traceback.
    """
    spec = args.app or os.environ.get(APP_VARIABLE)
    if not spec:
        raise CommandError(
            f"no application: give -A MODULE[:ATTR], or set ${APP_VARIABLE}"
        )
    with _recording() as connections:
        try:
            found = load_app(spec)
            registry = _populate(spec, found)
        except CommandError as error:
            raise LoadError(str(error)) from error
        except Exception as error:
            message = "".join(traceback.format_exception(error))
            raise LoadError(
                f"{message}tocsin: the application {spec} failed to load"
            ) from error
    gc.collect()  # a receiver held by nothing but a weak reference dies now
    signals = _discover(spec, registry, connections)
    if not getattr(args, "internal", False):
        for entry in signals:
            entry.receivers = [r for r in entry.receivers if not r.internal]
    return Inspection(spec, registry, signals, connections)


def _populate(spec: str, found: object) -> Any:
    from ..apps import Registry, apps

    registry = found if isinstance(found, Registry) else apps
    if not registry.ready:
        module = sys.modules[spec.partition(":")[0]]
        installed = getattr(module, "INSTALLED_APPS", None)
        registry.populate(installed or [module.__name__])
    return registry


@contextmanager
def _recording() -> Iterator[list[Connection]]:
    """Note every ``Signal.connect`` call made inside the block."""
    seen: list[Connection] = []
    original = Signal.connect

    def connect(
        self: Signal,
        receiver: Callable[..., Any],
        sender: object = None,
        weak: bool = True,
        dispatch_uid: Hashable | None = None,
        **options: Any,
    ) -> None:
        original(self, receiver, sender, weak, dispatch_uid, **options)
        seen.append(_connection(self, receiver, sender, weak, dispatch_uid, options))

    Signal.connect = connect  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        Signal.connect = original  # type: ignore[method-assign]


def _connection(
    signal: Signal,
    receiver: Callable[..., Any],
    sender: object,
    weak: bool,
    dispatch_uid: Hashable | None,
    options: dict[str, Any],
) -> Connection:
    held: Callable[[], object]
    if not weak:
        held = lambda: receiver  # noqa: E731 - alive while connected
    elif isinstance(receiver, types.MethodType):
        held = weakref.WeakMethod(receiver)
    else:
        held = weakref.ref(receiver)
    file, line = source_of(receiver)
    return Connection(
        weakref.ref(signal),
        held,
        qualified_name(receiver),
        file,
        line,
        sender_label(sender),
        id(sender),
        dispatch_uid,
        weak,
        options.get("priority", 0),
    )


# -- describing -----------------------------------------------------------------------


def uid_label(uid: Hashable | None) -> str | None:
    if uid is None:
        return None
    return uid if isinstance(uid, str) else repr(uid)


# -- discovering ----------------------------------------------------------------------


def _discover(
    spec: str, registry: Any, connections: list[Connection]
) -> list[SignalEntry]:
    from .. import signals as catalog

    names: dict[int, tuple[Signal, list[tuple[str, str]]]] = {}

    def scan(module: types.ModuleType) -> None:
        for attr, value in list(vars(module).items()):
            if isinstance(value, Signal):
                found = names.setdefault(id(value), (value, []))
                found[1].append((module.__name__, attr))

    scan(catalog)
    roots = {spec.partition(":")[0].split(".")[0]}
    roots.update(config.name for config in registry.get_app_configs())
    for name in sorted(sys.modules):
        module = sys.modules[name]
        if isinstance(module, types.ModuleType) and any(
            name == root or name.startswith(root + ".") for root in roots
        ):
            scan(module)
    for connection in connections:
        signal = connection.signal()
        if signal is not None and id(signal) not in names:
            names[id(signal)] = (signal, [])

    entries = []
    for signal, places in names.values():
        entry = SignalEntry(_signal_name(signal, places, catalog.__name__), signal)
        entry.receivers = _rows(signal, connections)
        entries.append(entry)
    catalog_order = {id(v): i for i, v in enumerate(vars(catalog).values())}
    entries.sort(
        key=lambda e: (catalog_order.get(id(e.signal), len(catalog_order)), e.name)
    )
    return entries


def _signal_name(signal: Signal, places: list[tuple[str, str]], catalog: str) -> str:
    if not places:
        return signal.name or repr(signal)
    for module, attr in places:
        if module == catalog:
            return f"{module}.{attr}"
    named = [p for p in places if p[1] == signal.name]
    module, attr = min(named or places, key=lambda p: (len(p[0]), p))
    return f"{module}.{attr}"


def _rows(signal: Signal, connections: list[Connection]) -> list[ReceiverRow]:
    rows = []
    for info in signal.receivers_info():
        file, line = source_of(info.receiver)
        durable = info.options.get("durable")
        policy = getattr(durable, "policy", durable)
        rows.append(
            ReceiverRow(
                name=qualified_name(info.receiver),
                file=file,
                line=line,
                sender=sender_label(info.sender),
                dispatch_uid=uid_label(info.dispatch_uid),
                priority=info.priority,
                weak=info.weak,
                is_async=info.is_async,
                on_commit=bool(info.options.get("on_commit")),
                durable=None if durable is None else getattr(policy, "queue", "?"),
                durable_name=getattr(durable, "name", None),
                dead=False,
            )
        )
    for connection in connections:
        if connection.signal() is signal and connection.receiver() is None:
            rows.append(
                ReceiverRow(
                    name=connection.name,
                    file=connection.file,
                    line=connection.line,
                    sender=connection.sender,
                    dispatch_uid=uid_label(connection.dispatch_uid),
                    priority=connection.priority,
                    weak=True,
                    is_async=False,
                    on_commit=False,
                    durable=None,
                    durable_name=None,
                    dead=True,
                )
            )
    return rows
