from tocsin.apps import AppConfig


class MarketConfig(AppConfig):
    name = "market"
    label = "shop"
