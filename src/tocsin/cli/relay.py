"""Publish the committed events of durable receivers to Celery, until stopped.

The module given to ``-A`` binds the outbox to the Celery app
(``tocsin.integrations.celery.bind``). The relay also republishes events
published but not done after the bound given to ``bind`` (lost messages).
SIGTERM or Ctrl-C stops it after the current pass.
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

NAME = "relay"
HELP = "publish the events of durable receivers to Celery"


def configure(parser: argparse.ArgumentParser) -> None:
    add_app_arguments(parser)
    parser.add_argument(
        "--poll",
        type=float,
        default=0.2,
        help="seconds between looks at an idle outbox (default 0.2)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=100,
        help="events published per transaction (default 100)",
    )
    add_queues_option(parser, "publish")
    add_loglevel_option(parser)


def run(args: argparse.Namespace) -> int:
    from ..integrations.celery import CeleryTransport
    from . import CommandError

    with opened_outbox(args) as outbox:
        transport = outbox.transport
        if not isinstance(transport, CeleryTransport):
            raise CommandError(
                f"{outbox!r} is not bound to Celery: call "
                "tocsin.integrations.celery.bind(celery_app, outbox) in the "
                "module given to -A"
            )
        try:
            relay = transport.relay(
                poll_interval=args.poll, batch=args.batch, queues=queues_of(args)
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        stop = threading.Event()

        def on_signal(number: int, frame: Any) -> None:
            stop.set()

        log_to_stderr(args)
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        print(
            f"tocsin relay {os.getpid()}: {outbox.table.name} to "
            f"{transport.app.conf.broker_url or '(default broker)'}, queues "
            f"{','.join(relay.queues) if relay.queues else '(all)'}",
            file=sys.stderr,
            flush=True,
        )
        relay.run(stop)
        print(f"tocsin relay {os.getpid()}: stopped", file=sys.stderr, flush=True)
    return 0
