"""The demo shop: users, profiles, welcome emails, orders and logins.

Read it in this order:

- ``models.py``: User, Profile, Order and AuditEntry, on SQLAlchemy;
- ``signals.py``: every receiver of the app, and the app's own
  ``order_completed`` signal;
- ``apps.py``: the app's ``AppConfig``, whose ``ready()`` imports ``signals.py``;
- ``web.py``: a small Starlette app behind tocsin's request-signal middleware;
- ``__main__.py``: ``make demo``, which serves it on 127.0.0.1 and drives it.
"""
