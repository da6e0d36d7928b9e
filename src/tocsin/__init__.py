"""tocsin: Django's signals for every Python application.

>>> from tocsin import Signal, receiver
>>> order_completed = Signal()
>>> @receiver(order_completed, weak=False)
... def thank(sender, order, **kwargs):
...     return f"thanks for {order}"
>>> order_completed.send(sender="shop", order="#1")[0][1]
'thanks for #1'
"""

from ._log import LoggingObserver
from ._observe import Dispatch, Observer, ReceiverCall, observe, observing
from ._receiver import receiver
from ._signal import ReceiverInfo, Signal, WeakReceiverWarning

__all__ = [
    "Dispatch",
    "LoggingObserver",
    "Observer",
    "ReceiverCall",
    "ReceiverInfo",
    "Signal",
    "WeakReceiverWarning",
    "observe",
    "observing",
    "receiver",
]

# The one place the version is written: the wheel's metadata reads it from here
# ([tool.hatch.version] in pyproject.toml), so importing tocsin reads no metadata.
__version__ = "0.1.0"

for _name in __all__:
    globals()[_name].__module__ = "tocsin"
del _name
