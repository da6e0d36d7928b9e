"""The observation hook: what it costs unobserved, observed, and with OpenTelemetry.

*Unobserved against no hook.* The contender "no hook" is this very build's
``Signal.send`` recompiled from its source with the hook's two lines (``if
_observed: return _observe.send(...)``) taken out, on a subclass of
``Signal``: the same code, the same loops and the same plan cache, only
without the test. Both are timed interleaved in one process.

*Observed.* An observer is process-wide, so the observed contenders install
their observers around each call by setting the observer tuple directly (two
global assignments, a few nanoseconds, also made by the unobserved contender
they are compared with), which lets them be timed interleaved too.

Times are net of the harness's empty lambda, as in ``bench_core``.
"""

from __future__ import annotations
import __future__

import collections
import gc
import inspect
import statistics
import textwrap
import time
from collections.abc import Callable
from typing import Any

from ._harness import calibrate, format_time, goal_line, markdown_table, measure
from .bench_core import EMPTY, Sender, copies, receiver

SIZES = (0, 1, 10, 100)


def hookless_signal_class() -> type:
    """``tocsin.Signal`` whose ``send`` is its own source less the hook."""
    import tocsin
    from tocsin import _signal

    source = textwrap.dedent(inspect.getsource(_signal.Signal.send))
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if "if _observed:" in line)
    hook = lines[start : start + 2]
    assert "_observe.send(" in hook[1], hook
    del lines[start : start + 2]
    namespace = dict(vars(_signal))
    flags = __future__.annotations.compiler_flag
    code = compile("\n".join(lines), "<send without the hook>", "exec", flags, True)
    exec(code, namespace)
    return type("HooklessSignal", (tocsin.Signal,), {"send": namespace["send"]})


def keeper() -> Any:
    """A recording observer: keeps the last 1,000 dispatches, with their calls."""
    import tocsin

    class Keeper(tocsin.Observer):
        def __init__(self) -> None:
            self.kept: collections.deque[Any] = collections.deque(maxlen=1000)

        def send_finished(self, dispatch: Any) -> None:
            self.kept.append(dispatch)

    return Keeper()


def _timed(
    contenders: dict[str, Callable[[], object]], rounds: int, seconds: float
) -> dict[str, float]:
    contenders = {EMPTY: lambda: None, **contenders}
    number = calibrate(contenders, seconds=seconds)
    results = measure(contenders, number=number, rounds=rounds)
    empty = results.pop(EMPTY)
    return {name: max(value - empty, 0.0) for name, value in results.items()}


def _with(observers: tuple[Any, ...], send: Callable[[], object]) -> Callable[[], None]:
    """``send()`` with ``observers`` installed around it (see the module docstring)."""
    from tocsin import _observe, _signal

    hooks, none = _observe._Hooks(observers), _observe._Hooks(())
    flag = bool(observers)

    def run() -> None:
        _observe._observers, _observe._hooks = observers, hooks
        _signal._observed = flag
        send()
        _observe._observers, _observe._hooks = (), none
        _signal._observed = False

    return run


def paired_ratio(
    baseline: Callable[[], object],
    contender: Callable[[], object],
    *,
    rounds: int,
    seconds: float,
) -> tuple[float, float, float]:
    """Median over rounds of contender/baseline, each net of an empty lambda.

    ``_harness.measure`` compares medians taken over the whole run; on a busy
    machine the load drifts between rounds by more than the few nanoseconds
    measured here. Each round here times the empty lambda, the baseline and
    the contender back to back (in a rotated order) and keeps their ratio, so
    that a drift between rounds cancels out.

    Returns:
        The median ratio, and the median net seconds of baseline and contender.
    """
    empty: Callable[[], object] = lambda: None  # noqa: E731
    trio = [empty, baseline, contender]
    number = calibrate({"b": baseline, "c": contender}, seconds=seconds)
    calls = range(number)
    clock = time.perf_counter
    ratios, base_times, times = [], [], []
    gc.collect()
    gc.disable()
    try:
        for index in range(rounds):
            spent = {}
            shift = index % 3
            for function in trio[shift:] + trio[:shift]:
                start = clock()
                for _ in calls:
                    function()
                spent[id(function)] = (clock() - start) / number
            base = spent[id(baseline)] - spent[id(empty)]
            other = spent[id(contender)] - spent[id(empty)]
            if base > 0:
                ratios.append(other / base)
            base_times.append(base)
            times.append(other)
    finally:
        gc.enable()
    return (
        statistics.median(ratios),
        statistics.median(base_times),
        statistics.median(times),
    )


def hook_cost(rounds: int, seconds: float) -> dict[int, tuple[float, float, float]]:
    import tocsin

    hookless = hookless_signal_class()
    out = {}
    keep = []
    for size in SIZES:
        functions = copies(receiver, size)
        keep.append(functions)
        with_hook, without = tocsin.Signal(), hookless()
        for f in functions:
            with_hook.connect(f)
            without.connect(f)
        assert with_hook.send(Sender, x=1) == without.send(Sender, x=1)
        out[size] = paired_ratio(
            _sender(without), _sender(with_hook), rounds=rounds, seconds=seconds
        )
    return out


def observed_cost(rounds: int, seconds: float) -> dict[str, float]:
    """Sends to 0 and 10 receivers: unobserved, and with one recording observer."""
    import tocsin

    observers = (keeper(),)
    kept = []  # the receivers are connected weakly: keep them alive
    contenders: dict[str, Callable[[], object]] = {}
    for size in (0, 10):
        functions = copies(receiver, size)
        signal = tocsin.Signal(name="bench")
        for f in functions:
            signal.connect(f)
        kept.append(functions)
        send = _sender(signal)
        contenders[f"unobserved {size}"] = _with((), send)
        contenders[f"observed {size}"] = _with(observers, send)
    return _timed(contenders, rounds, seconds)


def _sender(signal: Any) -> Callable[[], object]:
    return lambda: signal.send(Sender, x=1)


def otel_cost(rounds: int, seconds: float) -> dict[str, float] | None:
    """10 receivers under a parent span: unobserved; one SDK span each; a
    non-recording parent (no span made)."""
    try:
        from opentelemetry import context, trace
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        return None
    import tocsin
    from tocsin import _observe
    from tocsin.integrations.opentelemetry import TocsinInstrumentor

    provider = TracerProvider()  # sampled and recorded, exported nowhere
    tracer = provider.get_tracer("bench")
    recording = trace.set_span_in_context(tracer.start_span("request"))
    not_recording = trace.set_span_in_context(
        trace.NonRecordingSpan(trace.get_current_span(recording).get_span_context())
    )
    TocsinInstrumentor().instrument(tracer_provider=provider)
    spans = _observe.observers()
    TocsinInstrumentor().uninstrument()
    functions = copies(receiver, 10)
    signal = tocsin.Signal(name="bench")
    for f in functions:
        signal.connect(f)

    def under(parent: Any) -> Callable[[], None]:
        def run() -> None:
            token = context.attach(parent)
            signal.send(Sender, x=1)
            context.detach(token)

        return run

    return _timed(
        {
            "unobserved": _with((), under(recording)),
            "SDK span per receiver": _with(spans, under(recording)),
            "non-recording parent": _with(spans, under(not_recording)),
        },
        rounds,
        seconds,
    )


def run(quick: bool) -> str:
    rounds = 7 if quick else 61
    seconds = 0.001 if quick else 0.004
    hook = hook_cost(21 if quick else 301, 0.0005 if quick else 0.001)
    observed = observed_cost(rounds if quick else 31, seconds)
    otel = otel_cost(rounds if quick else 21, seconds)

    rows = [
        ["no hook (the same `send` less the test)"]
        + [format_time(hook[n][1]) for n in SIZES],
        ["tocsin, no observer"]
        + [f"{format_time(hook[n][2])} ({hook[n][0]:.3f}x)" for n in SIZES],
    ]
    worst = max(hook[n][0] for n in SIZES)
    per_dispatch = observed["observed 0"] - observed["unobserved 0"]
    per_receiver = (
        observed["observed 10"] - observed["unobserved 10"] - per_dispatch
    ) / 10
    lines = [
        "## Observation hook",
        "",
        "`Signal.send` with no observer against the same build without the hook: "
        "the contender *no hook* is this build's `send` recompiled from its own "
        "source less the test `if _observed:` (see `benchmarks/bench_observe.py`). "
        "Receivers as in the core section. The ratio is the median of per-round "
        "ratios (each round times both back to back), steadier than a ratio of "
        "medians when the machine's load drifts.",
        "",
        markdown_table(["contender", *(f"N={n}" for n in SIZES)], rows),
        "",
        "With one recording observer (it keeps the last 1,000 dispatches), "
        "against the same sends unobserved:",
        "",
        markdown_table(
            ["receivers", "unobserved", "observed", "added"],
            [
                [
                    str(n),
                    format_time(observed[f"unobserved {n}"]),
                    format_time(observed[f"observed {n}"]),
                    format_time(
                        observed[f"observed {n}"] - observed[f"unobserved {n}"]
                    ),
                ]
                for n in (0, 10)
            ],
        ),
        "",
        f"That is {format_time(per_dispatch)} per dispatch and "
        f"{format_time(per_receiver)} per receiver call.",
        "",
    ]
    if otel is not None:
        base = otel["unobserved"]
        lines += [
            "OpenTelemetry (`TocsinInstrumentor`, defaults), a send to 10 receivers "
            "inside a parent span: the SDK records one span per receiver "
            "(`TracerProvider()` with no exporter); under a non-recording parent "
            "(sampled out) no span is made.",
            "",
            markdown_table(
                ["case", "time per send", "added per receiver"],
                [
                    [name, format_time(value), format_time((value - base) / 10)]
                    for name, value in otel.items()
                ],
            ),
            "",
        ]
    lines += [
        "### Goals",
        "",
        goal_line(
            "unobserved send within 5% of the same build without the hook, "
            "N=0, 1, 10, 100",
            worst <= 1.05,
            ", ".join(f"N={n} {hook[n][0]:.3f}x" for n in SIZES),
        ),
    ]
    return "\n".join(lines) + "\n"
