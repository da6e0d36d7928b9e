"""An integration imported without its extra says which extra to install."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "missing", "extra"),
    [
        ("tocsin.integrations.sqlalchemy", "sqlalchemy", "sqlalchemy"),
        ("tocsin.integrations.flask_login", "flask_login", "flask"),
        ("tocsin.integrations.celery", "celery", "celery"),
    ],
)
def test_importing_without_the_extra_names_the_pip_command(
    module: str, missing: str, extra: str
) -> None:
    # sys.modules[name] = None makes "import name" fail, as if not installed.
    code = f"import sys; sys.modules[{missing!r}] = None\nimport {module}"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 1
    assert "tocsin.integrations.MissingExtraError" in result.stderr
    assert f'pip install "tocsin[{extra}]"' in result.stderr


@pytest.mark.parametrize(
    "module",
    [
        "tocsin",
        "tocsin.signals",
        "tocsin.integrations.asgi",
        "tocsin.integrations.wsgi",
    ],
)
def test_the_core_and_the_request_middleware_need_no_extra(module: str) -> None:
    blocked = ["sqlalchemy", "starlette", "flask", "flask_login", "django", "asgiref"]
    code = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        f"import {module}\n"
        "print('imported')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"
