from typing import Any

from shop.models import User
from tocsin import receiver
from tocsin.signals import post_save

received: list[tuple[str, Any, bool]] = []


@receiver(post_save, sender="shop.User")
def welcome(sender: type, instance: Any, created: bool, **kwargs: Any) -> None:
    received.append(("lazy", instance, created))


@receiver(post_save, sender=User)
def create_profile(sender: type, instance: Any, created: bool, **kwargs: Any) -> None:
    received.append(("class", instance, created))
