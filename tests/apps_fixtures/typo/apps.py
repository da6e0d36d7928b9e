from tocsin.apps import AppConfig


class TypoConfig(AppConfig):
    name = "typo"

    def ready(self) -> None:
        import typo.signals  # noqa: F401
