"""Mutation testing of one module: ``make mutation MODULE=src/tocsin/transaction.py``.

mutmut (pinned in the Makefile) makes small faults in the module (a flipped
comparison, a dropped argument, a changed constant...) and runs the tests that
cover each faulty function; a mutant that no test notices "survived". This
script runs mutmut in a scratch copy of the tree (``.mutation/<module>/``, so
the work tree is never touched and two modules can run side by side), limited
to the module's own test files (``TESTS`` below), and writes the module's report
to ``reports/mutation/<module>.md``: its counts, each survivor's diff, and the
mutants listed as equivalent in ``reports/mutation/equivalents.toml`` (a change
no user could observe), each with the line that says why.

The score is killed / (mutants - equivalent). Run it with the mutation
virtualenv's Python (the Makefile does); it needs no network.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports" / "mutation"
EQUIVALENTS = REPORTS / "equivalents.toml"

# The core's tests: every top-level test file but those that test the tree
# rather than behaviour (docs, layers, exported names) or run the demo.
CORE_TESTS = ["tests/test_*.py"]
CORE_EXCLUDED = {
    "tests/test_doctests.py",
    "tests/test_demo.py",
    "tests/test_layers.py",
    "tests/test_exported_members.py",
    "tests/test_django_yardstick.py",
    # These run subprocesses for each test (a wheel build and pip installs, a
    # pytest session) or redraw the benchmark charts: a surviving mutant paid
    # about 20 s for them, and they test the packaging, the plugin and the
    # charts, which have tests of their own, not the core's behaviour.
    "tests/test_packaging.py",
    "tests/test_pytest_plugin.py",
    "tests/test_benchmark_charts.py",
}
# mutmut waits (estimated test time + 1 s) * 15 before it calls a mutant a
# timeout: with the core's suite (about 40 s of tests) that is 10 minutes for
# each mutant that makes a send wait forever (a dropped cancellation, a lock
# never released). (estimate + 15 s) * 4 still leaves room for a busy machine,
# and for what the estimate leaves out (collecting and importing the tests:
# with 1 s, mutants covered by a few short tests were called timeouts).
CORE_TIMEOUT = ["timeout_multiplier = 4", "timeout_constant = 15"]

# The send path's modules, with only the test files that send: all of
# CORE_TESTS takes over a minute per surviving mutant (packaging builds wheels,
# the memory and thread tests run for seconds), which made a run of these
# modules take hours.
SEND_TESTS = [
    "tests/test_async*.py",
    "tests/test_loop_never_blocked.py",
    "tests/test_receivers_alive_when_sent.py",
    "tests/test_receiver_kinds.py",
    "tests/test_signal.py",
    "tests/test_send_keywords.py",
    "tests/test_dispatch_names.py",
    "tests/test_stateful.py",
    "tests/test_transaction.py",
    "tests/test_connect_options.py",
]

# Which test files exercise which module (globs, relative to the root). Keep it
# up to date when a test file for a module is added under another name.
TESTS: dict[str, list[str]] = {
    "src/tocsin/_signal.py": CORE_TESTS,
    "src/tocsin/_dispatch.py": SEND_TESTS,
    # And the two users of _async outside the core: the ASGI middleware starts
    # its request_finished task with it, SQLAlchemy's AsyncSession registers a
    # bridge to await receivers on the session's loop. Its eager-task path
    # exists from Python 3.12: run it with a mutation virtualenv of 3.12 or
    # later (one made by `make mutation ... PYTHON=python3.12` when there is no
    # .venv-mutation yet, or this script run by such a virtualenv's Python).
    "src/tocsin/_async.py": [
        *SEND_TESTS,
        "tests/integrations/test_asgi_receiver_tasks.py",
        "tests/integrations/test_sqlalchemy_async.py",
    ],
    "src/tocsin/_refs.py": [
        *SEND_TESTS,
        "tests/test_weak_references.py",
        "tests/test_receiver.py",
        "tests/test_concurrent_connections.py",
        "tests/test_threads.py",
    ],
    "src/tocsin/_options.py": CORE_TESTS,
    "src/tocsin/_receiver.py": CORE_TESTS,
    "src/tocsin/_connections.py": CORE_TESTS,
    # The inspection tools and the timeline are what name receivers and senders.
    "src/tocsin/_names.py": ["tests/cli/test_*.py", "tests/debug/test_*.py"],
    "src/tocsin/_log.py": ["tests/test_logging_observer.py", "tests/test_observe.py"],
    # The hook's own tests, its on_commit reporting and its logging observer
    # (tests/debug starts servers and a browser: it only consumes the hook).
    "src/tocsin/_observe.py": [
        "tests/test_observe*.py",
        "tests/test_logging_observer.py",
        "tests/integrations/test_observe_on_commit.py",
    ],
    "src/tocsin/transaction.py": [
        "tests/test_transaction*.py",
        "tests/integrations/test_sqlalchemy_on_commit.py",
    ],
    "src/tocsin/auth.py": [
        "tests/test_auth*.py",
        "tests/integrations/test_flask_login.py",
    ],
    "src/tocsin/testing.py": [
        "tests/test_testing*.py",
        "tests/test_pytest_plugin.py",
    ],
    "src/tocsin/integrations/asgi.py": [
        "tests/integrations/test_asgi*.py",
        "tests/integrations/test_wsgi_asgi_*.py",
        "tests/integrations/test_fastapi.py",
        "tests/integrations/test_extras.py",
    ],
    "src/tocsin/integrations/wsgi.py": [
        "tests/integrations/test_wsgi*.py",
        "tests/integrations/test_extras.py",
    ],
    "src/tocsin/integrations/sqlalchemy": ["tests/integrations/test_sqlalchemy_*.py"],
    "src/tocsin/apps": ["tests/apps/test_*.py"],
}

# The modules whose mutants can hang a test (an async send that loses a
# wake-up or a cancellation waits forever): their runs load
# scripts/pytest_test_timeout.py, which fails a test after this many seconds
# (well above the module's slowest test on a loaded machine: the memory tests of
# weak references take up to 8 s), instead of waiting for mutmut's timeout of
# 15 times the mutant's usual test time.
HANGING = {
    "src/tocsin/_async.py": 15,
    "src/tocsin/_dispatch.py": 15,
    "src/tocsin/_refs.py": 40,
}

# The tests that cannot see the mutants, or need not: the PostgreSQL variants
# start a server per mutant (hours for the SQLAlchemy integration's ~1,500
# mutants), and they test nothing the SQLite ones do not (the integration has
# no dialect-specific code; make test runs them); the other-Python test imports
# src/ in an interpreter that has no mutmut to import.
DESELECTED = "not postgresql and not marked_by_inspect"
# In a core run, mutmut's trampoline (a frame of its own, outside tocsin) sits
# between tocsin's frames on every call into the mutated module, so the warning
# that points at the caller of connect() points into tocsin instead: these
# tests, which check where the warning points, fail there whatever the mutant.
CORE_DESELECTED = " and ".join(
    f"not {name}"
    for name in [
        "test_weak_lambda_warns_once_at_connect_pointing_at_the_caller",
        "test_weak_local_function_via_receiver_warns_at_the_decorator",
        "test_receiver_warns_about_a_weakly_held_local_function_at_its_line",
        "test_a_weakly_connected_lambda_warns_and_names_it",
    ]
)
# And in the SQLAlchemy run, the tests that check the tree, not behaviour,
# and fail on mutmut's copy before any mutant runs: its source holds every
# mutant's strings, its modules an extra name (MutantDict), and it has no
# Makefile.
SQLALCHEMY_DESELECTED = (
    "not test_only_compat_uses_sqlalchemy_private_names"
    " and not test_make_test_runs_the_oldest_sqlalchemy_that_pyproject_allows"
    " and not test_the_public_names_are_the_curated_all"
)

# mutmut's exit-code statuses, grouped the way the report counts them.
KILLED = {"killed", "timeout", "segfault"}
# Not run (yet): a run stopped early leaves these, and the report says how many.
UNCHECKED = {"not checked", "check was interrupted by user"}
SURVIVED = {"survived", "no tests"}


@dataclass
class Equivalent:
    mutant: str
    change: str
    why: str


@dataclass
class Result:
    module: str
    command: str
    statuses: dict[str, str] = field(default_factory=dict)
    diffs: dict[str, str] = field(default_factory=dict)


def test_files(module: str) -> list[str]:
    if module not in TESTS:
        known = "\n  ".join(sorted(TESTS))
        sys.exit(
            f"no tests are mapped to {module!r}: add it to TESTS in "
            f"scripts/mutation.py, or pass one of:\n  {known}"
        )
    files: set[str] = set()
    for pattern in TESTS[module]:
        files.update(str(p.relative_to(ROOT)) for p in ROOT.glob(pattern))
    if TESTS[module] is CORE_TESTS:
        files -= CORE_EXCLUDED
    return sorted(files)


def prepare(module: str, scratch: Path, tests: list[str]) -> None:
    """A copy of the tree in ``scratch`` with mutmut's settings for ``module``."""
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    # The tests import benchmarks' helpers (a throwaway PostgreSQL, a free port).
    for name in ["src", "tests", "docs", "benchmarks", "pyproject.toml", "README.md"]:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, scratch / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(source, scratch / name)
    if module in HANGING:
        shutil.copy2(ROOT / "scripts" / "pytest_test_timeout.py", scratch / "tests")
    only = f"{module}/*" if (ROOT / module).is_dir() else module
    # The core's private modules, whatever tests they map to.
    core = module.startswith("src/tocsin/_")
    deselected = DESELECTED
    if core:
        deselected += f" and {CORE_DESELECTED}"
    if "sqlalchemy" in module:
        deselected += f" and {SQLALCHEMY_DESELECTED}"
    lines = [
        "[mutmut]",
        "source_paths = src",
        # Each mutant's tests in a process forked from one that only collected
        # them: with plain fork, state left by the clean run leaks into the
        # mutants' runs and kills some of them for nothing.
        "process_isolation = forkserver",
        *(CORE_TIMEOUT if core else []),
        f"only_mutate = {only}",
        # mutmut runs the tests inside mutants/: what they read must be there.
        "also_copy =",
        "    docs",
        "    benchmarks",
        "    README.md",
        "pytest_add_cli_args_test_selection =",
        *(f"    {t}" for t in tests),
        # A fixed order: a mutant is killed or not whatever the seed.
        "pytest_add_cli_args =",
        "    -p",
        "    no:randomly",
        "    -q",
        *(["    -p", "    pytest_test_timeout"] if module in HANGING else []),
        "    -k",
        f"    {deselected}",
    ]
    (scratch / "setup.cfg").write_text("\n".join(lines) + "\n", encoding="utf-8")


def mutmut(scratch: Path, *args: str) -> str:
    binary = Path(sys.executable).parent / "mutmut"
    done = subprocess.run(
        [str(binary), *args], cwd=scratch, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"mutmut {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def run(module: str, scratch: Path, jobs: int) -> Result:
    log = scratch / "mutmut-run.log"
    binary = Path(sys.executable).parent / "mutmut"
    print(f"mutmut: mutating {module} in {scratch} (log: {log})", flush=True)
    env = dict(os.environ)
    if module in HANGING:
        env["TOCSIN_TEST_TIMEOUT"] = str(HANGING[module])
    with log.open("w", encoding="utf-8") as out:
        done = subprocess.run(
            [str(binary), "run", "--max-children", str(jobs)],
            cwd=scratch,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
            env=env,
        )
    if done.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        sys.exit(
            f"mutmut run failed (exit {done.returncode}); the end of {log}:\n{tail}"
        )
    return collect(module, scratch)


def collect(module: str, scratch: Path) -> Result:
    """The statuses of the last run in ``scratch``, and the diffs of survivors."""
    result = Result(module=module, command=f"make mutation MODULE={module}")
    for line in mutmut(scratch, "results", "--all", "true").splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name:
            result.statuses[name] = status
    for name, status in result.statuses.items():
        if status not in KILLED and status not in UNCHECKED:
            result.diffs[name] = mutmut(scratch, "show", name).split("\n", 1)[1]
    return result


def load_equivalents() -> dict[str, Equivalent]:
    if not EQUIVALENTS.exists():
        return {}
    data = tomllib.loads(EQUIVALENTS.read_text(encoding="utf-8"))
    return {
        item["mutant"]: Equivalent(item["mutant"], item["change"], item["why"])
        for item in data.get("equivalent", [])
    }


def added_lines(diff: str) -> list[str]:
    return [
        line[1:].strip()
        for line in diff.splitlines()
        if line.startswith("+") and not line.startswith("+++")
    ]


def slug(module: str) -> str:
    return (
        re.sub(r"[^A-Za-z0-9_.]+", ".", module.removeprefix("src/"))
        .strip(".")
        .removesuffix(".py")
    )


def report(result: Result, equivalents: dict[str, Equivalent]) -> dict[str, object]:
    """Write the module's report; return its counts."""
    killed = [n for n, s in result.statuses.items() if s in KILLED]
    equivalent: list[tuple[str, Equivalent]] = []
    survivors: list[tuple[str, str]] = []
    stale: list[str] = []
    unchecked = [n for n, s in result.statuses.items() if s in UNCHECKED]
    for name, status in result.statuses.items():
        if status in KILLED or status in UNCHECKED:
            continue
        listed = equivalents.get(name)
        if listed is not None and listed.change.strip() in added_lines(
            result.diffs[name]
        ):
            equivalent.append((name, listed))
            continue
        if listed is not None:
            stale.append(name)
        survivors.append((name, status))
    total = len(result.statuses) - len(unchecked)
    scored = total - len(equivalent)
    score = 100.0 * len(killed) / scored if scored else 100.0
    counts: dict[str, object] = {
        "mutants": total,
        "killed": len(killed),
        "survived": len(survivors),
        "equivalent": len(equivalent),
        "score": round(score, 1),
        "not run": len(unchecked),
        "command": result.command,
    }
    lines = [
        f"# Mutation report: `{result.module}`",
        "",
        f"Written by `{result.command}` (mutmut; see CONTRIBUTING.md).",
        "Score = killed / (mutants - equivalent).",
        *(
            [f"**Partial run**: {len(unchecked)} more mutants were not run."]
            if unchecked
            else []
        ),
        "",
        "| mutants | killed | survived | equivalent | score |",
        "| --- | --- | --- | --- | --- |",
        f"| {total} | {len(killed)} | {len(survivors)} | {len(equivalent)} | {score:.1f}% |",
        "",
        "## Survivors",
        "",
    ]
    if not survivors:
        lines.append("None.")
    for name, status in survivors:
        note = (
            " (listed as equivalent, but the change differs now: re-check)"
            if name in stale
            else ""
        )
        lines += [
            f"### `{name}`: {status}{note}",
            "",
            "```diff",
            result.diffs[name].strip(),
            "```",
            "",
        ]
    lines += ["", "## Equivalent mutants", ""]
    if not equivalent:
        lines.append("None.")
    for name, item in equivalent:
        lines.append(f"- `{name}` (`{item.change.strip()}`): {item.why}")
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / f"{slug(result.module)}.md").write_text(
        "\n".join(lines).rstrip() + "\n", encoding="utf-8"
    )
    return counts


def write_summary(module: str, counts: dict[str, object]) -> None:
    scores_path = REPORTS / "scores.json"
    scores = (
        json.loads(scores_path.read_text(encoding="utf-8"))
        if scores_path.exists()
        else {}
    )
    scores[module] = counts
    scores = dict(sorted(scores.items()))
    scores_path.write_text(json.dumps(scores, indent=2) + "\n", encoding="utf-8")
    lines = [
        "# Mutation scores",
        "",
        "Each module's last `make mutation MODULE=...` run (written by",
        "scripts/mutation.py; the survivors and equivalent mutants are in each",
        "module's report beside this file). Score = killed / (mutants - equivalent).",
        "",
        "| module | mutants | killed | survived | equivalent | score | report |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, c in scores.items():
        lines.append(
            f"| `{name}` | {c['mutants']} | {c['killed']} | {c['survived']} "
            f"| {c['equivalent']} | {c['score']}%{_partial(c)} "
            f"| [{slug(name)}.md]({slug(name)}.md) |"
        )
    (REPORTS / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _partial(counts: dict[str, object]) -> str:
    return f" (partial: {counts['not run']} not run)" if counts.get("not run") else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("module", help="a module or package under src/, as a path")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the report from the last run (after editing equivalents.toml)",
    )
    args = parser.parse_args()
    module = args.module.rstrip("/")
    if not (ROOT / module).exists():
        sys.exit(
            f"{module!r} does not exist: pass a path such as src/tocsin/transaction.py"
        )
    scratch = ROOT / ".mutation" / slug(module)
    if args.report_only:
        result = collect(module, scratch)
    else:
        prepare(module, scratch, test_files(module))
        os.environ.pop("PYTEST_ADDOPTS", None)
        result = run(module, scratch, args.jobs)
    counts = report(result, load_equivalents())
    write_summary(module, counts)
    print(
        f"{module}: {counts['mutants']} mutants, {counts['killed']} killed, "
        f"{counts['survived']} survived, {counts['equivalent']} equivalent: "
        f"score {counts['score']}% -> reports/mutation/{slug(module)}.md"
    )


if __name__ == "__main__":
    main()
