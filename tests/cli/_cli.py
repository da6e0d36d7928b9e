"""Run the ``tocsin`` command as a user does: a process of its own, from the
directory of the fixture apps (tests/cli/apps), so that each run loads its
application into a fresh interpreter."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

APPS = Path(__file__).parent / "apps"
GOLDEN = Path(__file__).parent / "golden"
REPO = Path(__file__).parents[2]


def tocsin(
    *argv: str, env: dict[str, str] | None = None, module: bool = True
) -> subprocess.CompletedProcess[str]:
    command = (
        [sys.executable, "-m", "tocsin"]
        if module
        else [str(Path(sys.executable).with_name("tocsin"))]
    )
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    environment.pop("TOCSIN_APP", None)
    environment.update(env or {})
    return subprocess.run(
        [*command, *argv],
        cwd=APPS,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def stable(text: str) -> str:
    """``text`` without the line numbers of tocsin's own files, which move
    whenever tocsin is edited."""
    text = re.sub(r"(tocsin/[\w/]+\.py):\d+", r"\1:N", text)
    return re.sub(r'("file": "tocsin/[^"]+",\n\s+"line": )\d+', r"\1N", text)


def golden(name: str, text: str) -> str:
    """The golden file ``name``; ``UPDATE_GOLDEN=1`` rewrites it from ``text``."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(stable(text))
    return path.read_text()
