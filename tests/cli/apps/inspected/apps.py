from tocsin.apps import AppConfig


class InspectedConfig(AppConfig):
    name = "inspected"

    def ready(self) -> None:
        from . import receivers  # noqa: F401
