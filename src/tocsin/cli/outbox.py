"""Inspect the outbox of durable receivers; replay dead events."""

from __future__ import annotations

import argparse
import time

from ._app import add_app_arguments, opened_outbox

NAME = "outbox"
HELP = "inspect the outbox, list and replay dead events"


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_text in [
        ("status", "count the events by state; the age of the oldest pending one"),
        ("dead", "list the dead events with their last error"),
        ("replay", "give dead events a fresh set of attempts"),
        ("create", "create the outbox table if it does not exist"),
    ]:
        action = actions.add_parser(name, help=help_text, description=help_text)
        add_app_arguments(action)
        if name == "replay":
            action.add_argument(
                "rows",
                nargs="*",
                type=int,
                metavar="ROW",
                help="row ids of dead events",
            )
            action.add_argument(
                "--all", action="store_true", help="replay every dead event"
            )
        if name == "dead":
            action.add_argument(
                "--limit", type=int, default=None, help="list at most this many"
            )


def run(args: argparse.Namespace) -> int:
    from .. import durable
    from . import CommandError

    if args.action == "replay" and bool(args.rows) == bool(args.all):
        raise CommandError("replay takes row ids of dead events, or --all (not both)")
    with opened_outbox(args) as outbox:
        if args.action == "create":
            outbox.create()
            print(f"{outbox.table.name}: ready")
        elif args.action == "status":
            status = durable.status(outbox)
            for state in ("pending", "retrying", "running", "done", "dead"):
                print(f"{state:<9}{getattr(status, state):>8}")
            age = status.oldest_pending_age
            print(f"oldest pending: {'-' if age is None else f'{age:.1f} s ago'}")
        elif args.action == "dead":
            events = durable.dead(outbox, args.limit)
            for event in events:
                when = time.strftime(
                    "%Y-%m-%d %H:%M:%S", time.gmtime(event.died_at or event.created_at)
                )
                print(
                    f"row {event.row}  {event.receiver}  queue {event.queue}  "
                    f"{event.attempts} attempts  died {when} UTC  event {event.event_id}"
                )
                print("    " + "\n    ".join(event.last_error.splitlines()))
            print(f"{len(events)} dead event{'s' * (len(events) != 1)}")
        else:
            try:
                count = durable.replay(outbox, None if args.all else args.rows)
            except LookupError as error:
                raise CommandError(str(error)) from None
            print(f"{count} event{'s' * (count != 1)} pending again")
    return 0
