"""Run Django's own dispatch tests against tocsin: the drop-in yardstick.

Django's ``tests/dispatch/tests.py`` and the classes of ``tests/signals/tests.py``
that need no ORM are downloaded at test time, never copied into this repository:

1. ``pip download`` fetches Django's sdist from PyPI into ``.cache/django-yardstick/``
   (checked against a pinned SHA-256), and only the test files are extracted;
2. a virtual environment per (Django, Python) pair gets that Django from PyPI, once
   (a stamp file records what it holds);
3. ``django_yardstick_run.py`` runs the tests inside it, with ``django.dispatch``
   resolving to tocsin's ``src/`` (``--target tocsin``) or to Django's own dispatcher
   (``--target django``, the control run that shows the harness is right).

Usage: ``python scripts/django_yardstick.py [--python 3.13] [--target django] 6.1.3``

Exit status: 0 when every test passes, 1 when some fail, 2 when the yardstick itself
cannot run (a download or an install failed), 3 when the Python the pair needs is not
on this machine (the pytest wrapper fails on that under ``CI=true`` and skips elsewhere).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "django-yardstick"
RUNNER = Path(__file__).resolve().with_name("django_yardstick_run.py")

EXIT_FAILED, EXIT_BROKEN, EXIT_NO_PYTHON = 1, 2, 3


@dataclass(frozen=True)
class Release:
    """A Django release the yardstick knows: its sdist and what to run from it."""

    sha256: str
    python: str  # the Python it runs on by default
    # tests/signals/tests.py classes that use no model, database or ModelSignal.
    signals_classes: tuple[str, ...]
    # Django's own dependencies, pinned so that a run today equals a run next month.
    requirements: tuple[str, ...] = ("asgiref==3.13.0", "sqlparse==0.6.1")


RELEASES = {
    "5.2.19": Release(
        sha256="ad03d8abc51dbff95ebf34b27123cf0c26a3b62db7ba0cd520783686362533d1",
        python="3.11",
        signals_classes=("AsyncReceiversTests",),
    ),
    "6.1.3": Release(
        sha256="b5d2d9e35295065d13b1927b3f19a59bd119f737aa6299def14ccca1ae3c8c0d",
        python="3.12",
        signals_classes=("AsyncReceiversTests", "TestReceiversContextVarsSharing"),
    ),
}

# The files extracted from the sdist: the tests, and the models that
# tests/signals/tests.py imports at module level.
TEST_FILES = (
    "tests/dispatch/__init__.py",
    "tests/dispatch/tests.py",
    "tests/signals/__init__.py",
    "tests/signals/models.py",
    "tests/signals/tests.py",
)


class Unavailable(Exception):
    """The Python a run needs is not on this machine."""


class Broken(Exception):
    """The yardstick cannot be set up (download, checksum, install)."""


def _release_order(path: str) -> tuple[int, ...]:
    """``.../versions/3.12.10/bin/python`` sorts after ``.../3.12.9/...``."""
    release = Path(path).parent.parent.name
    return tuple(int(part) if part.isdigit() else -1 for part in release.split("."))


def find_python(version: str) -> str:
    """An interpreter of ``version`` ("3.12"): pyenv's first, then the PATH."""
    home = Path.home()
    candidates = sorted(
        glob.glob(str(home / f".pyenv/versions/{version}.*/bin/python")),
        key=_release_order,
        reverse=True,
    )
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        # A pyenv shim exists for every installed version but fails when that
        # version is not selected, so each candidate is asked for its version.
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    raise Unavailable(
        f"Python {version} is not on this machine (looked in "
        f"~/.pyenv/versions/{version}.*/bin/python and for python{version} on the "
        f"PATH): install it, e.g. `pyenv install {version}`"
    )


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """Serialise set-ups, so that two test runs never build one venv together."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise Broken(
            f"{what} failed ({' '.join(command)}):\n{done.stdout}{done.stderr}"
        )


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_venv(django: str, python: str) -> Path:
    """A venv of ``python`` holding Django ``django``: built once, then reused."""
    release = RELEASES[django]
    interpreter = find_python(python)
    venv = CACHE / f"venv-django-{django}-py{python}"
    key = hashlib.sha256(
        repr((django, release.requirements, os.path.realpath(interpreter))).encode()
    ).hexdigest()[:16]
    stamp = venv / f".yardstick-{key}"
    if stamp.exists():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    run([interpreter, "-m", "venv", str(venv)], f"creating {venv.name}")
    run(
        [
            str(venv / "bin" / "python"),
            *("-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
            f"django=={django}",
            *release.requirements,
        ],
        f"installing Django {django} into {venv.name}",
    )
    stamp.touch()
    return venv


def ensure_tests(django: str, venv: Path) -> Path:
    """Django ``django``'s test files, from its PyPI sdist: the ``tests`` folder."""
    release = RELEASES[django]
    where = CACHE / f"django-{django}"
    stamp = where / f".extracted-{release.sha256[:16]}"
    if stamp.exists():
        return where / "tests"
    sdist = CACHE / "sdist" / f"django-{django}.tar.gz"
    if not sdist.exists() or sha256(sdist) != release.sha256:
        sdist.unlink(missing_ok=True)
        # This venv's pip, as the release's Requires-Python must match.
        run(
            [
                str(venv / "bin" / "python"),
                *("-m", "pip", "download", "--quiet", "--disable-pip-version-check"),
                *("--no-deps", "--no-binary", ":all:", "--dest", str(sdist.parent)),
                f"django=={django}",
            ],
            f"downloading Django {django}'s sdist",
        )
    actual = sha256(sdist)
    if actual != release.sha256:
        sdist.unlink()
        raise Broken(
            f"{sdist.name} has SHA-256 {actual}, not the pinned {release.sha256}: "
            "PyPI served a different file; check it before updating RELEASES"
        )
    shutil.rmtree(where, ignore_errors=True)
    with tarfile.open(sdist) as archive:
        members = [archive.getmember(f"django-{django}/{name}") for name in TEST_FILES]
        archive.extractall(CACHE, members=members, filter="data")
    stamp.touch()
    return where / "tests"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("django", choices=sorted(RELEASES), help="Django release")
    parser.add_argument("--python", help="X.Y (default: the release's own)")
    parser.add_argument("--target", choices=("tocsin", "django"), default="tocsin")
    args = parser.parse_args(argv)
    release = RELEASES[args.django]
    python = args.python or release.python
    try:
        with locked():
            venv = ensure_venv(args.django, python)
            tests = ensure_tests(args.django, venv)
    except Unavailable as error:
        print(f"django-yardstick: cannot run: {error}", file=sys.stderr)
        return EXIT_NO_PYTHON
    except Broken as error:
        print(f"django-yardstick: {error}", file=sys.stderr)
        return EXIT_BROKEN
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    done = subprocess.run(
        [
            str(venv / "bin" / "python"),
            str(RUNNER),
            *("--tests", str(tests), "--src", str(ROOT / "src")),
            *("--target", args.target),
            *release.signals_classes,
        ],
        env=env,
        check=False,
        timeout=300,
    )
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
