"""The shop's start-up without a server or a database, for the ``tocsin`` command.

``tocsin -A examples.shop.wiring signals`` lists the receivers that
``ShopConfig.ready()`` connects; ``graph`` and ``check`` read the same wiring.
"""

from __future__ import annotations

from tocsin.apps import apps
from tocsin.integrations import sqlalchemy as model_signals

from .models import Base

# Model signals for the shop's models (class_prepared registers them), then
# the app registry, whose ShopConfig.ready() imports signals.py.
model_signals.install(Base)
apps.populate(["examples.shop"])

registry = apps
