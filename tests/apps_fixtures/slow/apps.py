import threading
import time

from tocsin.apps import AppConfig

ready_calls: list[str] = []
entered = threading.Event()


class SlowConfig(AppConfig):
    name = "slow"

    def ready(self) -> None:
        entered.set()
        time.sleep(0.2)  # long enough for the other thread to arrive
        ready_calls.append(threading.current_thread().name)
