"""The service's receivers: the work the by-hand variant writes in its handlers.

Imported only by the variant with tocsin; :func:`connect` installs the model
signals on the service's models and connects the receivers to its outbox.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import tocsin.integrations.sqlalchemy as tocsin_sa
from tocsin import Signal, auth
from tocsin.integrations.asgi import RequestSignalsMiddleware
from tocsin.signals import (
    post_save,
    request_finished,
    request_started,
    user_logged_in,
    user_login_failed,
)
from tocsin.transaction import unit_of_work

from .app import Outbox, audit_failure, request_id_of
from .models import Base, Order, Profile, User

__all__ = [
    "RequestSignalsMiddleware",
    "auth",
    "connect",
    "order_completed",
    "unit_of_work",
]

order_completed = Signal(name="order_completed")
"""Sent with ``order=`` once an order is written (not yet committed)."""


def connect(outbox: Outbox) -> None:
    """Install the model signals on the service's models; connect the receivers.

    The receivers are closures over ``outbox`` held strongly by the signals
    (``weak=False``), with a ``dispatch_uid`` so that a second call replaces
    nothing and adds nothing.
    """
    tocsin_sa.install(Base)

    def count_started(sender: Any, scope: Any, **kwargs: Any) -> None:
        outbox.started[request_id_of(scope)] += 1

    def count_finished(sender: Any, scope: Any, **kwargs: Any) -> None:
        outbox.finished[request_id_of(scope)] += 1

    def create_profile(
        sender: Any, instance: User, created: bool, session: Any, **kwargs: Any
    ) -> None:
        """post_save of a User, in its transaction: a new user gets a Profile."""
        if created:
            session.add(Profile(user_id=instance.id, display_name=instance.name))

    def send_welcome(sender: Any, instance: User, created: bool, **kwargs: Any) -> None:
        """post_save of a User, after the commit: welcome the new ones."""
        if created:
            outbox.send_welcome(instance, by="tocsin")

    def record_login(sender: Any, user: User, **kwargs: Any) -> None:
        user.last_login = datetime.now(UTC).replace(tzinfo=None)

    def audit_failed_login(
        sender: Any, credentials: dict[str, Any], request: Any, **kwargs: Any
    ) -> None:
        """user_login_failed: ``credentials`` arrive with the password masked."""
        request.state.session.add(audit_failure(credentials))

    def fulfil(sender: Any, order: Order, **kwargs: Any) -> None:
        outbox.fulfil(order, by="tocsin")

    for signal, receiver, options in (
        (request_started, count_started, {}),
        (request_finished, count_finished, {}),
        (post_save, create_profile, {"sender": User}),
        (post_save, send_welcome, {"sender": User, "on_commit": True}),
        (user_logged_in, record_login, {"sender": User}),
        (user_login_failed, audit_failed_login, {}),
        (order_completed, fulfil, {"sender": Order, "on_commit": True}),
    ):
        signal.connect(
            receiver,
            weak=False,
            dispatch_uid=f"service.{receiver.__name__}",
            **options,
        )
