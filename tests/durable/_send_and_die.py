"""``python _send_and_die.py URL POINT``: save an Item, then SIGKILL this process.

POINT is ``before-commit`` (the outbox row is written but not committed) or
``after-commit`` (committed; no worker has seen it yet).
"""

from __future__ import annotations

import os
import signal
import sys

import _app
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

url, point = sys.argv[1:]
with Session(create_engine(url)) as session:
    session.add(_app.Item(name=point))
    session.flush()
    if point == "after-commit":
        session.commit()
    os.kill(os.getpid(), signal.SIGKILL)
