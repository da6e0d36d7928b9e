"""The measuring tools every benchmark section uses.

Contenders are zero-argument callables timed in *interleaved rounds*: each
round runs every contender ``number`` times, in an order rotated from round to
round, so that a slow patch of the machine (another process, a frequency
change) spreads over all contenders instead of landing on one. The figure kept
for each contender is the median over the rounds, which ignores the odd
disturbed round.

Only ratios between contenders measured in the same call carry over to other
machines; absolute times do not.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable

__all__ = [
    "calibrate",
    "format_time",
    "goal_line",
    "markdown_table",
    "measure",
    "ratio",
]


def measure(
    contenders: dict[str, Callable[[], object]],
    *,
    number: int,
    rounds: int = 21,
) -> dict[str, float]:
    """Time each contender; return its median seconds per call.

    Args:
        contenders: Names mapped to zero-argument callables. Each call is one
            operation (a send, a connect and disconnect, ...).
        number: Calls per contender per round. Choose it so that a round of
            one contender lasts a few milliseconds at least.
        rounds: How many rounds; the median of these is returned.

    Garbage collection is disabled while timing, so that a collection caused
    by one contender is not charged to another, and re-enabled afterwards.
    """
    if number < 1 or rounds < 1:
        raise ValueError("measure() needs number >= 1 and rounds >= 1.")
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    calls = range(number)
    clock = time.perf_counter
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for round_index in range(rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                function = contenders[name]
                start = clock()
                for _ in calls:
                    function()
                samples[name].append((clock() - start) / number)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: statistics.median(samples[name]) for name in names}


def calibrate(
    contenders: dict[str, Callable[[], object]], *, seconds: float = 0.005
) -> int:
    """The ``number`` for :func:`measure` that makes one round of the slowest
    contender last about ``seconds``.

    Each contender is called (which also warms it up) until a millisecond has
    passed, to estimate its time per call. Short rounds are what keep the
    median honest on a shared machine: a round that another process
    interrupts is an outlier the median discards, and a short round is
    rarely interrupted.
    """
    slowest = 0.0
    clock = time.perf_counter
    for function in contenders.values():
        calls = 0
        start = clock()
        while True:
            function()
            calls += 1
            elapsed = clock() - start
            if elapsed >= 0.001:
                break
        slowest = max(slowest, elapsed / calls)
    return max(1, round(seconds / slowest))


def ratio(a: float, b: float) -> str:
    """Format ``a / b`` as ``2.31x``."""
    return f"{a / b:.2f}x"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured markdown table; columns after the first align right."""
    align = ["---"] + ["---:"] * (len(header) - 1)
    lines = [header, align, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def goal_line(description: str, met: bool, detail: str) -> str:
    """A markdown checklist line: ``- [x] description: detail`` when met,
    ``- [ ] **NOT MET** description: detail`` otherwise."""
    mark = "[x]" if met else "[ ] **NOT MET**"
    return f"- {mark} {description}: {detail}"


def format_time(seconds: float) -> str:
    """A duration with a unit that keeps three significant figures or more."""
    if seconds < 1e-6:
        return f"{seconds * 1e9:,.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:,.2f} us"
    if seconds < 1:
        return f"{seconds * 1e3:,.2f} ms"
    return f"{seconds:,.2f} s"
