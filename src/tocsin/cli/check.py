"""Check that the application is configured so that no event is lost.

Today it checks the Celery app that durable receivers are bound to
(``tocsin.integrations.celery.check_configuration``): each problem is
printed with its fix, and the status is 1 if there is any.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._app import load_app

NAME = "check"
HELP = "refuse configurations that lose events (Celery settings)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-A",
        "--app",
        metavar="MODULE[:ATTR]",
        required=True,
        help="the module that creates the Celery app and binds the outbox to "
        "it; ATTR names the Celery app if the module holds several",
    )


def run(args: argparse.Namespace) -> int:
    from . import CommandError

    found = load_app(args.app)
    try:
        from celery import Celery
    except ImportError:
        raise CommandError(
            'tocsin check needs Celery: pip install "tocsin[celery]"'
        ) from None
    apps: list[Any]
    if isinstance(found, Celery):
        apps = [found]
    else:
        apps = [value for value in vars(found).values() if isinstance(value, Celery)]
        if len(set(map(id, apps))) != 1:
            raise CommandError(
                f"-A {args.app}: found {len(apps)} Celery apps; name one as "
                "module:attribute"
            )
    from ..integrations.celery import check_configuration

    problems = check_configuration(apps[0])
    for problem in problems:
        print(f"tocsin check: {problem}", file=sys.stderr)
    if problems:
        print(f"tocsin check: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("tocsin check: no problem found")
    return 0
