from typing import Any

from tocsin import receiver
from tocsin.signals import post_save, pre_delete


@receiver(post_save, sender="typo.Usr")
def on_user_saved(sender: type, **kwargs: Any) -> None:
    pass


@receiver(pre_delete, sender="ghost.Thing")
def on_thing_deleted(sender: type, **kwargs: Any) -> None:
    pass
