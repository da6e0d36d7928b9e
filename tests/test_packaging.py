"""The release: what ``python -m build`` makes installs and works on its own.

The sdist and the wheel are built once (the wheel from the sdist, as
``python -m build`` does, so the sdist is proven complete), then each install
below goes into a fresh virtualenv that has nothing but the wheel and one
extra, and runs a small program in a fresh interpreter there. Nothing here is
skipped: a build or an install that fails is a failure.
"""

from __future__ import annotations

import email.parser
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from email.message import Message
from pathlib import Path

import pytest

import tocsin

ROOT = Path(__file__).resolve().parent.parent


def run(*command: str | Path, cwd: Path | None = None) -> str:
    """Run a command; on failure, fail the test with what it printed."""
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, command))} exited {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory holding the sdist and the wheel built from this checkout."""
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, ROOT)
    return out


def wheel_of(dist: Path) -> Path:
    (wheel,) = dist.glob("tocsin-*.whl")
    return wheel


def sdist_of(dist: Path) -> Path:
    (sdist,) = dist.glob("tocsin-*.tar.gz")
    return sdist


def wheel_metadata(dist: Path) -> Message:
    wheel = wheel_of(dist)
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(archive.read(name).decode())


def install(tmp_path: Path, requirement: str) -> Path:
    """A fresh virtualenv holding ``requirement`` alone; returns its python."""
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    # This interpreter's pip installs into the new one; the pip cache is shared.
    run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--quiet",
        requirement,
    )
    return python


def test_twine_check_passes_for_the_sdist_and_the_wheel(dist: Path) -> None:
    output = run(
        sys.executable, "-m", "twine", "check", "--strict", *sorted(dist.iterdir())
    )
    assert output.count("PASSED") == 2, output


def test_the_wheel_version_is_the_one_in_the_package(dist: Path) -> None:
    assert wheel_metadata(dist)["Version"] == tocsin.__version__
    assert wheel_of(dist).name == f"tocsin-{tocsin.__version__}-py3-none-any.whl"


def test_published_metadata_names_the_licence_and_no_development_tool(
    dist: Path,
) -> None:
    metadata = wheel_metadata(dist)
    assert metadata["License-Expression"] == "BSD-3-Clause"
    assert metadata.get_all("License-File") == ["LICENSE"]
    # PEP 639: with a licence expression, no "License ::" classifier.
    classifiers = metadata.get_all("Classifier") or []
    assert not [c for c in classifiers if c.startswith("License ::")]
    assert {"Programming Language :: Python :: 3.11", "Typing :: Typed"} <= set(
        classifiers
    )
    assert metadata.get_all("Project-URL")
    assert sorted(metadata.get_all("Provides-Extra") or []) == [
        "celery",
        "flask",
        "opentelemetry",
        "sqlalchemy",
    ]
    requirements = metadata.get_all("Requires-Dist") or []
    assert all("extra ==" in requirement for requirement in requirements), requirements
    tools = ("pytest", "mypy", "ruff", "mkdocs", "django", "build", "twine")
    assert not [r for r in requirements if r.split(">")[0].split(";")[0] in tools]


def test_the_sdist_carries_the_licence_tests_and_docs(dist: Path) -> None:
    with tarfile.open(sdist_of(dist)) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"LICENSE", "CHANGELOG.md", "mkdocs.yml", "src/tocsin/py.typed"} <= names
    assert "tests/test_signal.py" in names
    assert "docs/core.md" in names


def test_the_wheel_alone_sends_and_reads_no_metadata_at_import(
    dist: Path, tmp_path: Path
) -> None:
    python = install(tmp_path, str(wheel_of(dist)))
    program = textwrap.dedent(
        """
        import sys
        import tocsin
        assert "importlib.metadata" not in sys.modules, "tocsin read its metadata"
        from tocsin import Signal
        shipped = Signal()
        def on_shipped(sender, order, **kwargs):
            return f"shipped {order}"
        shipped.connect(on_shipped)
        print(tocsin.__version__, shipped.send(sender="shop", order="#1")[0][1])
        try:
            import tocsin.integrations.sqlalchemy
        except ImportError as error:
            print(type(error).__name__, error)
        import importlib.metadata
        print(sorted(d.metadata["Name"] for d in importlib.metadata.distributions()))
        """
    )
    lines = run(python, "-c", program, cwd=tmp_path).splitlines()
    assert lines[0] == f"{tocsin.__version__} shipped #1"
    assert lines[1].startswith("MissingExtraError")
    assert 'pip install "tocsin[sqlalchemy]"' in lines[1]
    # The core installs nothing but itself.
    assert lines[2] == "['tocsin']"


def test_the_sqlalchemy_extra_sends_model_signals(dist: Path, tmp_path: Path) -> None:
    python = install(tmp_path, f"{wheel_of(dist)}[sqlalchemy]")
    program = textwrap.dedent(
        """
        from sqlalchemy import create_engine
        from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
        import tocsin.integrations.sqlalchemy as tocsin_sa
        from tocsin import receiver
        from tocsin.signals import post_save

        class Base(DeclarativeBase):
            pass

        tocsin_sa.install(Base)

        class User(Base):
            __tablename__ = "users"
            id: Mapped[int] = mapped_column(primary_key=True)
            email: Mapped[str]

        @receiver(post_save, sender=User, on_commit=True)
        def welcome(sender, instance, created, **kwargs):
            print("welcome", instance.email, created)

        engine = create_engine("sqlite://")
        Base.metadata.create_all(engine)
        with Session(engine, expire_on_commit=False) as session:
            session.add(User(email="ada@example.com"))
            session.commit()
        import greenlet  # the asyncio part of the extra
        """
    )
    assert run(python, "-c", program, cwd=tmp_path) == "welcome ada@example.com True\n"


def test_the_flask_extra_forwards_flask_login(dist: Path, tmp_path: Path) -> None:
    python = install(tmp_path, f"{wheel_of(dist)}[flask]")
    program = textwrap.dedent(
        """
        import flask, flask_login
        from tocsin.integrations import flask_login as tocsin_flask_login
        from tocsin.signals import user_logged_in

        app = flask.Flask("shop")
        app.secret_key = "test"
        flask_login.LoginManager(app).user_loader(lambda user_id: None)

        class Customer(flask_login.UserMixin):
            id = "ann"

        def audit(sender, user, request, **kwargs):
            print("logged in", user.id, request.path)

        user_logged_in.connect(audit)
        tocsin_flask_login.install()

        @app.post("/login")
        def login():
            flask_login.login_user(Customer())
            return "yes"

        app.test_client().post("/login")
        """
    )
    assert run(python, "-c", program, cwd=tmp_path) == "logged in ann /login\n"


def test_the_opentelemetry_extra_instruments_with_the_api_alone(
    dist: Path, tmp_path: Path
) -> None:
    python = install(tmp_path, f"{wheel_of(dist)}[opentelemetry]")
    program = textwrap.dedent(
        """
        import importlib.util
        from tocsin import Signal
        from tocsin.integrations.opentelemetry import TocsinInstrumentor

        # The extra is the API only: no SDK comes with it.
        assert importlib.util.find_spec("opentelemetry.sdk") is None
        order_completed = Signal(name="order_completed")

        def receipt(sender, order, **kwargs):
            return f"receipt for {order}"

        order_completed.connect(receipt)
        instrumentor = TocsinInstrumentor()
        instrumentor.instrument()
        print(order_completed.send("shop", order="#1")[0][1])
        instrumentor.uninstrument()
        """
    )
    assert run(python, "-c", program, cwd=tmp_path) == "receipt for #1\n"


def test_the_celery_extra_binds_an_outbox_with_safe_settings(
    dist: Path, tmp_path: Path
) -> None:
    python = install(tmp_path, f"{wheel_of(dist)}[celery]")
    program = textwrap.dedent(
        """
        import redis  # the broker's client comes with the extra
        from celery import Celery
        from sqlalchemy import create_engine
        from sqlalchemy.orm import DeclarativeBase
        from tocsin.durable import Outbox
        from tocsin.integrations.celery import bind, check_configuration

        class Base(DeclarativeBase):
            pass

        outbox = Outbox(Base.metadata, engine=create_engine("sqlite://"))
        app = Celery("proj", broker="redis://127.0.0.1:6379/0")
        bind(app, outbox)
        task = app.tasks["tocsin.deliver"]
        print(task.acks_late, task.reject_on_worker_lost, check_configuration(app))
        """
    )
    assert run(python, "-c", program, cwd=tmp_path) == "True True []\n"
