from tocsin.apps import AppConfig

ready_calls: list[AppConfig] = []


class ShopConfig(AppConfig):
    name = "shop"

    def ready(self) -> None:
        ready_calls.append(self)
        import shop.signals  # noqa: F401 (connects the receivers)
