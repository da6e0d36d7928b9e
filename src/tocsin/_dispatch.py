"""The dispatch loops: the only code that runs once per receiver per send.

Calling ``receiver(signal=signal, sender=sender, **named)`` merges a fresh
dictionary for every receiver, which costs more than the call itself. Instead,
the first send with a given set of keyword names compiles a loop that takes the
sender's ``named`` dict, unpacks it once, and passes the names to each receiver
as literal keywords. A loop checks that ``named`` has exactly its names and
returns ``None`` when it does not, so a signal can keep the loop it used last
and try it first, without computing a cache key on every send. Names that
cannot be written literally (``**{"a-b": 1}``) use a generic loop instead.

A loop resolves every receiver's weak reference before it calls the first
one, so a receiver that is alive when the send begins is called even if an
earlier receiver drops the last reference to it (as in Django). The loops
reach builtins only through ``_tocsin_`` names, which no send's keyword can
shadow (such names take the generic loop), and their source is registered
with ``linecache``, so a traceback through a loop shows its lines.
"""

from __future__ import annotations

import keyword
import linecache
import operator

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

    Responses = list[tuple[Callable[..., Any], Any]]
    Loop = Callable[
        [Sequence[Callable[[], Any]], Any, Any, dict[str, Any]], Responses | None
    ]

__all__: list[str] = []

_PREFIX = "_tocsin_"
_MAX_LOOPS = 512

_TEMPLATE = """\
def loop(_tocsin_records, signal, sender, _tocsin_named):
{unpack}
    _tocsin_responses = []
    for _tocsin_receiver in [*_tocsin_map(_tocsin_call, _tocsin_records)]:
        if _tocsin_receiver is not None:
{call}
            _tocsin_responses.append((_tocsin_receiver, _tocsin_response))
    return _tocsin_responses
"""

_UNPACK = """\
    if _tocsin_len(_tocsin_named) != {count}:
        return None
    try:
{lines}
    except _tocsin_KeyError:
        return None"""

_NOTHING_TO_UNPACK = """\
    if _tocsin_named:
        return None"""

_PLAIN_CALL = """\
            _tocsin_response = _tocsin_receiver(signal=signal, sender=sender, {args})"""

_ROBUST_CALL = """\
            try:
                _tocsin_response = _tocsin_receiver(signal=signal, sender=sender, {args})
            except _tocsin_Exception as _tocsin_error:
                signal._log_robust_failure(_tocsin_receiver, _tocsin_error)
                _tocsin_response = _tocsin_error"""

# The only globals a compiled loop reads.
_BUILTINS = {
    "_tocsin_len": len,
    "_tocsin_KeyError": KeyError,
    "_tocsin_Exception": Exception,
    "_tocsin_map": map,
    "_tocsin_call": operator.call,
}

_loops: dict[tuple[tuple[str, ...], bool], Loop] = {}


def loop_for(named: dict[str, Any], robust: bool) -> tuple[Loop, bool]:
    """Return the loop for sends with the keyword names of ``named``.

    Returns:
        The loop, and whether a signal may keep it as its last loop (a
        generic loop accepts any names, so it must not be kept).

    Raises:
        TypeError: ``named`` uses a reserved name.
    """
    names = tuple(named)
    loop = _loops.get((names, robust))
    if loop is not None:
        return loop, True
    check_names(names)
    if not all(_is_literal_name(name) for name in names):
        return (_generic_robust_loop if robust else _generic_loop), False
    loop = _compile(names, robust)
    if len(_loops) < _MAX_LOOPS:
        _loops[names, robust] = loop
    return loop, True


def no_loop_yet(
    records: Sequence[Callable[[], Any]],
    signal: Any,
    sender: Any,
    named: dict[str, Any],
) -> None:
    """A signal's last loop before its first send: it matches nothing."""
    return None


def check_names(names: Iterable[str]) -> None:
    """Reject the keyword names that a send may not use."""
    if "signal" in names:
        raise TypeError(
            "Signal.send() got the keyword argument 'signal', which is reserved: "
            "every receiver already gets the signal as signal=. "
            "Rename the argument."
        )


def _is_literal_name(name: str) -> bool:
    # Non-ASCII identifiers are NFKC-normalised when compiled ("ﬁ" becomes
    # "fi"), and __debug__ cannot be assigned: the generic loop passes them.
    # ("sender" is never among the names: it is the sends' own parameter.)
    return (
        name.isascii()
        and name.isidentifier()
        and not keyword.iskeyword(name)
        and not name.startswith(_PREFIX)
        and name != "__debug__"
    )


def _compile(names: tuple[str, ...], robust: bool) -> Loop:
    if names:
        lines = "\n".join(f"        {name} = _tocsin_named[{name!r}]" for name in names)
        unpack = _UNPACK.format(count=len(names), lines=lines)
    else:
        unpack = _NOTHING_TO_UNPACK
    args = ", ".join(f"{name}={name}" for name in names)
    call = (_ROBUST_CALL if robust else _PLAIN_CALL).format(args=args)
    source = _TEMPLATE.format(unpack=unpack, call=call)
    mode = "robust " if robust else ""
    filename = f"<tocsin {mode}dispatch of {', '.join(names) or 'no names'}>"
    if len(_loops) < _MAX_LOOPS:  # kept: a traceback can show its source
        linecache.cache[filename] = (
            len(source),
            None,
            source.splitlines(True),
            filename,
        )
    namespace: dict[str, Any] = dict(_BUILTINS)
    exec(compile(source, filename, "exec"), namespace)
    loop: Loop = namespace["loop"]
    return loop


def _generic_loop(
    records: Sequence[Callable[[], Any]],
    signal: Any,
    sender: Any,
    named: dict[str, Any],
) -> Responses:
    responses: Responses = []
    for receiver in [*map(operator.call, records)]:
        if receiver is not None:
            responses.append(
                (receiver, receiver(signal=signal, sender=sender, **named))
            )
    return responses


def _generic_robust_loop(
    records: Sequence[Callable[[], Any]],
    signal: Any,
    sender: Any,
    named: dict[str, Any],
) -> Responses:
    responses: Responses = []
    for receiver in [*map(operator.call, records)]:
        if receiver is not None:
            try:
                response = receiver(signal=signal, sender=sender, **named)
            except Exception as error:
                signal._log_robust_failure(receiver, error)
                response = error
            responses.append((receiver, response))
    return responses
