"""Deliver the events of durable receivers until stopped (SIGTERM or Ctrl-C).

A first SIGTERM or SIGINT stops claiming and lets the events in hand finish;
a second one exits at once (their leases lapse, and another worker takes them
over).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

from ._app import (
    add_app_arguments,
    add_loglevel_option,
    add_queues_option,
    log_to_stderr,
    opened_outbox,
    queues_of,
)

NAME = "worker"
HELP = "deliver the events of durable receivers"


def configure(parser: argparse.ArgumentParser) -> None:
    add_app_arguments(parser)
    parser.add_argument(
        "-c",
        "--concurrency",
        type=int,
        default=1,
        help="events delivered at the same time (threads; default 1)",
    )
    add_queues_option(parser, "serve")
    add_loglevel_option(parser)
    parser.add_argument(
        "--lease",
        type=float,
        default=60.0,
        help="seconds an event stays with a worker before another may take it "
        "over; longer than the slowest receiver (default 60)",
    )
    parser.add_argument(
        "--prefetch",
        type=int,
        default=1,
        help="events each thread claims at once (default 1)",
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=0.5,
        help="seconds between looks at an idle outbox (default 0.5)",
    )


def run(args: argparse.Namespace) -> int:
    from ..durable import Settings
    from . import CommandError

    queues = queues_of(args)
    try:
        settings = Settings(
            queues=queues,
            concurrency=args.concurrency,
            lease=args.lease,
            poll_interval=args.poll,
            prefetch=args.prefetch,
        )
    except ValueError as error:
        raise CommandError(str(error)) from None
    with opened_outbox(args) as outbox:
        stop = threading.Event()

        def on_signal(number: int, frame: Any) -> None:
            if stop.is_set():
                os._exit(1)
            print(
                f"tocsin worker: {signal.Signals(number).name}: finishing the events "
                "in hand (again to quit now)",
                file=sys.stderr,
                flush=True,
            )
            stop.set()

        log_to_stderr(args)
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        where = outbox.require_engine().url.render_as_string(hide_password=True)
        print(
            f"tocsin worker {os.getpid()}: {outbox.table.name} on {where}, queues "
            f"{','.join(queues) if queues else '(all)'}, concurrency {settings.concurrency}",
            file=sys.stderr,
            flush=True,
        )
        try:
            outbox.transport.serve(outbox, settings, stop)
        except RuntimeError as error:
            raise CommandError(str(error)) from None
        print(f"tocsin worker {os.getpid()}: stopped", file=sys.stderr, flush=True)
    return 0
