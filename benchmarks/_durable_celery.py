"""The Celery app of the Celery benchmark: ``celery -A benchmarks._durable_celery worker``.

It binds the durable benchmark's outbox to Celery; the environment gives the
broker (``BENCH_BROKER``) and the database (``BENCH_DATABASE``).
"""

from __future__ import annotations

import os

from celery import Celery
from sqlalchemy import create_engine

from tocsin.integrations.celery import bind

from . import _durable_app

app = Celery("tocsin_bench", broker=os.environ["BENCH_BROKER"])
app.conf.update(
    broker_connection_retry_on_startup=True, worker_hijack_root_logger=False
)
_durable_app.outbox.bind(
    create_engine(
        os.environ["BENCH_DATABASE"],
        connect_args={"timeout": 30}
        if os.environ["BENCH_DATABASE"].startswith("sqlite")
        else {},
    )
)
transport = bind(app, _durable_app.outbox)
