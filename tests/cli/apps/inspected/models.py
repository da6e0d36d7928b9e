from tocsin.signals import class_prepared


class Thing:
    """A model: the registry learns of it from class_prepared."""


class_prepared.send(sender=Thing)
