"""Django's model signals, and on_commit, for SQLAlchemy sessions.

Call :func:`install` once at start-up with your declarative base::

    import tocsin.integrations.sqlalchemy as tocsin_sa

    tocsin_sa.install(Base, databases={engine: "default"})

From then on every session of the application (``Session``,
``sessionmaker``, ``scoped_session``, ``AsyncSession``) sends the model
signals of :mod:`tocsin.signals` for the models of that base, with Django's
arguments plus ``session=`` (the synchronous ``Session``). The differences
from Django, and their reasons, are listed in ``docs/model-signals.md``.

How it works, for a reader of this package (one concept per module):

- ``_install``: :func:`install`, the listeners on the ``Session`` class and
  on each base; ``_state``: what it set up (bases, engine names).
- ``_init``: pre_init/post_init, from a wrapped ``__init__`` and from loads.
- ``_changes``: the keys of ``update_fields`` and the ``changes`` pairs.
- ``_flush``: the two phases of a flush. ``before_flush`` sends the pre_*
  signals in rounds until receivers stop changing the session;
  ``after_flush_postexec`` sends the post_* signals, then flushes again what
  their receivers changed. ``_record`` is what the first phase leaves for the
  second; ``_deletes`` and ``_m2m`` work out deletions (cascades, orphans,
  order) and many-to-many actions for both.
- ``_bulk``: the opt-in signals of ORM bulk statements.
- ``_on_commit``: on_commit callbacks, queued in ``session.info`` per open
  transaction or savepoint.
- ``_async``: async receivers awaited on an ``AsyncSession``'s event loop.
- ``_compat``: every use of a SQLAlchemy private name, nowhere else.

Mapper events that fire for every row are not used: they would cost every
flush something even with no receiver connected. Every signal is checked with
``has_listeners()`` first, and nothing is recorded for a signal that nobody
listens to.

.. versionadded:: 0.1
"""

from __future__ import annotations

from tocsin.integrations import require as _require

_require("sqlalchemy", extra="sqlalchemy", package="SQLAlchemy")

from . import _async  # noqa: F401  (registers the async bridge)
from ._bulk import post_bulk, pre_bulk
from ._changes import UNKNOWN
from ._install import Installation, install, installed_bases
from ._state import ReceiverLoopError

__all__ = [
    "UNKNOWN",
    "Installation",
    "ReceiverLoopError",
    "install",
    "installed_bases",
    "post_bulk",
    "pre_bulk",
]

# Reprs and documentation name the public place, not the private module.
for _cls in (Installation, ReceiverLoopError):
    _cls.__module__ = __name__
del _cls
