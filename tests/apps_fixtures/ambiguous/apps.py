from tocsin.apps import AppConfig


class FirstConfig(AppConfig):
    name = "ambiguous"


class SecondConfig(AppConfig):
    name = "ambiguous"
