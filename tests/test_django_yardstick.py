"""Django's own dispatch tests, run against tocsin: the drop-in promise, measured.

``scripts/django_yardstick.py`` downloads Django's sdist from PyPI at test time (the
tests are never copied into this repository), builds a cached venv per (Django,
Python) pair, and runs ``tests/dispatch/tests.py`` and the ORM-free classes of
``tests/signals/tests.py`` with ``django.dispatch`` resolving to tocsin. The first run
needs the network and takes about a minute; later runs reuse ``.cache/``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support import server_unavailable

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "django_yardstick.py"
EXIT_NO_PYTHON = 3  # django_yardstick.py: the pair's Python is not on this machine

# Each Django release on the Python it needs (6.1 needs 3.12+), and 6.1 on the
# newest Python too, where asyncio's eager tasks and TaskGroup differ.
PAIRS = [("5.2.19", "3.11"), ("6.1.3", "3.12"), ("6.1.3", "3.13")]
IDS = [f"{django}-py{python}" for django, python in PAIRS]


def yardstick(django: str, python: str, target: str) -> str:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), django, "--python", python, "--target", target],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if done.returncode == EXIT_NO_PYTHON:
        server_unavailable(done.stderr.strip())
    if done.returncode != 0:
        summary = [line for line in done.stdout.splitlines() if "FAILED" in line]
        pytest.fail(
            "\n".join([*summary, "", "full output:", done.stdout, done.stderr]),
            pytrace=False,
        )
    return done.stdout


@pytest.mark.parametrize(("django", "python"), PAIRS, ids=IDS)
def test_djangos_dispatch_suite_passes_against_tocsin(django: str, python: str) -> None:
    output = yardstick(django, python, "tocsin")
    assert "django.dispatch -> tocsin.Signal" in output


@pytest.mark.parametrize(("django", "python"), PAIRS, ids=IDS)
def test_yardstick_harness_passes_djangos_own_dispatcher(
    django: str, python: str
) -> None:
    # The control: what fails against tocsin must pass against Django itself, or
    # the harness (settings, selection, Python) is what is broken.
    output = yardstick(django, python, "django")
    assert "django.dispatch -> django.dispatch.dispatcher.Signal" in output
