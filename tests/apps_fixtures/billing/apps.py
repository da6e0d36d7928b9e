from tocsin.apps import AppConfig

ready_calls: list[str] = []


class BillingConfig(AppConfig):
    name = "billing"
    default = True

    def ready(self) -> None:
        ready_calls.append("BillingConfig")


class PaymentsConfig(AppConfig):
    name = "billing"
    label = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        ready_calls.append("PaymentsConfig")
