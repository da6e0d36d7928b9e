from tocsin.signals import class_prepared


class User:
    pass


class_prepared.send(sender=User)
