"""``tocsin check``: exit 1 and say why when the wiring is wrong, 0 when clean."""

from __future__ import annotations

from _cli import tocsin


def test_each_mistake_of_the_fixture_app_is_reported_and_exits_1() -> None:
    run = tocsin("-A", "inspected", "check")
    assert run.returncode == 1
    lines = run.stdout.splitlines()
    assert lines[-1] == "4 problems found"
    problems = "\n".join(lines)
    assert (
        "dead receiver: inspected.receivers.connect_for_a_while.<locals>.forgotten "
        "(inspected/receivers.py:72) was connected to "
        "inspected.receivers.order_shipped with a weak reference" in problems
    )
    assert (
        "inspected.receivers.notify_again (inspected/receivers.py:84) was not "
        "connected to inspected.receivers.order_shipped: dispatch_uid "
        "'inspected.notify' is already inspected.receivers.notify's" in problems
    )
    assert "dispatch_uid 'inspected.audit' is used on 2 signals" in problems
    assert (
        "durable receiver 'inspected.ledger' ('inspected.receivers:ledger') "
        "cannot be imported by name: inspected.receivers:ledger is now another "
        "object" in problems
    )


def test_a_lazy_sender_that_never_resolves_exits_1_naming_it() -> None:
    run = tocsin("-A", "unresolved", "check")
    assert run.returncode == 1
    assert (
        "check: unresolved lazy sender: The post_save receiver unresolved.on_save "
        "has a lazy reference to 'unresolved.Missing', but app 'unresolved' has "
        "no model 'Missing'." in run.stdout
    )


def test_a_clean_app_exits_0() -> None:
    run = tocsin("-A", "examples.shop.wiring", "check")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("no problem found (")


def test_an_app_that_fails_to_import_exits_1_with_its_traceback() -> None:
    run = tocsin("-A", "broken", "check")
    assert run.returncode == 1
    assert "RuntimeError: the database URL is not set" in run.stderr


def test_a_check_is_one_more_function_of_the_registry() -> None:
    from tocsin.cli import check

    assert [c.__name__ for c in check.CHECKS] == [
        "dead_receiver",
        "duplicate_dispatch_uid",
        "unresolved_lazy_sender",
        "durable_receiver_not_importable",
        "unsafe_celery_settings",
    ]
