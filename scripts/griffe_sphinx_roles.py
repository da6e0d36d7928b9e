"""A griffe extension for the API reference (mkdocs.yml): docstrings to Markdown.

tocsin's docstrings are written for ``help()``, editors and doctest: they name
other objects the Sphinx way (``:class:`Signal```, ``.. versionadded:: 0.1``)
and hold bare ``>>>`` examples. mkdocstrings renders docstrings as Markdown,
where the roles would show as is and an example's ``x[0][1]`` would read as a
link: this turns a role into inline code, a version directive into a sentence
and each run of ``>>>`` lines (with its output) into a fenced code block.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(
    r":(?:py:)?(?:class|func|meth|mod|attr|exc|data|obj|const):`~?([^`]+)`"
)
VERSION = re.compile(
    r"^(\s*)\.\. (versionadded|versionchanged|deprecated):: *(\S+)", re.M
)
WORDS = {
    "versionadded": "New in version",
    "versionchanged": "Changed in version",
    "deprecated": "Deprecated since version",
}


def to_markdown(text: str) -> str:
    r"""Rewrite the roles, version directives and bare examples of one docstring.

    >>> to_markdown("Raises :exc:`ValueError`; see :meth:`~tocsin.Signal.send`.")
    'Raises `ValueError`; see `tocsin.Signal.send`.'
    >>> to_markdown(".. versionadded:: 0.1")
    '*New in version 0.1.*'
    >>> to_markdown("Like this:\n\n  >>> [1][0]\n  1\n\nDone.").splitlines()
    ['Like this:', '', '  ```pycon', '  >>> [1][0]', '  1', '  ```', '', 'Done.']
    """
    text = ROLE.sub(r"`\1`", text)
    text = VERSION.sub(lambda match: f"{match[1]}*{WORDS[match[2]]} {match[3]}.*", text)
    return fence_examples(text)


def fence_examples(text: str) -> str:
    """Put each run of ``>>>`` lines, up to the next blank line, in a fence."""
    lines = text.split("\n")
    out: list[str] = []
    fenced = False
    indent = ""
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith("```"):
            return text  # the docstring fences its own examples
        if not fenced and stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            out.append(f"{indent}```pycon")
            fenced = True
        elif fenced and not stripped:
            out.append(f"{indent}```")
            fenced = False
        out.append(line)
        if fenced and index == len(lines) - 1:
            out.append(f"{indent}```")
    return "\n".join(out)


class SphinxRoles(griffe.Extension):
    """Applies :func:`to_markdown` to every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
