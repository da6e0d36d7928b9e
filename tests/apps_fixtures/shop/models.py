from tocsin.signals import class_prepared


class User:
    def __init__(self, name: str) -> None:
        self.name = name


class Order:
    pass


class_prepared.send(sender=User)
class_prepared.send(sender=Order)
