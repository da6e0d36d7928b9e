"""``make demo``: serve the shop on 127.0.0.1 and drive it with real requests.

For each request it prints the signals sent, what the receivers did, and how
long each receiver took (from the observation hook, ``tocsin.observe``).
``--serve`` keeps the server running for a person to try in a browser.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from tocsin import durable
from tocsin import signals as catalog
from tocsin.apps import apps
from tocsin.debug import TimelineMiddleware
from tocsin.durable import Settings, Worker
from tocsin.integrations import sqlalchemy as model_signals

from . import mailer, timeline
from .models import Base, outbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument(
        "--serve", action="store_true", help="keep serving until Ctrl-C"
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port (default: a free one)"
    )
    args = parser.parse_args(argv)

    database = Path(tempfile.mkdtemp(prefix="tocsin-shop-")) / "shop.db"
    engine = create_async_engine(f"sqlite+aiosqlite:///{database}")
    # Start-up, as an application does it once: model signals for the shop's
    # models, then the app registry, whose ShopConfig.ready() imports signals.py.
    model_signals.install(Base, databases={engine: "default"})
    apps.populate(["examples.shop"])
    asyncio.run(_create_tables(engine))
    from .signals import order_completed  # connected by ready() already

    # The worker that delivers durable receivers (the welcome email), as a
    # thread of this process; in production a process of its own:
    # `tocsin worker -A examples.shop.signals --database sqlite:///shop.db`.
    outbox.bind(create_engine(f"sqlite:///{database}"))
    worker = Worker(outbox, Settings(poll_interval=0.05))
    worker.start()

    timeline.mark_commits()
    timeline.time_receivers()
    timeline.trace(
        catalog.request_started,
        catalog.pre_save,
        catalog.post_save,
        catalog.user_logged_in,
        catalog.user_login_failed,
        catalog.user_logged_out,
        catalog.request_finished,
        order_completed,
    )

    from .web import create_app

    # The live timeline of each request's signals, at /_tocsin/ (loopback
    # clients only): a debug tool, on here because this is a demo.
    app = TimelineMiddleware(
        create_app(async_sessionmaker(engine, expire_on_commit=False)), debug=True
    )
    port = args.port or _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            print("the server did not start", file=sys.stderr)
            return 1
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    print(f"tocsin demo: the shop is served by uvicorn at {url} (SQLite: {database})")
    print(f"timeline of each request's signals: {url}/_tocsin/\n")
    _print_wiring()
    try:
        if args.serve:
            print(
                f"\nOpen {url} in a browser; the signals of each request print here. Ctrl-C stops.\n"
            )
            timeline.entries.clear()
            _follow(thread)
        else:
            _drive(url)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        worker.stop(timeout=10)
    return 0


async def _create_tables(engine: Any) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _print_wiring() -> None:
    print("Receivers wired by ShopConfig.ready() (from Signal.receivers_info()):")
    from .signals import order_completed

    for signal in (
        catalog.post_save,
        catalog.user_logged_in,
        catalog.user_login_failed,
        catalog.user_logged_out,
        order_completed,
    ):
        for info in signal.receivers_info():
            if info.module != "examples.shop.signals":
                continue
            sender = getattr(info.sender, "__name__", "any sender")
            extras = ", ".join(
                [f"{key}={value}" for key, value in info.options.items()]
                + ([f"dispatch_uid={info.dispatch_uid!r}"] if info.dispatch_uid else [])
            )
            print(
                f"  {signal.name:<18} {info.qualname:<20} sender={sender:<10} "
                f"signals.py:{info.line} {extras}"
            )


STEPS: list[tuple[str, dict[str, Any], str]] = [
    ("/signup", {"email": "alice@example.com", "password": "correct horse"}, ""),
    ("/login", {"email": "alice@example.com", "password": "wrong guess"}, ""),
    ("/login", {"email": "alice@example.com", "password": "correct horse"}, ""),
    ("/orders", {"total_cents": 4200}, "token"),
    ("/logout", {}, "token"),
]


def _drive(url: str) -> None:
    token = ""
    with httpx.Client(base_url=url, timeout=10) as client:
        for path, body, auth in STEPS:
            timeline.entries.clear()
            timeline.request_done.clear()
            headers = {"authorization": f"Bearer {token}"} if auth else {}
            response = client.post(path, json=body, headers=headers)
            if not timeline.request_done.wait(timeout=10):
                raise RuntimeError(f"request_finished was not sent for {path}")
            _delivered()
            token = response.json().get("token", token)
            shown = {
                k: "(not shown)" if k == "password" else v for k, v in body.items()
            }
            print(f"\nPOST {path} {json.dumps(shown)} -> {response.status_code}")
            print("\n".join(timeline.entries))
            print(timeline.timing_line())
    print(f"\nOutbox ({len(mailer.outbox)} emails):")
    for to, text in mailer.outbox:
        print(f"  to {to}: {text}")


def _delivered() -> None:
    """Wait until the worker has delivered the events of the request."""
    deadline = time.monotonic() + 30  # generous: a loaded CI machine
    while time.monotonic() < deadline:
        status = durable.status(outbox)
        # A row is done once its transaction commits, a moment before the
        # worker's thread records that commit in the timeline: wait for both.
        if status.pending == status.retrying == status.running == 0 and (
            timeline.worker_commits == status.done
        ):
            return
        time.sleep(0.02)
    raise RuntimeError(f"the worker did not deliver the durable events: {status}")


def _follow(thread: threading.Thread) -> None:
    try:
        while thread.is_alive():
            if timeline.request_done.wait(timeout=0.2):
                timeline.request_done.clear()
                _delivered()
                print("\n".join(timeline.entries), flush=True)
                print(timeline.timing_line() + "\n", flush=True)
                timeline.entries.clear()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
