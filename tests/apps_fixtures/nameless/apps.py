from tocsin.apps import AppConfig


class NamelessConfig(AppConfig):
    pass
