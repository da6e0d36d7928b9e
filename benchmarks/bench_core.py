"""The core dispatcher against django.dispatch, blinker, psygnal and a plain loop.

Every case is measured in this one process, all contenders interleaved (see
``_harness.measure``). Times are shown *net* of the harness's own cost of
calling a zero-argument lambda (measured alongside as ``(empty lambda)``), so
that a figure is the cost of the statement inside the lambda, such as
``signal.send(Sender, x=1)``. Subtracting it makes every ratio a little
stricter than the raw one.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import types
import weakref
from collections.abc import Callable
from typing import Any

from ._harness import (
    calibrate,
    format_time,
    goal_line,
    markdown_table,
    measure,
    ratio,
)

EMPTY = "(empty lambda)"


# -- the receivers and senders -------------------------------------------------


def receiver(sender: Any, **kwargs: Any) -> None:
    return None


async def async_receiver(sender: Any, **kwargs: Any) -> None:
    return None


async def sleeping_receiver(sender: Any, **kwargs: Any) -> None:
    await asyncio.sleep(0.02)


def copies(function: Callable[..., Any], count: int) -> list[Callable[..., Any]]:
    """Distinct function objects sharing ``function``'s code.

    They keep its module-level ``__qualname__``, so tocsin does not warn about
    local functions held weakly; the caller keeps them alive.
    """
    assert isinstance(function, types.FunctionType)
    return [
        types.FunctionType(function.__code__, function.__globals__, f"r{i}")
        for i in range(count)
    ]


class Sender:
    """The sender of every broadcast, standing for a model class."""


# -- the contenders' signals ---------------------------------------------------


def _django_signal_class() -> Any:
    from django.conf import settings

    if not settings.configured:
        settings.configure()
    from django.dispatch import Signal

    return Signal


def _tocsin_signal() -> Any:
    import tocsin

    return tocsin.Signal()


def _django_signal() -> Any:
    return _django_signal_class()(use_caching=True)


def _blinker_signal() -> Any:
    import blinker

    return blinker.Signal()


def _psygnal_signal() -> Any:
    import psygnal

    return psygnal.SignalInstance((object,))


MAKERS: dict[str, Callable[[], Any]] = {
    "tocsin": _tocsin_signal,
    "django": _django_signal,
    "blinker": _blinker_signal,
    "psygnal": _psygnal_signal,
}

LABELS = {
    "tocsin": "tocsin",
    "django": "Django `Signal(use_caching=True)`",
    "blinker": "blinker",
    "psygnal": "psygnal `emit`",
}


def _send(name: str, signal: Any, sender: Any) -> Callable[[], object]:
    if name == "psygnal":
        return lambda: signal.emit(sender)
    return lambda: signal.send(sender, x=1)


class Settings:
    """How long to measure: ``rounds`` rounds of about ``seconds`` each."""

    def __init__(self, quick: bool) -> None:
        self.rounds = 5 if quick else 41
        self.seconds = 0.001 if quick else 0.004


def _timed(
    contenders: dict[str, Callable[[], object]], settings: Settings
) -> dict[str, float]:
    """Median seconds per call of each contender, net of the empty lambda."""
    contenders = {EMPTY: lambda: None, **contenders}
    number = calibrate(contenders, seconds=settings.seconds)
    results = measure(contenders, number=number, rounds=settings.rounds)
    empty = results.pop(EMPTY)
    return {name: max(value - empty, 0.0) for name, value in results.items()}


def _cell(value: float, baseline: float | None) -> str:
    if baseline is None:
        return format_time(value)
    return f"{format_time(value)} ({ratio(value, baseline)})"


# -- the cases -------------------------------------------------------------------


class Results:
    """Every figure measured, by case, for the tables and the goal lines."""

    def __init__(self) -> None:
        self.broadcast: dict[int, dict[str, float]] = {}
        self.no_receivers: dict[str, float] = {}
        self.filtered_one: dict[str, float] = {}
        self.filtered_none: dict[str, float] = {}
        self.connect: dict[int, dict[str, float]] = {}
        self.asend: dict[str, float] = {}
        self.concurrent: dict[str, bool] = {}
        # Python version -> (tocsin asend, bare gather) seconds, measured in
        # that interpreter (eager tasks exist from 3.12 on).
        self.asend_by_python: dict[str, tuple[float, float]] = {}
        self.kept_per_cycle: float = 0.0
        self.value_senders_growth: int = 0
        self.value_senders_count: int = 0
        self.memory: dict[str, float] = {}
        self.imports: dict[str, float] = {}
        self.imports_best: dict[str, float] = {}


def broadcast(sizes: tuple[int, ...], settings: Settings, out: Results) -> None:
    for size in sizes:
        functions = copies(receiver, size)
        contenders: dict[str, Callable[[], object]] = {}

        def loop(functions: list[Callable[..., Any]] = functions) -> None:
            for f in functions:
                f(Sender, x=1)

        contenders["loop"] = loop
        keep = []
        for name, make in MAKERS.items():
            signal = make()
            for f in functions:
                signal.connect(f)
            keep.append(signal)
            contenders[name] = _send(name, signal, Sender)
        out.broadcast[size] = _timed(contenders, settings)


def no_receivers(settings: Settings, out: Results) -> None:
    (f,) = copies(receiver, 1)
    contenders: dict[str, Callable[[], object]] = {
        "call": lambda: f(Sender, x=1),
    }
    for name, make in MAKERS.items():
        contenders[name] = _send(name, make(), Sender)
    out.no_receivers = _timed(contenders, settings)


def filtered(settings: Settings, out: Results) -> None:
    """100 receivers, each connected for its own sender class."""
    functions = copies(receiver, 100)
    senders = [type(f"Model{i}", (), {}) for i in range(100)]
    chosen = 37
    target, stranger = senders[chosen], type("Unconnected", (), {})
    one = [functions[chosen]]

    def loop_one() -> None:
        for f in one:
            f(target, x=1)

    single = functions[chosen]
    match: dict[str, Callable[[], object]] = {"loop": loop_one}
    miss: dict[str, Callable[[], object]] = {
        "call": lambda: single(stranger, x=1),
    }
    for name in ("tocsin", "django", "blinker"):
        signal = MAKERS[name]()
        for f, s in zip(functions, senders, strict=True):
            signal.connect(f, sender=s)
        match[name] = _send(name, signal, target)
        miss[name] = _send(name, signal, stranger)
    out.filtered_one = _timed(match, settings)
    out.filtered_none = _timed(miss, settings)


def connect_disconnect(
    others: tuple[int, ...], settings: Settings, out: Results
) -> None:
    """Connect and disconnect one more receiver; every size in one measure
    call, so that the growth from the smallest to the largest is compared
    interleaved."""
    (extra,) = copies(receiver, 1)
    fast: dict[str, Callable[[], object]] = {}
    slow: dict[str, Callable[[], object]] = {}
    keep = []
    for count in others:
        functions = copies(receiver, count)
        keep.append(functions)
        for name, make in MAKERS.items():
            signal = make()
            for f in functions:
                signal.connect(f)

            def cycle(signal: Any = signal) -> None:
                signal.connect(extra)
                signal.disconnect(extra)

            # Django's and psygnal's connect or disconnect scan every
            # connection: with many, they are measured apart, so that the
            # fast contenders still get enough calls per round.
            is_slow = name in ("django", "psygnal") and count > 1000
            (slow if is_slow else fast)[f"{name} {count}"] = cycle
    results = _timed(fast, settings)
    if slow:
        results |= _timed(slow, settings)
    for key, value in results.items():
        name, count = key.split()
        out.connect.setdefault(int(count), {})[name] = value


def asend(settings: Settings, out: Results) -> None:
    """10 async receivers, every contender on one event loop."""
    functions = copies(async_receiver, 10)
    batch = 20

    async def gather() -> None:
        for _ in range(batch):
            await asyncio.gather(*[f(Sender, x=1) for f in functions])

    async def nothing() -> None:
        for _ in range(batch):
            pass

    signals = {name: MAKERS[name]() for name in ("tocsin", "django", "blinker")}
    for signal in signals.values():
        for f in functions:
            signal.connect(f)

    def sends(method: Callable[..., Any]) -> Callable[[], Any]:
        async def run() -> None:
            for _ in range(batch):
                await method(Sender, x=1)

        return run

    coroutines: dict[str, Callable[[], Any]] = {
        "(empty batch)": nothing,
        "gather": gather,
        "tocsin": sends(signals["tocsin"].asend),
        "django": sends(signals["django"].asend),
        "blinker": sends(signals["blinker"].send_async),
    }
    loop = asyncio.new_event_loop()
    try:
        contenders: dict[str, Callable[[], object]] = {
            name: (lambda c=coroutine: loop.run_until_complete(c()))
            for name, coroutine in coroutines.items()
        }
        per_batch = _timed(contenders, settings)
        empty = per_batch.pop("(empty batch)")
        out.asend = {name: (value - empty) / batch for name, value in per_batch.items()}
        out.concurrent = _concurrency(loop)
    finally:
        loop.close()


def _concurrency(loop: asyncio.AbstractEventLoop) -> dict[str, bool]:
    """Whether 10 receivers that each sleep 20 ms finish in well under 200 ms."""
    functions = copies(sleeping_receiver, 10)
    verdicts = {}
    for name, method in (
        ("tocsin", "asend"),
        ("django", "asend"),
        ("blinker", "send_async"),
    ):
        signal = MAKERS[name]()
        for f in functions:
            signal.connect(f)
        start = time.perf_counter()
        loop.run_until_complete(getattr(signal, method)(Sender, x=1))
        verdicts[name] = time.perf_counter() - start < 0.02 * 3
    return verdicts


def asend_against_gather(rounds: int, batch: int = 50) -> tuple[float, float]:
    """Seconds per send of 10 async receivers: tocsin's asend, a bare gather.

    Interleaved, in this interpreter; only tocsin and the standard library are
    needed, so it runs in any Python the machine has (``asend-in-subprocess``).
    """
    import tocsin

    functions = copies(async_receiver, 10)
    signal = tocsin.Signal()
    for f in functions:
        signal.connect(f)

    async def gather() -> None:
        for _ in range(batch):
            await asyncio.gather(*[f(Sender, x=1) for f in functions])

    async def tocsin_asend() -> None:
        for _ in range(batch):
            await signal.asend(Sender, x=1)

    loop = asyncio.new_event_loop()
    samples: dict[str, list[float]] = {"tocsin": [], "gather": []}
    try:
        for _ in range(rounds):
            for name, coroutine in (("tocsin", tocsin_asend), ("gather", gather)):
                start = time.perf_counter()
                loop.run_until_complete(coroutine())
                samples[name].append((time.perf_counter() - start) / batch)
    finally:
        loop.close()
    return statistics.median(samples["tocsin"]), statistics.median(samples["gather"])


OTHER_PYTHONS = ("3.12", "3.13")


def _interpreter(version: str) -> str | None:
    """The path of a CPython ``version`` on this machine (pyenv's too), if any."""
    import glob
    import shutil

    found = shutil.which(f"python{version}")
    candidates = [found] if found else []
    candidates += sorted(
        glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python"))
    )
    for candidate in candidates:
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0:
            return candidate
    return None


def asend_by_python(settings: Settings, out: Results) -> None:
    """asend against gather in this Python and in each other one present."""
    here = ".".join(map(str, sys.version_info[:2]))
    rounds = 5 if settings.rounds < 10 else 41
    out.asend_by_python[here] = asend_against_gather(rounds)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([os.path.join(root, "src"), root]),
    }
    for version in OTHER_PYTHONS:
        if version == here or (python := _interpreter(version)) is None:
            continue
        completed = subprocess.run(
            [python, "-m", "benchmarks.bench_core", "asend", str(rounds)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            cwd=root,
        )
        tocsin_time, gather_time = map(float, completed.stdout.split())
        out.asend_by_python[version] = (tocsin_time, gather_time)


def kept_per_cycle(cycles: int, out: Results) -> None:
    """Bytes still allocated after ``cycles`` connect/send/disconnect cycles, per cycle.

    Everything is traced from the start (a block allocated before tracing and
    freed during it would otherwise hide a reallocation as a gain), and the
    cycles are measured after as many warm-up cycles: a dict that keeps gaining
    and losing a key reallocates its table now and then, to the same size.
    """
    import tocsin

    def cycle(count: int) -> None:
        for _ in range(count):
            signal.connect(extra)
            signal.send(Sender, x=1)
            signal.disconnect(extra)

    tracemalloc.start()
    try:
        functions = copies(receiver, 100)
        signal = tocsin.Signal()
        for f in functions:
            signal.connect(f)
        (extra,) = copies(receiver, 1)
        cycle(cycles)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        cycle(cycles)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    out.kept_per_cycle = max(after - before, 0) / cycles


def value_senders(count: int, out: Results) -> None:
    """Memory kept after sends from ``count`` distinct string senders."""
    import tocsin

    signal = tocsin.Signal()
    (f,) = copies(receiver, 1)
    signal.connect(f, sender="request-0")
    for index in range(1000):
        signal.send(f"request-{index}", x=1)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for index in range(count):
            signal.send(f"request-{index}", x=1)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    out.value_senders_growth = after - before
    out.value_senders_count = count


def memory(count: int, out: Results) -> None:
    """Bytes allocated by connecting ``count`` distinct, live functions."""
    functions = copies(receiver, count)

    def weakref_list() -> object:
        return [weakref.ref(f) for f in functions]

    def connect_all(make: Callable[[], Any]) -> Callable[[], object]:
        def run() -> object:
            signal = make()
            for f in functions:
                signal.connect(f)
            return signal

        return run

    cases: dict[str, Callable[[], object]] = {"weakref list": weakref_list}
    for name, make in MAKERS.items():
        cases[name] = connect_all(make)
    for name, build in cases.items():
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        out.memory[name] = (after - before) / count
        del kept


IMPORTS = {
    "tocsin": "tocsin",
    "django": "django.dispatch",
    "blinker": "blinker",
    "psygnal": "psygnal",
}


def import_times(repeat: int, out: Results) -> None:
    """Median of ``repeat`` fresh interpreters, from ``-X importtime``.

    Bytecode is cached in a private directory (``PYTHONPYCACHEPREFIX``), so
    that every module is loaded from its ``.pyc`` as in a normal installation,
    even where ``PYTHONDONTWRITEBYTECODE`` is set, without writing into the
    source tree. A first, unmeasured run fills that cache.
    """
    with tempfile.TemporaryDirectory(prefix="tocsin-bench-pycache-") as cache:
        env = {**os.environ, "PYTHONPYCACHEPREFIX": cache}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        startup = _imported("pass", env)
        for module in IMPORTS.values():
            _imported(f"import {module}", env)
        for name, module in IMPORTS.items():
            samples = []
            for _ in range(repeat):
                times = _imported(f"import {module}", env)
                samples.append(
                    sum(t for m, t in times.items() if m not in startup) / 1e6
                )
            out.imports[name] = statistics.median(samples)
            out.imports_best[name] = min(samples)


def _imported(code: str, env: dict[str, str]) -> dict[str, int]:
    """The top-level imports that running ``code`` performs, with their
    cumulative microseconds (nested imports are counted in their parent;
    ``import django.dispatch`` first imports ``django``, at top level)."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    times = {}
    for line in completed.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        if not name.startswith("  "):
            times[name.strip()] = int(cumulative)
    return times


# -- the report ------------------------------------------------------------------


def run(quick: bool) -> str:
    settings = Settings(quick)
    out = Results()
    broadcast((0, 1, 10, 100), settings, out)
    no_receivers(settings, out)
    filtered(settings, out)
    connect_disconnect((100, 10_000), settings, out)
    asend(settings, out)
    asend_by_python(settings, out)
    memory(10_000, out)
    kept_per_cycle(2_000, out)
    value_senders(20_000 if quick else 1_000_000, out)
    import_times(3 if quick else 9, out)
    return report(out)


def report(out: Results) -> str:
    contenders = list(MAKERS)
    parts = [
        "## Core dispatch: tocsin, django.dispatch, blinker, psygnal",
        "",
        "tocsin's `Signal` against Django's `Signal(use_caching=True)`, blinker "
        "and psygnal, and against the plain Python a dispatcher replaces "
        "(`for f in fs: f(sender, x=1)`, or one call `f(sender, x=1)`). "
        "Receivers are distinct module-level functions `def r(sender, **kw)`, "
        "connected weakly (each library's default), the sender a class. "
        "psygnal has no sender filter, returns no responses and passes "
        "positional arguments only (`emit(sender)`: its receivers get no `x=1`), "
        "so it appears in the broadcast, connect and memory cases only; it has no "
        "async send either. Times are medians net of the harness's cost of "
        "calling a lambda; the ratio in brackets is to the row's baseline.",
        "",
        "### Broadcast: every receiver hears the send",
        "",
    ]
    sizes = sorted(out.broadcast)
    rows = [["plain loop", *(format_time(out.broadcast[n]["loop"]) for n in sizes)]]
    for name in contenders:
        rows.append(
            [
                LABELS[name],
                *(
                    _cell(out.broadcast[n][name], out.broadcast[n]["loop"])
                    for n in sizes
                ),
            ]
        )
    parts += [markdown_table(["contender", *(f"N={n}" for n in sizes)], rows), ""]

    parts += [
        "### Other sends",
        "",
        "100 receivers each connected for a different sender class; one send "
        "from a sender that matches one of them, one from a sender that matches "
        "none. And a send on a signal with no receivers at all.",
        "",
    ]
    rows = [
        [
            "baseline",
            f"loop over the 1: {format_time(out.filtered_one['loop'])}",
            f"one call: {format_time(out.filtered_none['call'])}",
            f"one call: {format_time(out.no_receivers['call'])}",
        ]
    ]
    for name in contenders:
        rows.append(
            [
                LABELS[name],
                _cell(out.filtered_one[name], out.filtered_one["loop"])
                if name in out.filtered_one
                else "n/a",
                _cell(out.filtered_none[name], out.filtered_none["call"])
                if name in out.filtered_none
                else "n/a",
                _cell(out.no_receivers[name], out.no_receivers["call"]),
            ]
        )
    parts += [
        markdown_table(
            ["contender", "matches 1 of 100", "matches none of 100", "no receivers"],
            rows,
        ),
        "",
    ]

    counts = sorted(out.connect)
    parts += [
        "### Connect, then disconnect, one receiver",
        "",
        "With other receivers already connected; the ratio is to tocsin.",
        "",
        markdown_table(
            ["contender", *(f"{n:,} others" for n in counts)],
            [
                [
                    LABELS[name],
                    *(
                        _cell(out.connect[n][name], out.connect[n]["tocsin"])
                        for n in counts
                    ),
                ]
                for name in contenders
            ],
        ),
        "",
        "### Async send to 10 async receivers",
        "",
        "`await signal.asend(...)` (blinker: `send_async`) inside one event "
        "loop, against `await asyncio.gather(*(f(sender, x=1) for f in fs))`. "
        "*Concurrent*: 10 receivers that each sleep 20 ms finish within 60 ms. "
        "blinker awaits each receiver in turn, without a task per receiver: "
        "cheaper when receivers never wait, and as slow as their sum when "
        "they do.",
        "",
        markdown_table(
            ["contender", "time per send", "concurrent"],
            [["bare `asyncio.gather`", format_time(out.asend["gather"]), "yes"]]
            + [
                [
                    LABELS[name],
                    _cell(out.asend[name], out.asend["gather"]),
                    "yes" if out.concurrent[name] else "no (one after another)",
                ]
                for name in out.concurrent
            ],
        ),
        "",
        "On real tasks, Python by Python: tocsin's `asend` runs each async "
        "receiver in a task of its own (as Django 6.1 does), eagerly started "
        "where Python has eager tasks (3.12+); measured in each interpreter the "
        "machine has, against a bare `asyncio.gather` there.",
        "",
        markdown_table(
            ["Python", "tocsin asend", "bare gather", "ratio"],
            [
                [
                    version,
                    format_time(tocsin_time),
                    format_time(gather_time),
                    ratio(tocsin_time, gather_time),
                ]
                for version, (tocsin_time, gather_time) in sorted(
                    out.asend_by_python.items()
                )
            ],
        ),
        "",
        "### Memory and import time",
        "",
        "Bytes per receiver: tracemalloc's count of the memory allocated by "
        "connecting 10,000 distinct live functions, over 10,000. Import time: `python -X importtime -c 'import "
        "module'` in fresh interpreters, the cumulative time of the imports the "
        "statement triggers, with bytecode already cached; median of several, and the "
        "best run, which is less sensitive to other processes on the machine.",
        "",
        markdown_table(
            ["contender", "bytes per receiver", "import time, median (best)"],
            [["list of `weakref.ref`", f"{out.memory['weakref list']:,.0f}", ""]]
            + [
                [
                    f"{LABELS[name]} (`{IMPORTS[name]}`)",
                    f"{out.memory[name]:,.0f}",
                    f"{format_time(out.imports[name])} "
                    f"({format_time(out.imports_best[name])})",
                ]
                for name in contenders
            ],
        ),
        "",
        f"Kept per connect, send and disconnect cycle: "
        f"{out.kept_per_cycle:.2f} bytes (tracemalloc, after 2,000 cycles). "
        f"Sends from {out.value_senders_count:,} distinct string senders "
        f'(`f"request-{{i}}"`): {out.value_senders_growth:,} bytes kept '
        "(the cache of plans for senders that cannot be weakly referenced is "
        "bounded).",
        "",
        "### Goals",
        "",
        *goals(out),
        "",
        LIMITS,
    ]
    return "\n".join(parts) + "\n"


LIMITS = """\
### What limits the goals that are not met

- **Per receiver**, a send does what the plain loop does plus what Django's
  contract requires: resolve the weak reference to the receiver (all of them
  before the first call, so that a receiver alive when the send begins is
  called even if an earlier one drops it), pass `signal=` and `sender=` as
  keywords, and build the `(receiver, response)` pair of the result list.
  tocsin passes the names as literal keywords (a loop compiled once per set of
  keyword names), so no dictionary is merged per receiver; what is left is
  about 2.1-2.3x a plain call on CPython 3.11. Django's per-receiver `**named`
  merge is what makes it 5x.
- **Per send**, a fixed cost: the `send` method call with its `**named`
  dictionary, the lookup of the sender's cached plan, the call of the compiled
  loop and the result list. Counted in machine instructions (callgrind, 3.11)
  it is about four plain receiver calls; it is amortised at N=100, visible at
  N=10, and it is all of the gap in the send matching one of 100
  sender-filtered receivers, whose baseline is a single call. Inlining the
  loop into `send` saves under a tenth of it.
- **asend against blinker**: blinker's `send_async` awaits its receivers one
  after another in the caller's task: no task per receiver and no concurrency
  (receivers that wait take the sum of their waits). tocsin runs each async
  receiver in a task of its own, as Django 6.1 does, so that `timeout()`,
  `TaskGroup` and cancellation inside a receiver act on the receiver; that
  costs a task per receiver, which is what the *real tasks* goals measure
  against `asyncio.gather`.
"""


def goals(out: Results) -> list[str]:
    lines = []
    for n in (10, 100):
        times = out.broadcast[n]
        r = times["tocsin"] / times["loop"]
        lines.append(
            goal_line(
                f"broadcast N={n} <= 2.3x the plain loop",
                r <= 2.3,
                f"{r:.2f}x (Django {ratio(times['django'], times['loop'])}, "
                f"blinker {ratio(times['blinker'], times['loop'])}, "
                f"psygnal {ratio(times['psygnal'], times['loop'])})",
            )
        )
        lines.append(
            goal_line(
                f"broadcast N={n} faster than psygnal's compiled emit",
                times["tocsin"] < times["psygnal"],
                f"{times['psygnal'] / times['tocsin']:.2f}x psygnal's speed",
            )
        )
    r = out.no_receivers["tocsin"] / out.no_receivers["call"]
    lines.append(
        goal_line("a send with no receivers <= 1.5x one call", r <= 1.5, f"{r:.2f}x")
    )
    r = out.filtered_one["tocsin"] / out.filtered_one["loop"]
    lines.append(
        goal_line(
            "a send matching 1 of 100 sender-filtered receivers <= 3x the loop over the one",
            r <= 3,
            f"{r:.2f}x",
        )
    )
    r = out.filtered_none["tocsin"] / out.filtered_none["call"]
    lines.append(
        goal_line(
            "a send matching none of 100 sender-filtered receivers <= 3x one call",
            r <= 3,
            f"{r:.2f}x",
        )
    )

    cases = {f"broadcast N={n}": out.broadcast[n] for n in sorted(out.broadcast)}
    cases["matches 1 of 100"] = out.filtered_one
    cases["matches none of 100"] = out.filtered_none
    cases["no receivers"] = out.no_receivers
    # asend against Django only: blinker's send_async awaits each receiver in
    # the caller's task, one after another (no task per receiver, no
    # concurrency), which is not the same work.
    peers_of: dict[str, tuple[str, ...]] = dict.fromkeys(cases, ("django", "blinker"))
    cases["asend"] = out.asend
    peers_of["asend"] = ("django",)
    slower = [
        f"{case} (tocsin {format_time(times['tocsin'])}, "
        f"{peer} {format_time(times[peer])})"
        for case, times in cases.items()
        for peer in peers_of[case]
        if times["tocsin"] >= times[peer]
    ]
    closest = min(
        (times[peer] / times["tocsin"], f"{peer}, {case}")
        for case, times in cases.items()
        for peer in peers_of[case]
    )
    lines.append(
        goal_line(
            "faster than django.dispatch and blinker in every synchronous "
            "dispatch case, and than Django's asend",
            not slower,
            "slower in " + "; ".join(slower)
            if slower
            else f"closest: {closest[0]:.2f}x faster ({closest[1]})",
        )
    )

    small, large = min(out.connect), max(out.connect)
    growth = out.connect[large]["tocsin"] / out.connect[small]["tocsin"]
    lines.append(
        goal_line(
            f"connect/disconnect O(1): {large:,} others <= 1.5x {small:,} others",
            growth <= 1.5,
            f"{growth:.2f}x",
        )
    )
    for peer in ("django", "blinker"):
        speed = {
            n: out.connect[n][peer] / out.connect[n]["tocsin"] for n in out.connect
        }
        lines.append(
            goal_line(
                f"connect/disconnect faster than {peer}",
                min(speed.values()) > 1,
                ", ".join(
                    f"{r:,.2f}x {peer}'s speed at {n:,} others"
                    for n, r in speed.items()
                ),
            )
        )
    lines.append(
        goal_line(
            "0 bytes kept per connect/send/disconnect cycle",
            out.kept_per_cycle < 1,
            f"{out.kept_per_cycle:.2f} bytes",
        )
    )
    lines.append(
        goal_line(
            f"{out.value_senders_count:,} distinct string senders keep <= 1 MB",
            out.value_senders_growth <= 1_000_000,
            f"{out.value_senders_growth:,} bytes",
        )
    )
    size = out.memory["tocsin"]
    lines.append(
        goal_line("<= 250 bytes per receiver", size <= 250, f"{size:,.0f} bytes")
    )
    for version, (tocsin_time, gather_time) in sorted(out.asend_by_python.items()):
        eager = tuple(map(int, version.split("."))) >= (3, 12)
        limit = 0.6 if eager else 1.1
        r = tocsin_time / gather_time
        lines.append(
            goal_line(
                f"Python {version}: asend to 10 async receivers on real tasks "
                f"<= {limit}x a bare asyncio.gather"
                + (" (eager tasks)" if eager else ""),
                r <= limit,
                f"{r:.2f}x",
            )
        )
    lines.append(
        goal_line(
            "asend is concurrent",
            out.concurrent["tocsin"],
            "concurrent" if out.concurrent["tocsin"] else "NOT concurrent",
        )
    )
    seconds = out.imports["tocsin"]
    lines.append(
        goal_line("`import tocsin` <= 30 ms", seconds <= 0.030, format_time(seconds))
    )
    return lines


if __name__ == "__main__":
    # python -m benchmarks.bench_core asend ROUNDS: asend against gather, in
    # whatever interpreter runs it (tocsin and the standard library only).
    if sys.argv[1:2] == ["asend"]:
        tocsin_time, gather_time = asend_against_gather(int(sys.argv[2]))
        print(tocsin_time, gather_time)
