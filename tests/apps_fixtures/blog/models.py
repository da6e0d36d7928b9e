from tocsin.signals import class_prepared


class Post:
    pass


class Helper:
    """Not a model: class_prepared is never sent for it."""


class_prepared.send(sender=Post)
