"""One receiver of each kind; some of them are mistakes that ``check`` finds."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import tocsin.transaction  # noqa: F401 - the on_commit= option
from tocsin import Signal, receiver
from tocsin.durable import Policy
from tocsin.signals import post_save

from .models import Thing

order_placed = Signal(name="order_placed", doc="An order was placed.")
order_shipped = Signal(name="order_shipped")


@receiver(order_placed)
def plain(**kwargs: Any) -> None: ...


@receiver(order_placed, priority=10)
async def first_async(**kwargs: Any) -> None: ...


def logged(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(**kwargs: Any) -> Any:
        return function(**kwargs)

    return wrapper


@receiver(order_placed, dispatch_uid="inspected.audit")
@logged
def wrapped(**kwargs: Any) -> None: ...


@receiver(order_shipped, dispatch_uid="inspected.audit")
def audit_shipping(**kwargs: Any) -> None: ...


@receiver(post_save, sender="inspected.Thing")
def lazy_thing(**kwargs: Any) -> None: ...


@receiver(post_save, sender=Thing, on_commit=True, weak=False, priority=-1)
def after_commit(**kwargs: Any) -> None: ...


@receiver(order_placed, durable=Policy(queue="mail"), dispatch_uid="inspected.mail")
def durable_mail(**kwargs: Any) -> None: ...


class Listener:
    def on_order(self, **kwargs: Any) -> None: ...


listener = Listener()
order_placed.connect(listener.on_order)


def takes(prefix: str, **kwargs: Any) -> None: ...


order_shipped.connect(functools.partial(takes, "shipped"), weak=False)


def connect_for_a_while() -> None:
    def forgotten(**kwargs: Any) -> None: ...

    order_shipped.connect(forgotten)  # weak: dies when this function returns


connect_for_a_while()


@receiver(order_shipped, dispatch_uid="inspected.notify")
def notify(**kwargs: Any) -> None: ...


@receiver(order_shipped, dispatch_uid="inspected.notify")
def notify_again(**kwargs: Any) -> None: ...  # ignored: the uid is taken


@receiver(order_placed, durable=True, dispatch_uid="inspected.ledger")
def ledger(**kwargs: Any) -> None: ...


def legacy(function: Callable[..., Any]) -> Callable[..., Any]:
    def call(**kwargs: Any) -> Any:  # no functools.wraps
        return function(**kwargs)

    return call


ledger = legacy(ledger)  # the name now imports another function
