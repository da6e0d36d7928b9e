"""``python -m benchmarks.service``: serve the service with uvicorn on 127.0.0.1.

Stops on SIGTERM or SIGINT. With ``--profile PATH`` the whole run is profiled
with cProfile and the statistics are written to PATH when the server stops
(read them with ``python -m pstats PATH``).
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import signal
import time

import uvicorn

from .app import create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.service")
    parser.add_argument("--database-url", required=True, help="an async URL")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--with-tocsin", action="store_true")
    parser.add_argument("--profile", metavar="PATH")
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="info also logs every request (uvicorn's access log)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(levelname)s %(name)s %(message)s"
    )
    app = create_app(args.database_url, with_tocsin=args.with_tocsin)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=args.port,
            lifespan="on",
            log_level=args.log_level,
            access_log=args.log_level in ("debug", "info"),
            log_config=None,  # keep the basicConfig above: one format, stderr
            timeout_graceful_shutdown=5,
            # The load keeps its connections busy; a loaded loop can be late
            # to read a request that arrived in time on an idle connection.
            timeout_keep_alive=60,
        )
    )
    if args.profile is None:
        server.run()
        return 0
    # uvicorn re-raises the SIGTERM that stopped it once it has shut down;
    # with the default handler that would end the process before the dump.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    # CPU time, not wall time: the machine may be shared; waiting is not cost.
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    try:
        server.run()
    finally:
        profiler.disable()
        profiler.dump_stats(args.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
