"""Check the wiring of the signals; exit 1 and say why when something is wrong.

Each check is a function of :data:`CHECKS`: it gets the loaded application
(an :class:`~tocsin.cli._inspect.Inspection`) and returns its findings, one
line each, saying what is wrong and how to fix it. Another check is one more
function added with :func:`register`.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections import defaultdict
from collections.abc import Callable

from ._inspect import Inspection, LoadError, add_inspect_arguments, inspect_app

NAME = "check"
HELP = "find dead receivers, duplicate dispatch_uids, unresolved senders (exit 1)"

Check = Callable[[Inspection], list[str]]

#: The checks, in the order they run and report.
CHECKS: list[Check] = []


def register(check: Check) -> Check:
    """Add ``check`` to :data:`CHECKS` (usable as a decorator)."""
    CHECKS.append(check)
    return check


def configure(parser: argparse.ArgumentParser) -> None:
    add_inspect_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        inspection = inspect_app(args)
    except LoadError as error:
        lazy = _unresolved_on_load(error)
        if lazy is None:
            print(error, file=sys.stderr)
        else:
            print(f"{NAME}: unresolved lazy sender: {lazy}")
        return 1
    findings = [
        (check.__name__, line) for check in CHECKS for line in check(inspection)
    ]
    for name, line in findings:
        print(f"{name.replace('_', ' ')}: {line}")
    count = sum(len(e.receivers) for e in inspection.signals)
    if findings:
        print(f"{len(findings)} problem{'s' * (len(findings) != 1)} found")
        return 1
    print(
        f"no problem found ({len(inspection.signals)} signals, {count} receivers, "
        f"{len(CHECKS)} checks)"
    )
    return 0


def _unresolved_on_load(error: LoadError) -> str | None:
    from ..apps import LazyReferenceError

    cause = error.__cause__
    return str(cause) if isinstance(cause, LazyReferenceError) else None


@register
def dead_receiver(inspection: Inspection) -> list[str]:
    return [
        f"{row.name} ({row.location}) was connected to {entry.name} with a weak "
        "reference and garbage collected before the application finished "
        "loading: it will never be called. Keep a reference to it, or connect "
        "it with weak=False."
        for entry in inspection.signals
        for row in entry.receivers
        if row.dead
    ]


@register
def duplicate_dispatch_uid(inspection: Inspection) -> list[str]:
    found = []
    # A second connect() under a uid already taken is silently ignored.
    taken: dict[tuple[int, object, int], str] = {}
    for connection in inspection.connections:
        signal = connection.signal()
        if signal is None or connection.dispatch_uid is None:
            continue
        key = (id(signal), connection.dispatch_uid, connection.sender_id)
        first = taken.setdefault(key, connection.name)
        if first != connection.name:
            found.append(
                f"{connection.name} ({connection.file}:{connection.line}) was not "
                f"connected to {inspection.label(signal)}: dispatch_uid "
                f"{connection.dispatch_uid!r} is already {first}'s. Give it a "
                "dispatch_uid of its own."
            )
    # The same uid on several signals is usually a copied line.
    signals_of: dict[str, list[str]] = defaultdict(list)
    for entry in inspection.signals:
        for row in entry.receivers:
            if (
                row.dispatch_uid is not None
                and entry.name not in signals_of[row.dispatch_uid]
            ):
                signals_of[row.dispatch_uid].append(entry.name)
    found += [
        f"dispatch_uid {uid!r} is used on {len(names)} signals ({', '.join(names)}): "
        "a dispatch_uid names one connection; give each its own."
        for uid, names in signals_of.items()
        if len(names) > 1
    ]
    return found


@register
def unresolved_lazy_sender(inspection: Inspection) -> list[str]:
    return [
        f"{reference}: the model was never registered. Install the app that "
        'defines it, or fix the "app_label.ModelName" string.'
        for reference in inspection.registry.pending_references()
    ]


@register
def durable_receiver_not_importable(inspection: Inspection) -> list[str]:
    if "tocsin.durable" not in sys.modules:
        return []  # nothing was connected durably
    from ..durable import payload
    from ..durable.option import bindings

    found = []
    for binding in bindings():
        receiver = binding.receiver
        path = payload.import_path(receiver)
        why = ""
        if path is None or path.startswith("__main__:"):
            why = "it has no module a worker can import"
        else:
            try:
                target = payload.resolve(path)
            except LookupError as error:
                why = str(error)
            else:
                if target is not receiver and inspect.unwrap(target) is not receiver:
                    why = f"{path} is now another object"
        if why:
            found.append(
                f"durable receiver {binding.name!r} ({path or receiver!r}) cannot be "
                f"imported by name: {why}. A worker imports it by name: keep it a "
                "function at the top level of a module, under its own name."
            )
    return found


@register
def unsafe_celery_settings(inspection: Inspection) -> list[str]:
    """The Celery apps of the application, checked for settings that lose
    events (see :func:`tocsin.integrations.celery.check_configuration`)."""
    celery = sys.modules.get("celery")
    if celery is None:
        return []  # the application does not use Celery
    from ..integrations.celery import check_configuration

    module_name, _, attribute = inspection.spec.partition(":")
    module = sys.modules.get(module_name)
    candidates = [getattr(module, attribute, None)] if attribute else []
    candidates += list(vars(module).values()) if module is not None else []
    apps = {id(app): app for app in candidates if isinstance(app, celery.Celery)}
    return [problem for app in apps.values() for problem in check_configuration(app)]
