"""Emitters: each module turns one framework's events into tocsin signals.

Each module needs its framework, installed with an extra of tocsin
(``pip install "tocsin[sqlalchemy]"``); importing it without the extra raises
:class:`MissingExtraError`, which names the command to run.
"""

from __future__ import annotations

__all__ = ["MissingExtraError", "require"]


class MissingExtraError(ImportError):
    """An integration was imported without the extra that it needs.

    .. versionadded:: 0.1
    """


def require(module: str, *, extra: str, package: str) -> None:
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra."""
    try:
        __import__(module)
    except ImportError as error:
        raise MissingExtraError(
            f"This tocsin integration needs {package}, which is not installed. "
            f'Install it with: pip install "tocsin[{extra}]"'
        ) from error
