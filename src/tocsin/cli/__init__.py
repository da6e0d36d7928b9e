"""The ``tocsin`` command (also ``python -m tocsin``).

Each subcommand is a module of this package with a ``NAME``, a ``HELP`` line,
``configure(parser)`` to add its arguments and ``run(args) -> int``; list it
in :data:`SUBCOMMANDS`. A module imports its dependencies inside ``run``, so
that ``tocsin --help`` works with none of the extras installed.

.. versionadded:: 0.1
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["SUBCOMMANDS", "CommandError", "main"]

#: The modules of the subcommands, in the order ``tocsin --help`` lists them.
SUBCOMMANDS = [
    "tocsin.cli.worker",
    "tocsin.cli.outbox",
    "tocsin.cli.signals",
    "tocsin.cli.check",
    "tocsin.cli.graph",
    "tocsin.cli.relay",
]


class CommandError(Exception):
    """A user error: printed as ``tocsin <command>: error: ...``, exit status 2.

    .. versionadded:: 0.1
    """


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tocsin", description="tocsin's command line: run workers, inspect them."
    )
    parser.add_argument(
        "-A",
        "--app",
        dest="global_app",
        metavar="MODULE[:ATTR]",
        help="the application to load, for any command (also accepted after it)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for path in SUBCOMMANDS:
        module: Any = importlib.import_module(path)
        sub = commands.add_parser(
            module.NAME, help=module.HELP, description=module.__doc__
        )
        module.configure(sub)
        sub.set_defaults(_run=module.run, _parser=sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tocsin`` with ``argv`` (default: the process's); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "app", None) is None:
        args.app = args.global_app
    try:
        status: int = args._run(args)
    except CommandError as error:
        args._parser.error(str(error))  # exits with status 2
    except BrokenPipeError:  # `tocsin signals | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return status


def entry_point() -> None:  # pragma: no cover - the installed script
    sys.exit(main())
