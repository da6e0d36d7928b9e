"""tocsin's pytest plugin, run by pytest itself on inner test files (pytester)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tocsin.testing import isolated_connections

DOCS = Path(__file__).resolve().parent.parent / "docs" / "testing.md"

# In-process inner runs, in file order (some inner tests check what the one
# before them left behind), without the plugins that they do not need and that
# would cost time (hypothesis would be imported, and assertion-rewritten, anew).
INNER_ARGS = ("-p", "no:randomly", "-p", "no:hypothesispytest")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.syspathinsert()
    # The inner run shares this process's catalog signals: what it connects
    # (on purpose, in the control run without isolation) must not reach the
    # tests that come after.
    with isolated_connections():
        return pytester.runpytest(*INNER_ARGS, *args)


def test_the_fixtures_come_from_the_entry_point_and_can_be_turned_off(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        def test_uses_the_fixtures(
            tocsin_capture, tocsin_on_commit_callbacks, tocsin_isolated
        ):
            pass
        """
    )
    run(pytester).assert_outcomes(passed=1)
    turned_off = run(pytester, "-p", "no:tocsin")
    turned_off.assert_outcomes(errors=1)
    turned_off.stdout.fnmatch_lines(["*fixture 'tocsin_capture' not found*"])


def test_importing_tocsin_testing_does_not_import_pytest() -> None:
    # With pytest unimportable, as in an application's production image.
    code = (
        "import sys; sys.modules['pytest'] = None; sys.modules['_pytest'] = None\n"
        "import tocsin.testing\n"
        "print(sorted(n for n in sys.modules if 'pytest' in n))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "['_pytest', 'pytest']"  # only the blockers


def test_tocsin_capture_records_until_the_end_of_the_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        from tocsin import Signal
        from tocsin.signals import post_save

        class User:
            pass

        seen = []

        def test_records_the_sends_of_the_sender(tocsin_capture):
            sent = tocsin_capture(post_save, sender=User)
            everything = tocsin_capture(post_save)
            post_save.send(User, instance="u1", created=True)
            post_save.send(object, instance="o1", created=True)
            assert [s.kwargs["instance"] for s in sent] == ["u1"]
            assert [s.kwargs["instance"] for s in everything] == ["u1", "o1"]
            seen.append(sent)

        def test_the_capture_ended_with_the_test():
            post_save.send(User, instance="u2", created=True)
            assert [s.kwargs["instance"] for s in seen[0]] == ["u1"]
            assert "send" not in vars(post_save)
        """
    )
    run(pytester).assert_outcomes(passed=2)


def test_tocsin_on_commit_callbacks_collects_and_executes(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        from tocsin.transaction import on_commit

        def test_collects(tocsin_on_commit_callbacks):
            calls = []
            with tocsin_on_commit_callbacks() as callbacks:
                on_commit(lambda: calls.append("later"))
            assert calls == [] and len(callbacks) == 1
            callbacks[0]()
            assert calls == ["later"]

        def test_executes(tocsin_on_commit_callbacks):
            calls = []
            with tocsin_on_commit_callbacks(execute=True) as callbacks:
                on_commit(lambda: calls.append("at the end"))
                assert calls == []
            assert calls == ["at the end"] and len(callbacks) == 1
        """
    )
    run(pytester).assert_outcomes(passed=2)


# The inner files of the isolation tests: a project's signals module, a test
# that rewires signals, and one that checks what it left behind.
SHOP_SIGNALS = """
    from tocsin import Signal
    from tocsin.signals import post_save

    order_placed = Signal()

    def audit(sender, **kwargs):
        pass

    post_save.connect(audit, dispatch_uid="audit")
"""

REWIRING_TESTS = """
    import pytest
    from tocsin.signals import post_save, user_logged_in
    from shop_signals import order_placed

    # As the outer process left them, with shop_signals' "audit" connected.
    POST_SAVE = post_save.receivers_info()
    USER_LOGGED_IN = user_logged_in.receivers_info()

    def on_order(sender, **kwargs):
        pass

    @pytest.fixture
    def connected_by_a_fixture():
        user_logged_in.connect(on_order, weak=False)

    def test_rewires({fixture}, connected_by_a_fixture):
        order_placed.connect(on_order, weak=False)
        post_save.connect(on_order, weak=False)
        assert post_save.disconnect(dispatch_uid="audit")

    def test_nothing_leaked():
        assert order_placed.receivers_info() == []
        assert post_save.receivers_info() == POST_SAVE
        assert "audit" in [i.dispatch_uid for i in POST_SAVE]
        assert user_logged_in.receivers_info() == USER_LOGGED_IN
"""


def write_isolation_files(
    pytester: pytest.Pytester, ini: str, fixture: str = "tocsin_isolated"
) -> None:
    pytester.makepyfile(
        shop_signals=textwrap.dedent(SHOP_SIGNALS),
        test_rewiring=textwrap.dedent(REWIRING_TESTS).replace("{fixture}", fixture),
    )
    pytester.makeini(f"[pytest]\n{ini}\n")


def test_without_isolation_the_connections_leak_into_the_next_test(
    pytester: pytest.Pytester,
) -> None:
    # The control for the tests below: the inner files do detect a leak.
    write_isolation_files(pytester, ini="", fixture="tmp_path")
    run(pytester).assert_outcomes(passed=1, failed=1)


def test_tocsin_isolated_undoes_the_tests_connections(
    pytester: pytest.Pytester,
) -> None:
    write_isolation_files(pytester, ini="tocsin_signal_modules = shop_signals")
    run(pytester).assert_outcomes(passed=2)


def test_tocsin_isolated_watches_only_the_listed_modules_besides_the_catalog(
    pytester: pytest.Pytester,
) -> None:
    write_isolation_files(pytester, ini="")
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*assert order_placed.receivers_info() == []*"])


def test_tocsin_isolate_applies_to_every_test_and_its_fixtures(
    pytester: pytest.Pytester,
) -> None:
    write_isolation_files(
        pytester,
        ini="tocsin_signal_modules = shop_signals\ntocsin_isolate = true",
        fixture="tmp_path",
    )
    run(pytester).assert_outcomes(passed=2)


def test_an_unimportable_signal_module_is_a_usage_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_it(tocsin_isolated): pass")
    pytester.makeini("[pytest]\ntocsin_signal_modules = no_such_module\n")
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*tocsin_signal_modules names 'no_such_module', which cannot be imported*"]
    )


def test_the_pytest_examples_of_the_docs_pass(pytester: pytest.Pytester) -> None:
    text = DOCS.read_text(encoding="utf-8")
    files = {
        match.group(1): match.group(2)
        for match in re.finditer(r"```python\n# (test_\w+)\.py\n(.*?)```", text, re.S)
    }
    assert files, "docs/testing.md has no pytest example"
    pytester.makepyfile(**files)
    run(pytester).assert_outcomes(passed=3)
