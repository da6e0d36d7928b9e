"""Every receiver of the shop, wired at start-up by ``ShopConfig.ready()``."""

from __future__ import annotations

from typing import Any

from tocsin import Signal, receiver
from tocsin.durable import Event
from tocsin.signals import (
    post_save,
    user_logged_in,
    user_logged_out,
    user_login_failed,
)

from . import mailer
from .models import AuditEntry, Order, Profile, User
from .timeline import did

order_completed = Signal(
    name="order_completed",
    doc="""An order was placed and paid.

    sender: the Order class.
    order: the Order.
    user: the User who placed it.
    """,
)


@receiver(post_save, sender="shop.User")
def create_profile(
    sender: type[User], instance: User, created: bool, session: Any, **kwargs: Any
) -> None:
    """Every new user gets a profile, written in the same transaction."""
    if created:
        name = instance.email.split("@")[0]
        session.add(Profile(user=instance, display_name=name))
        did(f"create_profile: added Profile({name!r}) to the same transaction")


@receiver(post_save, sender=User, durable=True, dispatch_uid="shop.welcome_email")
def send_welcome_email(
    sender: type[User],
    instance: User | None,
    created: bool,
    event: Event,
    **kwargs: Any,
) -> None:
    """Mail new users from a worker, once their account is committed.

    The event was written in the signup's transaction: a crash after the
    commit delays the email, it never loses it.
    """
    if created and instance is not None:
        mailer.send(
            instance.email,
            "Welcome to the shop!",
            idempotency_key=event.idempotency_key,
        )
        did(
            f"send_welcome_email (worker, attempt {event.attempt}): "
            f"mailed {instance.email}"
        )


@receiver(order_completed)
def notify_customer(
    sender: type[Order], order: Order, user: User, **kwargs: Any
) -> None:
    text = f"Order #{order.id} confirmed: {order.total_cents / 100:.2f} EUR"
    mailer.send(user.email, text)
    did(f"notify_customer: mailed {user.email} {text!r}")


@receiver(user_logged_in)
def audit_login(sender: type[User], request: Any, user: User, **kwargs: Any) -> None:
    request.state.db.add(AuditEntry(event="login", detail=user.email))
    did(f"audit_login: audit entry 'login {user.email}'")


@receiver(user_login_failed)
def audit_failed_login(
    sender: str, credentials: dict[str, Any], request: Any, **kwargs: Any
) -> None:
    # The password arrives masked: tocsin.auth cleanses the credentials.
    request.state.db.add(AuditEntry(event="login_failed", detail=repr(credentials)))
    did(f"audit_failed_login: audit entry 'login_failed {credentials}'")


@receiver(user_logged_out)
def audit_logout(
    sender: type[User], request: Any, user: User | None, **kwargs: Any
) -> None:
    request.state.db.add(AuditEntry(event="logout", detail=user.email if user else "-"))
    did(f"audit_logout: audit entry 'logout {user.email if user else '-'}'")
