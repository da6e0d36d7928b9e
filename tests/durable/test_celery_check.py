"""``tocsin check`` and the worker's start refuse Celery settings that lose events."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from signal import SIGINT, SIGTERM
from typing import Any

import _app
import pytest
from _celery_processes import CELERY, celery_environment
from celery import Celery

from tocsin.apps import apps
from tocsin.cli import main
from tocsin.durable import option
from tocsin.integrations.celery import bind, check_configuration

REDIS = "redis://127.0.0.1:1/0"  # never connected to: the checks read settings


@contextmanager
def bound_app(broker: str = REDIS, lease: float = 300, **conf: Any) -> Iterator[Celery]:
    app = Celery("checked", broker=broker)
    app.conf.update(conf)
    previous = _app.outbox.transport
    bind(app, _app.outbox, lease=lease, check=False)
    try:
        yield app
    finally:
        _app.outbox.transport = previous
        app.close()


def test_the_default_configuration_of_a_bound_app_is_safe() -> None:
    with bound_app() as app:
        assert check_configuration(app) == []
        task = app.tasks["tocsin.deliver"]
        assert task.acks_late
        assert task.reject_on_worker_lost
        assert task.serializer == "json"


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        (
            {"task_annotations": {"tocsin.deliver": {"acks_late": False}}},
            "tocsin.deliver runs without late acknowledgement (acks_late is off",
        ),
        (
            {"task_annotations": {"*": {"reject_on_worker_lost": False}}},
            "tocsin.deliver runs without reject-on-worker-lost",
        ),
        (
            {"accept_content": ["json", "pickle"]},
            "pickle is accepted (accept_content or result_accept_content)",
        ),
        (
            {"result_accept_content": ["application/x-python-serialize"]},
            "pickle is accepted",
        ),
        (
            {"broker_url": "sqla+sqlite:///celery.db"},
            "the broker sqla+sqlite:// is kombu's database transport",
        ),
        (
            {"broker_transport_options": {"visibility_timeout": 500}},
            "the Redis visibility timeout (500 s, broker_transport_options"
            "['visibility_timeout']) is shorter than twice the longest task time "
            "limit (300 s, tocsin.deliver)",
        ),
    ],
    ids=["late-ack", "reject-on-worker-lost", "pickle", "pickle-results", "sqla", "vt"],
)
def test_check_names_each_unsafe_setting(conf: dict[str, Any], message: str) -> None:
    with bound_app(**conf) as app:
        problems = check_configuration(app)
    assert len(problems) == 1, problems
    assert problems[0].startswith(message), problems[0]


def test_the_visibility_timeout_counts_the_longest_time_limit_of_any_task() -> None:
    with bound_app(
        lease=10, broker_transport_options={"visibility_timeout": 100}
    ) as app:
        assert check_configuration(app) == []

        @app.task(name="reports.nightly", time_limit=60)
        def nightly() -> None:
            pass

        [problem] = check_configuration(app)
    assert "longest task time limit (60 s, reports.nightly)" in problem
    assert "set it to at least 120" in problem


def test_an_app_without_the_task_is_refused() -> None:
    app = Celery("unbound", broker=REDIS)
    assert check_configuration(app) == [
        "the task tocsin.deliver is not registered: call "
        "tocsin.integrations.celery.bind(app, outbox) in the module given to -A"
    ]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on ``sys.path`` for a ``checked_proj`` module, forgotten after,
    with the default app registry (which ``tocsin check`` populates) restored.

    ``tocsin check`` also reports every durable receiver connected in the
    process: only the test app's are kept meanwhile, not those another test
    (a doctest's, in ``__main__``) left connected.
    """
    monkeypatch.syspath_prepend(str(tmp_path))
    restore_default_registry = apps._isolate()
    connected = dict(option._bindings)
    option._bindings.clear()
    option._bindings.update(
        (name, found)
        for name, found in connected.items()
        if found.receiver.__module__ == _app.__name__
    )
    try:
        yield tmp_path / "checked_proj.py"
    finally:
        option._bindings.clear()
        option._bindings.update(connected)
        restore_default_registry()
        sys.modules.pop("checked_proj", None)


def test_tocsin_check_prints_each_problem_and_fails(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project.write_text(
        textwrap.dedent(
            """
        import _app
        from celery import Celery
        from tocsin.integrations.celery import bind

        app = Celery("proj", broker="sqla+sqlite:///x.db")
        app.conf.accept_content = ["pickle", "json"]
        app.conf.task_annotations = {
            "tocsin.deliver": {"acks_late": False, "reject_on_worker_lost": False}
        }
        previous = _app.outbox.transport
        bind(app, _app.outbox, check=False)
        _app.outbox.transport = previous
        """
        )
    )
    assert main(["check", "-A", "checked_proj"]) == 1
    out = capsys.readouterr().out
    assert "unsafe celery settings: pickle is accepted" in out
    assert (
        "unsafe celery settings: the broker sqla+sqlite:// is kombu's database" in out
    )
    assert (
        "unsafe celery settings: tocsin.deliver runs without late acknowledgement"
        in out
    )
    assert (
        "unsafe celery settings: tocsin.deliver runs without reject-on-worker-lost"
        in (out)
    )
    assert "4 problems found" in out


def test_tocsin_check_passes_a_safe_app(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project.write_text(
        textwrap.dedent(
            """
        import _app
        from celery import Celery
        from tocsin.integrations.celery import bind

        app = Celery("proj", broker="redis://127.0.0.1:1/0")
        previous = _app.outbox.transport
        bind(app, _app.outbox, check=False)
        _app.outbox.transport = previous
        """
        )
    )
    assert main(["check", "-A", "checked_proj:app"]) == 0
    assert capsys.readouterr().out.startswith("no problem found (")


@pytest.mark.parametrize(
    ("unsafe", "message"),
    [
        ("late-ack", "tocsin.deliver runs without late acknowledgement"),
        ("reject-on-worker-lost", "tocsin.deliver runs without reject-on-worker-lost"),
    ],
)
def test_a_celery_worker_with_an_unsafe_setting_refuses_to_start(
    redis_url: str, tmp_path: Path, unsafe: str, message: str
) -> None:
    """The settings that lose events in test_celery_negative.py."""
    env = celery_environment(
        redis_url, f"sqlite:///{tmp_path / 'app.db'}", TOCSIN_TEST_UNSAFE=unsafe
    )
    run = subprocess.run(
        [CELERY, "-A", "_celery_app", "worker", "--pool", "solo", "-l", "warning"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert "tocsin: this Celery configuration loses events" in run.stderr
    assert message in run.stderr


# Both name the outbox (_app:outbox): the active one may be any test's.
def test_tocsin_relay_refuses_an_outbox_not_bound_to_celery(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "relay",
                "-A",
                "_app:outbox",
                "--database",
                f"sqlite:///{tmp_path / 'a.db'}",
            ]
        )
    assert exit_.value.code == 2
    assert "is not bound to Celery: call tocsin.integrations.celery.bind(" in (
        capsys.readouterr().err
    )


def test_tocsin_worker_refuses_an_outbox_bound_to_celery(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    # tocsin worker installs its SIGTERM and SIGINT handlers before serving.
    handlers = {number: signal.getsignal(number) for number in (SIGINT, SIGTERM)}
    try:
        with bound_app(), pytest.raises(SystemExit) as exit_:
            main(["worker", "-A", "_app:outbox", "--database", url])
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    assert exit_.value.code == 2
    assert "the events of this outbox are delivered by Celery: run `celery -A" in (
        capsys.readouterr().err
    )
