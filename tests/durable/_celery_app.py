"""The Celery app of the Celery tests: ``celery -A _celery_app worker``.

It binds the durable test app's outbox (``_app``) to Celery. The environment
gives the broker (``TOCSIN_TEST_BROKER``), the database
(``TOCSIN_TEST_DATABASE``), and the transport's ``lease`` and
``republish_after`` (``TOCSIN_TEST_LEASE``, ``TOCSIN_TEST_REPUBLISH``);
``TOCSIN_TEST_UNSAFE=late-ack`` turns late acknowledgement off, and
``TOCSIN_TEST_UNSAFE=reject-on-worker-lost`` reject-on-worker-lost (a worker
must then refuse to start, unless ``TOCSIN_TEST_CHECK=off``: the negative
controls run such workers to show what they lose). With ``TOCSIN_TEST_SPANS``
set to a file, the worker traces its receivers (OpenTelemetry's SDK and
``TocsinInstrumentor``) and appends each finished span to it as a JSON line.
"""

from __future__ import annotations

import os

import _app
from celery import Celery
from sqlalchemy import create_engine, event

from tocsin.integrations.celery import bind

LEASE = float(os.environ.get("TOCSIN_TEST_LEASE", "2"))

app = Celery("tocsin_tests", broker=os.environ["TOCSIN_TEST_BROKER"])
app.conf.update(
    broker_connection_retry_on_startup=True,
    # Redis hands an unacknowledged message out again after this; at least
    # twice the task's time limit (the lease), as tocsin check demands.
    broker_transport_options={"visibility_timeout": 2 * LEASE + 1},
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
)
UNSAFE = {
    "late-ack": {"acks_late": False},
    "reject-on-worker-lost": {"reject_on_worker_lost": False},
}
unsafe = os.environ.get("TOCSIN_TEST_UNSAFE")
if unsafe:
    app.conf.task_annotations = {"tocsin.deliver": UNSAFE[unsafe]}

url = os.environ["TOCSIN_TEST_DATABASE"]
if url.startswith("sqlite"):
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _wal(connection: object, record: object) -> None:
        cursor = connection.cursor()  # type: ignore[attr-defined]
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

else:
    engine = create_engine(url)

_app.outbox.bind(engine)

if os.environ.get("TOCSIN_TEST_SPANS"):
    import _spans

    _spans.export_to(os.environ["TOCSIN_TEST_SPANS"])

transport = bind(
    app,
    _app.outbox,
    lease=LEASE,
    republish_after=float(os.environ.get("TOCSIN_TEST_REPUBLISH", "2")),
    check=os.environ.get("TOCSIN_TEST_CHECK") != "off",
)
