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
    memory(10_000, out)
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
        "### Goals",
        "",
        *goals(out),
        "",
        LIMITS,
    ]
    return "\n".join(parts) + "\n"


LIMITS = """\
### What limits the goals that are not met

- **Per receiver**, a send does what the plain loop does plus three things
  Django's contract requires: dereference the weak reference to the receiver,
  pass `signal=` and `sender=` as keywords, and build the `(receiver, response)`
  pair of the result list. tocsin already passes the names as literal keywords
  (a loop compiled once per set of keyword names), so no dictionary is merged
  per receiver; what is left costs about 2.3x a plain call on CPython 3.11,
  which is the N=100 figure. Django's per-receiver `**named` merge is what makes
  it 5x.
- **Per send**, a fixed cost of two Python calls (the `send` method and its
  dispatch loop), the cache lookup of the sender's receivers and the result
  list. It is amortised at N=100, decisive at N=1 and N=10, and it is all of the
  gap in the send matching one of 100 sender-filtered receivers (baseline: one
  call). Without receivers, `send` returns after one attribute test, and the
  remaining gap to one plain call is the cost of calling a method rather than a
  function (an empty `def send(sender, **named): return []` is already about
  1.3x).
- **asend against blinker**: blinker's `send_async` awaits its receivers one
  after another in the caller's task: no task per receiver, and no
  concurrency (see *concurrent* above: receivers that wait take the sum of
  their waits). tocsin keeps Django's concurrency but starts the receivers
  eagerly, one after another inside one generator, and gives a task only to
  those that actually wait; for receivers that never wait, the two are level
  within the noise of this machine.
"""


def goals(out: Results) -> list[str]:
    lines = []
    for n in (10, 100):
        r = out.broadcast[n]["tocsin"] / out.broadcast[n]["loop"]
        lines.append(
            goal_line(
                f"broadcast N={n} <= 2.5x the plain loop",
                r <= 2.5,
                f"{r:.2f}x (Django {ratio(out.broadcast[n]['django'], out.broadcast[n]['loop'])}, "
                f"blinker {ratio(out.broadcast[n]['blinker'], out.broadcast[n]['loop'])})",
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
    cases["asend"] = out.asend
    slower = [
        f"{case} (tocsin {format_time(times['tocsin'])}, "
        f"{peer} {format_time(times[peer])})"
        for case, times in cases.items()
        for peer in ("django", "blinker")
        if times["tocsin"] >= times[peer]
    ]
    closest = min(
        (times[peer] / times["tocsin"], f"{peer}, {case}")
        for case, times in cases.items()
        for peer in ("django", "blinker")
    )
    lines.append(
        goal_line(
            "faster than django.dispatch and blinker in every dispatch case",
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
    vs_django = {
        n: out.connect[n]["django"] / out.connect[n]["tocsin"] for n in out.connect
    }
    lines.append(
        goal_line(
            "connect/disconnect faster than Django",
            min(vs_django.values()) > 1,
            ", ".join(
                f"{r:,.1f}x faster at {n:,} others" for n, r in vs_django.items()
            ),
        )
    )
    size = out.memory["tocsin"]
    lines.append(
        goal_line("<= 250 bytes per receiver", size <= 250, f"{size:,.0f} bytes")
    )
    r = out.asend["tocsin"] / out.asend["gather"]
    lines.append(
        goal_line(
            "asend <= 1.2x a bare asyncio.gather, and concurrent",
            r <= 1.2 and out.concurrent["tocsin"],
            f"{r:.2f}x, {'concurrent' if out.concurrent['tocsin'] else 'NOT concurrent'}",
        )
    )
    seconds = out.imports["tocsin"]
    lines.append(
        goal_line("`import tocsin` <= 30 ms", seconds <= 0.030, format_time(seconds))
    )
    return lines
