from tocsin.apps import AppConfig


class BrokenConfig(AppConfig):
    name = "broken"

    def ready(self) -> None:
        raise ValueError("the mail server is not configured")
