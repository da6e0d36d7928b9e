"""``tocsin signals``: every signal and its receivers, in dispatch order."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from _cli import APPS, REPO, golden, stable, tocsin


def test_the_table_lists_each_kind_of_receiver_in_dispatch_order() -> None:
    run = tocsin("-A", "inspected", "signals")
    assert run.returncode == 0, run.stderr
    assert stable(run.stdout) == golden("inspected.table.txt", run.stdout)
    lines = run.stdout.splitlines()
    # Priority 10 first, then registration order; the dead one last.
    order = [
        match.group(1)
        for line in lines
        if (match := re.search(r" -?\d+  (inspected\.\S+)", line))
    ]
    assert order.index("inspected.receivers.first_async") < order.index(
        "inspected.receivers.plain"
    )


def test_the_json_is_versioned_golden_and_deterministic() -> None:
    first = tocsin("-A", "inspected", "signals", "--format", "json")
    second = tocsin("--app", "inspected", "signals", "--format=json")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert stable(first.stdout) == golden("inspected.json", first.stdout)
    document = json.loads(first.stdout)
    assert document["version"] == 1
    rows = {r["receiver"]: r for s in document["signals"] for r in s["receivers"]}
    assert rows["inspected.receivers.durable_mail"]["durable"]["queue"] == "mail"
    assert rows["inspected.receivers.after_commit"]["on_commit"] is True
    assert rows["inspected.receivers.first_async"]["async"] is True
    assert rows["inspected.receivers.connect_for_a_while.<locals>.forgotten"]["dead"]
    # The location of the decorated function, not of functools.wraps' wrapper.
    assert rows["inspected.receivers.wrapped"]["line"] == 36
    assert rows["functools.partial(inspected.receivers.takes)"]["line"] == 65


def test_the_lazy_sender_is_listed_once_resolved_as_its_model() -> None:
    run = tocsin("-A", "inspected", "signals", "--signal", "*.post_save")
    lazy = [line for line in run.stdout.splitlines() if "lazy_thing" in line]
    assert len(lazy) == 1
    assert "inspected.models.Thing" in lazy[0]


def test_python_m_tocsin_and_the_console_script_print_the_same() -> None:
    by_module = tocsin("-A", "inspected", "signals", "--format", "json")
    by_script = tocsin("-A", "inspected", "signals", "--format", "json", module=False)
    assert by_script.returncode == by_module.returncode == 0
    assert by_script.stdout == by_module.stdout


def test_the_app_can_come_from_tocsin_app_and_after_the_command() -> None:
    by_env = tocsin("signals", env={"TOCSIN_APP": "inspected"})
    after = tocsin("signals", "-A", "inspected")
    assert by_env.returncode == 0, by_env.stderr
    assert by_env.stdout == after.stdout
    assert "inspected.receivers.plain" in by_env.stdout


def test_an_app_that_fails_to_import_exits_1_with_its_traceback() -> None:
    run = tocsin("-A", "broken", "signals")
    assert run.returncode == 1
    assert "Traceback (most recent call last)" in run.stderr
    assert "RuntimeError: the database URL is not set" in run.stderr
    missing = tocsin("-A", "not_a_module", "signals")
    assert missing.returncode == 1
    assert "no module named 'not_a_module'" in missing.stderr


def test_usage_errors_exit_2() -> None:
    no_app = tocsin("signals")
    assert no_app.returncode == 2
    assert "no application: give -A MODULE[:ATTR], or set $TOCSIN_APP" in no_app.stderr
    bad_format = tocsin("-A", "inspected", "signals", "--format", "yaml")
    assert bad_format.returncode == 2
    assert "invalid choice: 'yaml'" in bad_format.stderr


def test_colour_only_on_a_terminal() -> None:
    piped = tocsin("-A", "inspected", "signals")
    assert "\x1b[" not in piped.stdout
    main, secondary = os.openpty()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("NO_COLOR", None)
    process = subprocess.run(
        [sys.executable, "-m", "tocsin", "-A", "inspected", "signals"],
        cwd=APPS,
        env=env,
        stdout=secondary,
        stderr=subprocess.DEVNULL,
        timeout=60,
    )
    os.close(secondary)
    output = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closed
            break
        if not chunk:
            break
        output += chunk
    os.close(main)
    assert process.returncode == 0
    assert b"\x1b[1;34minspected.receivers.order_placed" in output
    assert b"\x1b[31m" in output  # the dead receiver in red


LISTING_CHANGES_NOTHING = """
import contextlib, io, json
import tocsin
from tocsin.cli import main
from tocsin.cli._inspect import inspect_app
import argparse

# The application, loaded first, as a process that inspects itself would.
loaded = inspect_app(argparse.Namespace(app="inspected"))
signals = [entry.signal for entry in loaded.signals]
heard = []
def spy(signal, **named):
    heard.append(signal)
for signal in signals:
    signal.connect(spy, weak=False)
before = [signal.receivers_info() for signal in signals]
for command in (["signals"], ["signals", "--format", "json"], ["check"]):
    with contextlib.redirect_stdout(io.StringIO()):
        main(["-A", "inspected", *command])
after = [signal.receivers_info() for signal in signals]
print(json.dumps({"same": before == after, "heard": len(heard)}))
"""


def test_listing_connects_nothing_and_sends_nothing() -> None:
    run = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", LISTING_CHANGES_NOTHING],
        cwd=APPS,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"same": True, "heard": 0}


def test_tocsins_own_receivers_are_listed_only_with_internal() -> None:
    own = "tocsin.apps._registry.Registry._class_prepared"
    assert own not in tocsin("-A", "inspected", "signals").stdout
    shown = tocsin("-A", "inspected", "signals", "--internal")
    assert own in shown.stdout
    assert "tocsin/apps/_registry.py:" in shown.stdout
