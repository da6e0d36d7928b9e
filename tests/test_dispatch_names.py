"""Any valid keyword name reaches the receivers, whatever the dispatch loop.

The loops compiled per set of keyword names have names of their own; a send's
keywords must never shadow them (``len``, ``KeyError``, ``Exception``,
``_tocsin_*``), names that cannot be written literally must still arrive, and
a traceback through a compiled loop shows its source lines.
"""

from __future__ import annotations

import asyncio
import builtins
import keyword
import linecache
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support import deliver
from tocsin import Signal, _dispatch

MODES = ["send", "send_robust", "asend", "asend_robust"]


def record(**kwargs: Any) -> dict[str, Any]:
    return kwargs


async def record_async(**kwargs: Any) -> dict[str, Any]:
    await asyncio.sleep(0)
    return kwargs


def recording_signal() -> Signal:
    signal = Signal()
    signal.connect(record)
    signal.connect(record_async)
    return signal


def received(signal: Signal, mode: str, **named: Any) -> list[dict[str, Any]]:
    """What each receiver got, minus signal and sender (checked here)."""
    got = []
    for _, kwargs in deliver(mode, signal, **named):
        assert kwargs.pop("signal") is signal
        assert kwargs.pop("sender") is None
        got.append(kwargs)
    return got


# -- names that once broke the compiled loops ---------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_keyword_named_like_a_builtin_the_loop_uses_reaches_receivers(
    mode: str,
) -> None:
    signal = recording_signal()

    assert received(signal, mode, len=1) == [{"len": 1}, {"len": 1}]


@pytest.mark.parametrize("mode", MODES)
def test_two_sends_with_keyerror_and_different_other_names_each_deliver_their_own(
    mode: str,
) -> None:
    signal = recording_signal()

    first = received(signal, mode, KeyError=1, x=2)
    second = received(signal, mode, KeyError=1, y=2)

    assert first == [{"KeyError": 1, "x": 2}] * 2
    assert second == [{"KeyError": 1, "y": 2}] * 2


@pytest.mark.parametrize("mode", ["send_robust", "asend_robust"])
def test_a_robust_send_with_a_keyword_named_exception_still_catches_failures(
    mode: str,
) -> None:
    def fails(**kwargs: Any) -> None:
        raise ValueError(f"failed with Exception={kwargs['Exception']}")

    signal = Signal()
    signal.connect(fails, weak=False)
    signal.connect(record)

    [(_, error), (_, kwargs)] = deliver(mode, signal, Exception=1)

    assert isinstance(error, ValueError)
    assert str(error) == "failed with Exception=1"
    assert kwargs["Exception"] == 1


# The ids spell non-ASCII names as U+XXXX: pytest escapes other characters in a
# test's id, and cannot then select the test by it (as mutmut does).
@pytest.mark.parametrize(
    "named",
    [
        {"class": 1},
        {"def": 1, "lambda": 2, "None": 3},
        {"a-b": 1},
        {"1x": 1, "": 2, "with space": 3},
        {"_tocsin_receiver": 1, "_tocsin_named": 2, "_tocsin_records": 3},
        {"_tocsin_len": 1, "_tocsin_KeyError": 2, "_tocsin_Exception": 3},
        {"_tocsin_response": 1, "_tocsin_append": 2, "_tocsin_error": 3},
        {"loop": 1, "named": 2, "records": 3, "receiver": 4, "responses": 5},
        {"__debug__": 1},  # an identifier that cannot be assigned
        {
            "\ufb01": 1,
            "\u210c": 2,
            "\uff41": 3,
        },  # ligature fi, black-letter H, fullwidth a: NFKC renames them
        {"café": 1, "δ": 2},  # non-ASCII, already NFKC
    ],
    # ASCII ids: pytest escapes non-ASCII ones with backslashes, and a second
    # pytest session in one process (as mutmut runs them) cannot find those.
    ids=lambda named: repr(named).encode("ascii", "xmlcharrefreplace").decode(),
)
@pytest.mark.parametrize("mode", MODES)
def test_keywords_that_cannot_be_literal_or_look_internal_reach_receivers(
    mode: str, named: dict[str, Any]
) -> None:
    signal = recording_signal()

    assert received(signal, mode, **named) == [named, named]


@pytest.mark.parametrize("mode", MODES)
def test_a_send_with_more_or_fewer_names_than_the_last_one_gets_its_own(
    mode: str,
) -> None:
    signal = recording_signal()
    sends = [{"a": 1}, {"a": 1, "b": 2}, {"a": 1, "b": 2, "c": 3}, {"b": 2}, {}]

    for named in sends:
        assert received(signal, mode, **named) == [named, named]


@pytest.mark.parametrize("mode", ["send", "send_robust"])
@pytest.mark.parametrize("unusual", [{"a-b": 1}, {"class": 1}, {"caf\u00e9": 1}])
def test_the_reserved_name_is_refused_after_a_send_with_unusual_names(
    mode: str, unusual: dict[str, Any]
) -> None:
    # Unusual names take a loop that accepts any names; the next send must
    # still be checked, and get the clear error rather than Python's own.
    signal = recording_signal()
    received(signal, mode, **unusual)

    with pytest.raises(TypeError, match="'signal', which is reserved"):
        getattr(signal, mode)(None, signal="other")


# -- any names at all ---------------------------------------------------------------------

LOOP_NAMES = [
    "_tocsin_records",
    "_tocsin_named",
    "_tocsin_receiver",
    "_tocsin_record",
    "_tocsin_response",
    "_tocsin_responses",
    "_tocsin_append",
    "_tocsin_error",
    "_tocsin_len",
    "_tocsin_KeyError",
    "_tocsin_Exception",
]
keyword_name = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
    st.sampled_from(sorted(dir(builtins))),
    st.sampled_from(keyword.kwlist + keyword.softkwlist),
    st.sampled_from(LOOP_NAMES),
    # Identifiers that compiled code would rename: NFKC turns them into others.
    st.sampled_from(["\ufb01", "\u210c", "\uff41", "\u01c5", "\u2168"]),
    st.text(max_size=6),  # mostly not identifiers at all
).filter(lambda name: name not in ("signal", "sender"))
named_arguments = st.dictionaries(keyword_name, st.integers(), max_size=6)


@settings(max_examples=40, deadline=None)
@given(mode=st.sampled_from(MODES), sends=st.lists(named_arguments, max_size=3))
def test_every_receiver_gets_exactly_the_sent_keywords_plus_signal_and_sender(
    mode: str, sends: list[dict[str, Any]]
) -> None:
    signal = recording_signal()

    for named in sends:  # one after another: a signal keeps its last loop
        assert received(signal, mode, **named) == [named, named]


# -- tracebacks ---------------------------------------------------------------------------

TRACEBACK_SCRIPT = """
import sys, traceback
sys.path.insert(0, sys.argv[1])
from tocsin import Signal

def fails(**kwargs):
    raise ValueError("receiver failed")

signal = Signal()
signal.connect(fails)
try:
    signal.send(None, order=1, step=2)
except ValueError:
    print(traceback.format_exc())
[(_, error)] = signal.send_robust(None, order=1, step=2)
print("".join(traceback.format_exception(error)))
try:
    signal.send(None)
except ValueError:
    print(traceback.format_exc())
"""


@pytest.mark.parametrize("names", [("first", "second"), ()], ids=["two names", "none"])
@pytest.mark.parametrize("method", ["send", "send_robust"])
def test_a_new_set_of_names_gets_a_loop_that_raises_or_catches_as_its_send_asks(
    method: str, names: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in a fresh process, whatever loops other tests compiled: this send
    # compiles the loop for its names (and registers its source).
    monkeypatch.setattr(_dispatch, "_loops", {})
    named = {name: index for index, name in enumerate(names)}

    def fails(**kwargs: Any) -> None:
        raise ValueError("receiver failed")

    signal = Signal()
    signal.connect(fails, weak=False)
    if method == "send":
        with pytest.raises(ValueError, match="receiver failed") as raised:
            signal.send(None, **named)
        error = raised.value
    else:
        [(_, error)] = signal.send_robust(None, **named)
        assert isinstance(error, ValueError)

    # The frame that called the receiver is the loop, named for its send.
    *_, loop, receiver = traceback.extract_tb(error.__traceback__)
    mode = "robust " if method == "send_robust" else ""
    assert (
        loop.filename == f"<tocsin {mode}dispatch of {', '.join(names) or 'no names'}>"
    )
    arguments = ", ".join(f"{name}={name}" for name in names)
    assert loop.line == (
        f"_tocsin_response = _tocsin_receiver(signal=signal, sender=sender, {arguments})"
    )
    assert receiver.name == "fails"


def test_ever_new_keyword_names_keep_a_bounded_number_of_loops_and_sources(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A program that sends ever-new keyword names (built from data, say) must
    # not grow the loops, or the sources kept for tracebacks, without bound.
    monkeypatch.setattr(_dispatch, "_loops", {})  # as in a fresh process
    before = set(linecache.cache)
    signal = Signal()
    signal.connect(record, weak=False)
    try:
        for i in range(_dispatch._MAX_LOOPS + 50):
            [(_, got)] = signal.send(None, **{f"bounded_{i}": i})
            assert got[f"bounded_{i}"] == i
        sources = [name for name in linecache.cache if name not in before]
        assert len(_dispatch._loops) == _dispatch._MAX_LOOPS
        assert len(sources) == _dispatch._MAX_LOOPS
    finally:
        for name in set(linecache.cache) - before:
            del linecache.cache[name]


def test_a_traceback_through_a_compiled_loop_shows_the_loops_source_lines() -> None:
    # A fresh interpreter: the loop is compiled (and its source registered) by
    # this very send, whatever other tests have compiled in this process.
    src = str(Path(__file__).resolve().parent.parent / "src")
    result = subprocess.run(
        [sys.executable, "-c", TRACEBACK_SCRIPT, src],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    plain, robust, no_names = result.stdout.split("Traceback")[1:]
    # The frame of the compiled loop says which loop it is, and shows its line.
    for shown, loop, names in [
        (plain, "<tocsin dispatch of order, step>", "order=order, step=step"),
        (robust, "<tocsin robust dispatch of order, step>", "order=order, step=step"),
        (no_names, "<tocsin dispatch of no names>", ""),
    ]:
        assert f'File "{loop}", line ' in shown
        assert f"_tocsin_receiver(signal=signal, sender=sender, {names})" in shown
        assert ", in fails\n" in shown
        assert shown.rstrip().endswith("ValueError: receiver failed")
