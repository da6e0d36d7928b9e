"""A receiver whose lazy sender names a model that no app has."""

from typing import Any

import tocsin.apps  # noqa: F401 - its registry resolves lazy senders
from tocsin.signals import post_save


def on_save(**kwargs: Any) -> None: ...


post_save.connect(on_save, sender="unresolved.Missing", weak=False)
