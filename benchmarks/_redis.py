"""A throwaway Redis server on 127.0.0.1, for the tests and benchmarks of Celery."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ._net import free_port

__all__ = ["RedisUnavailable", "throwaway_redis"]


class RedisUnavailable(RuntimeError):
    """No ``redis-server`` on this machine."""


@contextmanager
def throwaway_redis() -> Iterator[str]:
    """Start ``redis-server`` (Debian's package) with an append-only file;
    yield its URL; stop it and delete its files on exit.

    Raises:
        RedisUnavailable: No ``redis-server`` (``apt-get install redis-server``),
            or it did not answer within 10 s.
    """
    binary = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if shutil.which("/usr/bin/redis-server") else None
    )
    if binary is None:
        raise RedisUnavailable("redis-server not found (apt-get install redis-server)")
    workdir = tempfile.mkdtemp(prefix="tocsin-redis-")
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--dir", workdir,
            "--appendonly", "yes",
            "--save", "",
            "--daemonize", "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_ready(process, port)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_ready(process: subprocess.Popen[bytes], port: int) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RedisUnavailable(f"redis-server exited with {process.returncode}")
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RedisUnavailable("redis-server did not answer within 10 s")
    finally:
        client.close()
