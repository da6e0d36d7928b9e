from tocsin.apps import AppConfig


class ReentrantConfig(AppConfig):
    name = "reentrant"

    def ready(self) -> None:
        assert self.apps is not None
        self.apps.populate(["reentrant"])
