"""``-A module[:attribute]``: load the application, as Celery and uvicorn do."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import CommandError

__all__ = [
    "add_app_arguments",
    "add_app_option",
    "add_loglevel_option",
    "add_queues_option",
    "load_app",
    "log_to_stderr",
    "opened_outbox",
    "queues_of",
]


def add_app_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("-A", "--app", metavar="MODULE[:ATTR]", help=help_text)


def add_app_arguments(parser: argparse.ArgumentParser) -> None:
    add_app_option(
        parser,
        "the application module to import (it connects the durable "
        "receivers and creates the Outbox); ATTR names the Outbox if the "
        "module holds several",
    )
    parser.add_argument(
        "--database",
        metavar="URL",
        help="SQLAlchemy URL of the database that holds the outbox "
        "(default: the engine given to Outbox(engine=...))",
    )


def add_queues_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "-Q",
        "--queues",
        help=f"comma-separated outbox queues to {what} (default: every queue)",
    )


def add_loglevel_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-l",
        "--loglevel",
        default="info",
        choices=["debug", "info", "warning", "error", "critical"],
        help="log level (default info)",
    )


def log_to_stderr(args: argparse.Namespace) -> None:
    """Log at ``--loglevel`` to standard error, one timestamped line a record."""
    logging.basicConfig(
        level=args.loglevel.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def queues_of(args: argparse.Namespace) -> tuple[str, ...] | None:
    """The queues given to ``-Q``, or ``None`` for every queue."""
    if not args.queues:
        return None
    return tuple(q.strip() for q in args.queues.split(",") if q.strip()) or None


def load_app(spec: str) -> Any:
    """Import ``module`` of ``module:attr`` (from the current directory too)."""
    module_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            raise CommandError(
                f"-A {spec}: no module named {error.name!r} (run from the "
                "directory that contains it, or install it)"
            ) from error
        raise
    if not attr:
        return module
    try:
        return getattr(module, attr)
    except AttributeError:
        raise CommandError(
            f"-A {spec}: module {module_name!r} has no {attr!r}"
        ) from None


@contextmanager
def opened_outbox(args: argparse.Namespace) -> Iterator[Any]:
    """The outbox named by ``-A`` and ``--database``; closes what it connected."""
    outbox = _load_outbox(args)
    try:
        yield outbox
    finally:
        if args.database:
            outbox.require_engine().dispose()


def _load_outbox(args: argparse.Namespace) -> Any:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ArgumentError

    from ..durable import Outbox, active_outbox

    outbox: Outbox | None = None
    if args.app:
        found = load_app(args.app)
        if ":" in args.app:
            if not isinstance(found, Outbox):
                raise CommandError(f"-A {args.app} is {found!r}, not a tocsin Outbox")
            outbox = found
    if outbox is None:
        try:
            outbox = active_outbox()
        except RuntimeError:
            if not args.database:
                raise CommandError(
                    "no outbox: give -A the module that creates your "
                    "tocsin.durable.Outbox, or --database URL"
                ) from None
            outbox = Outbox()
    if args.database:
        try:
            outbox.bind(create_engine(args.database))
        except ArgumentError as error:
            raise CommandError(f"--database {args.database}: {error}") from None
    if outbox.engine is None:
        raise CommandError(
            f"{outbox!r} has no database: pass --database URL, or "
            "Outbox(..., engine=engine) in the application"
        )
    return outbox
