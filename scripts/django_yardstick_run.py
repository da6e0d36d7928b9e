"""Inside a venv that holds Django: run Django's dispatch tests, on tocsin or Django.

Started by ``django_yardstick.py``; not for direct use. With ``--target tocsin``,
``django.dispatch`` and ``django.dispatch.dispatcher`` resolve to tocsin for the test
modules, through ``sys.modules`` (the files are run as Django ships them, unedited).
Django's own modules are imported first, so Django's machinery (``override_settings``
sends ``setting_changed``) keeps Django's dispatcher.

What the harness translates, each a documented difference, not a failure to hide:

- Django's private ``django.dispatch.dispatcher._make_id`` is tocsin's sender key
  (``tocsin._refs.sender_key``), and patching the first patches the second, so that
  ``test_garbage_collected_sender``'s simulated ``id()`` reuse reaches tocsin.
- A robust send's failure is logged to the ``tocsin`` logger (Django:
  ``django.dispatch``): its records are re-emitted on ``django.dispatch``, so the
  tests still check the message, the level and ``exc_info``.
- ``WeakReceiverWarning`` (tocsin warns when a local function is connected weakly;
  Django is silent) is ignored, as the tests connect local functions on purpose.
"""

from __future__ import annotations

import argparse
import logging
import sys
import types
import unittest
import warnings
from pathlib import Path
from typing import Any


class Broken(Exception):
    """The harness would not test what it claims to: exit 2, not a test failure."""


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tests", type=Path, required=True, help="Django's tests/")
    parser.add_argument("--src", type=Path, required=True, help="tocsin's src/")
    parser.add_argument("--target", choices=("tocsin", "django"), required=True)
    parser.add_argument("signals_classes", nargs="+")
    return parser.parse_args()


def setup_django(tests: Path) -> None:
    # As Django's runtests.py: the test folders are top-level packages, and the
    # signals app is installed, since tests/signals/tests.py imports its models.
    sys.path.insert(0, str(tests))
    import django
    from django.conf import settings
    from django.test.utils import setup_test_environment

    settings.configure(
        INSTALLED_APPS=["signals"],
        DATABASES={},
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        SECRET_KEY="django-yardstick",
        USE_TZ=True,
    )
    django.setup()
    setup_test_environment()


# How often a test patched _make_id, and how often tocsin then called the patch:
# a patch that tocsin never calls would make its test pass without testing tocsin.
MAKE_ID_PATCH = {"installed": 0, "reached": 0}


def install_tocsin(src: Path) -> type:
    sys.path.insert(0, str(src))
    import django

    import tocsin
    from tocsin import _refs

    if not Path(tocsin.__file__).resolve().is_relative_to(src.resolve()):
        raise Broken(f"imported tocsin from {tocsin.__file__}, not from {src}")
    if not callable(getattr(_refs, "sender_key", None)):
        raise Broken(
            "tocsin._refs.sender_key is gone: the yardstick maps Django's private "
            "_make_id onto it; point DispatcherModule at its successor"
        )

    sender_key = _refs.sender_key

    class DispatcherModule(types.ModuleType):
        def __setattr__(self, name: str, value: Any) -> None:
            if name == "_make_id":  # mock.patch(...) and its undoing
                _refs.sender_key = sender_key if value is sender_key else counted(value)
            super().__setattr__(name, value)

    def counted(make_id: Any) -> Any:
        MAKE_ID_PATCH["installed"] += 1

        def key(target: object) -> Any:
            MAKE_ID_PATCH["reached"] += 1
            return make_id(target)

        return key

    package = types.ModuleType("django.dispatch")
    dispatcher = DispatcherModule("django.dispatch.dispatcher")
    for module in (package, dispatcher):
        module.Signal = tocsin.Signal  # type: ignore[attr-defined]
        module.receiver = tocsin.receiver  # type: ignore[attr-defined]
    dispatcher._make_id = _refs.sender_key
    package.dispatcher = dispatcher  # type: ignore[attr-defined]
    sys.modules["django.dispatch"] = package
    sys.modules["django.dispatch.dispatcher"] = dispatcher
    django.dispatch = package  # for `from django import dispatch`

    class ToDjangoDispatchLogger(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logging.getLogger("django.dispatch").handle(record)

    logging.getLogger("tocsin").addHandler(ToDjangoDispatchLogger())
    warnings.simplefilter("ignore", tocsin.WeakReceiverWarning)
    return tocsin.Signal


def exception_line(trace: str) -> str:
    """The ``SomeError: message`` line of a formatted traceback."""
    lines = trace.splitlines()
    return next((line for line in lines[1:] if not line.startswith(" ")), lines[-1])


def main() -> int:
    try:
        return run(parse())
    except Broken as error:
        print(f"django-yardstick: harness broken: {error}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    setup_django(args.tests)
    if args.target == "tocsin":
        expected = install_tocsin(args.src)
    else:
        import django.dispatch

        expected = django.dispatch.Signal
    import dispatch.tests
    import signals.tests

    # The shim must have reached the test modules, or tocsin was never tested.
    if (
        dispatch.tests.Signal is not expected
        or signals.tests.dispatch.Signal is not expected
    ):
        raise Broken(f"the tests did not get {expected.__module__}.Signal")
    print(
        f"django-yardstick: Django tests from {args.tests}, django.dispatch -> "
        f"{expected.__module__}.{expected.__qualname__}, Python {sys.version.split()[0]}"
    )

    loader = unittest.TestLoader()
    suite = loader.loadTestsFromModule(dispatch.tests)
    for name in args.signals_classes:
        case = getattr(signals.tests, name, None)
        if case is None:
            raise Broken(f"tests/signals/tests.py has no class {name}")
        suite.addTests(loader.loadTestsFromTestCase(case))
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=1).run(suite)
    if MAKE_ID_PATCH["installed"] and not MAKE_ID_PATCH["reached"]:
        raise Broken(
            "a test patched django.dispatch.dispatcher._make_id, but tocsin never "
            "called tocsin._refs.sender_key while it was patched: map _make_id onto "
            "the function tocsin now uses to key senders"
        )
    for test, trace in [*result.failures, *result.errors]:
        print(f"django-yardstick: FAILED {test.id()}: {exception_line(trace)}")
    return 0 if result.wasSuccessful() and result.testsRun else 1


if __name__ == "__main__":
    sys.exit(main())
