"""Worker and sender processes of the crash and chaos tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE), *filter(None, [env.get("PYTHONPATH")])]
    )
    env.update(extra)
    return env


def start_worker(
    url: str, *, lease: float = 1.0, crash: str = "", delay: float = 0.0
) -> subprocess.Popen[bytes]:
    """``tocsin worker -A _app`` in a new process (``python -m tocsin``)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tocsin",
            "worker",
            "-A",
            "_app",
            "--database",
            url,
            "--poll",
            "0.05",
            "--lease",
            str(lease),
            "--loglevel",
            "error",
        ],
        env=environment(DURABLE_CRASH=crash, DURABLE_DELAY=str(delay)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_dead(process: subprocess.Popen[bytes], timeout: float = 30) -> tuple[int, str]:
    """Wait for ``process`` to end by itself; its exit status and its stderr."""
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError("the process did not end by itself") from None
    return process.returncode, (stderr or b"").decode()
