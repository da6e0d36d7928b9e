#!/usr/bin/env bash
# Run the test suite again on every other CPython 3.12+ this machine has (the
# main run uses .venv). Each gets its own virtualenv, .venv-pyX.Y, rebuilt
# when pyproject.toml changes. A version the machine does not have is named
# and passed over (the suite runs on the Pythons there are), except under
# CI=true, where it fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp_of() { cksum pyproject.toml | cut -d' ' -f1; }

find_python() {
    local version=$1 candidate
    for candidate in "python$version" "$HOME"/.pyenv/versions/"$version".*/bin/python; do
        # pyenv's shims exist for versions that are not selected: ask it to run.
        if "$candidate" -c 'import sys' >/dev/null 2>&1; then
            "$candidate" -c 'import sys; print(sys.executable)'
            return 0
        fi
    done
    return 1
}

status=0
for version in ${TOCSIN_OTHER_PYTHONS:-3.12 3.13}; do
    if ! python=$(find_python "$version"); then
        if [ "${CI:-}" = "true" ]; then
            # As the tests' server_unavailable(): CI must have every Python.
            echo "== Python $version: not on this machine (CI=true: it must be)" >&2
            status=1
        else
            echo "== Python $version: not on this machine, not tested (CI=true fails instead)"
        fi
        continue
    fi
    venv=".venv-py$version"
    stamp="$venv/.installed-$(stamp_of)"
    if [ ! -e "$stamp" ]; then
        echo "== Python $version: creating $venv"
        rm -rf "$venv"
        "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --upgrade "pip>=25.1"
        "$venv/bin/python" -m pip install --quiet -e . --group dev
        touch "$stamp"
    fi
    echo "== Python $version: $("$venv/bin/python" --version)"
    # The Django yardstick already runs each Django on each Python it needs; the
    # packaging test builds one pure-Python wheel and tests it on the main Python.
    # The Celery chaos runs and negative controls (about 2 minutes) prove what
    # Celery, Redis and SIGKILL do, not what the Python does: the main Python
    # runs them; the Celery delivery tests run on every Python.
    "$venv/bin/pytest" -q -p no:cacheprovider --ignore tests/test_django_yardstick.py \
        --ignore tests/test_packaging.py \
        --ignore tests/durable/test_celery_chaos.py \
        --ignore tests/durable/test_celery_negative.py \
        ${PYTEST_ARGS:-} || status=1
done
exit $status
