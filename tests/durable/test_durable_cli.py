"""The tocsin command: ``tocsin outbox ...`` and the errors of ``tocsin worker``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import _app
import pytest
from _processes import environment
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from tocsin.cli import main
from tocsin.durable import Worker
from tocsin.transaction import unit_of_work


def tocsin(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit:
        code = int(exit.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_dead_one_done_one_pending(engine: Engine) -> None:
    def fail(event: object, **named: object) -> None:
        if named.get("order_id") == 1:
            raise ValueError("the carrier is closed")

    _app.hook = fail
    with Session(engine) as session:
        with unit_of_work(session):
            _app.order_placed.send(sender="shop", order_id=1)
            _app.order_placed.send(sender="shop", order_id=2)
        session.commit()
    with engine.begin() as connection:
        connection.execute(update(_app.outbox.table).values(max_attempts=1))
    Worker(_app.outbox).run_once()
    with Session(engine) as session:
        session.add(_app.Item(name="waiting"))
        session.commit()


def test_outbox_status_counts_the_events_by_state(
    engine: Engine, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    one_dead_one_done_one_pending(engine)
    code, out, _ = tocsin(
        capsys, "outbox", "status", "-A", "_app", "--database", database_url
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[:5] == [
        "pending         1",
        "retrying        0",
        "running         0",
        "done            1",
        "dead            1",
    ]
    assert lines[5].startswith("oldest pending: ")
    assert lines[5].endswith(" s ago")


def test_outbox_dead_lists_the_dead_events_with_their_error(
    engine: Engine, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    one_dead_one_done_one_pending(engine)
    code, out, _ = tocsin(
        capsys, "outbox", "dead", "-A", "_app", "--database", database_url
    )
    assert code == 0
    assert out.startswith("row 1  orders.ship  queue orders  1 attempts  died ")
    assert "    ValueError: the carrier is closed\n" in out
    assert out.endswith("1 dead event\n")


def test_outbox_replay_of_one_row_then_of_all(
    engine: Engine, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    one_dead_one_done_one_pending(engine)
    base = ("-A", "_app", "--database", database_url)
    assert (
        tocsin(capsys, "outbox", "replay", "1", *base)[1] == "1 event pending again\n"
    )
    assert tocsin(capsys, "outbox", "replay", "--all", *base)[1] == (
        "0 events pending again\n"
    )
    code, _, err = tocsin(capsys, "outbox", "replay", "2", *base)
    assert code == 2
    assert "No dead event with row id 2 in tocsin_outbox" in err


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["outbox", "replay"], "replay takes row ids of dead events, or --all"),
        (["outbox", "replay", "1", "--all"], "(not both)"),
        (["outbox", "status", "-A", "no_such_app"], "no module named 'no_such_app'"),
        (["outbox", "status", "-A", "_app:missing"], "module '_app' has no 'missing'"),
        (
            ["outbox", "status", "-A", "_app:Item"],
            "is <class '_app.Item'>, not a tocsin Outbox",
        ),
        (["outbox", "status", "--database", "not a url"], "--database not a url"),
        (
            ["worker", "-A", "_app", "-c", "0"],
            "concurrency and prefetch must be at least 1, not 0 and 1",
        ),
        (
            ["worker", "-A", "_app", "--prefetch", "0"],
            "concurrency and prefetch must be at least 1, not 1 and 0",
        ),
        (
            ["worker", "-A", "_app", "--lease", "0"],
            "lease and poll_interval are positive",
        ),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_command_lines_exit_2_with_the_problem(
    engine: Engine,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    error: str,
) -> None:
    code, _, err = tocsin(capsys, *argv)
    assert code == 2
    assert error in err


def test_the_installed_command_creates_an_outbox_and_needs_a_database(
    tmp_path: Path,
) -> None:
    script = Path(sys.executable).with_name("tocsin")
    url = f"sqlite:///{tmp_path / 'fresh.db'}"

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *argv],
            env=environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    missing = run("outbox", "status")
    assert missing.returncode == 2
    assert "no outbox: give -A the module that creates your" in missing.stderr
    no_table = run("worker", "--database", url)
    assert no_table.returncode == 2
    assert "The table tocsin_outbox does not exist in sqlite:///" in no_table.stderr
    created = run("outbox", "create", "--database", url)
    assert (created.returncode, created.stdout) == (0, "tocsin_outbox: ready\n")
    status = run("outbox", "status", "--database", url)
    assert status.stdout.splitlines()[0] == "pending         0"
    assert run("--help").stdout.count("deliver the events of durable receivers") == 1
