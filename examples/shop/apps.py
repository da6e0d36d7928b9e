from tocsin.apps import AppConfig


class ShopConfig(AppConfig):
    name = "examples.shop"
    label = "shop"

    def ready(self) -> None:
        # Importing the module connects its receivers, once, at start-up.
        from . import signals  # noqa: F401
