"""The dispatch loops: the only code that runs once per receiver per send.

Calling ``receiver(signal=signal, sender=sender, **named)`` merges a fresh
dictionary for every receiver, which costs more than the call itself. Instead,
the first send with a given set of keyword names compiles a loop that passes
those names as literal keywords, and later sends with the same names reuse it.
Names that cannot be written literally fall back to a generic loop.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__: list[str] = []

Responses = list[tuple[Callable[..., Any], Any]]
Loop = Callable[..., Responses]

_PREFIX = "_tocsin_"
_MAX_LOOPS = 512

_TEMPLATE = """\
def loop(_tocsin_records, signal, sender, {params}):
    _tocsin_responses = []
    for _tocsin_record in _tocsin_records:
        _tocsin_receiver = _tocsin_record()
        if _tocsin_receiver is not None:
{call}
            _tocsin_responses.append((_tocsin_receiver, _tocsin_response))
    return _tocsin_responses
"""

_PLAIN_CALL = """\
            _tocsin_response = _tocsin_receiver(signal=signal, sender=sender, {args})"""

_ROBUST_CALL = """\
            try:
                _tocsin_response = _tocsin_receiver(signal=signal, sender=sender, {args})
            except Exception as _tocsin_error:
                signal._log_robust_failure(_tocsin_receiver, _tocsin_error)
                _tocsin_response = _tocsin_error"""

#: Compiled loops by keyword names; ``Signal.send`` reads these directly.
plain_loops: dict[tuple[str, ...], Loop] = {}
robust_loops: dict[tuple[str, ...], Loop] = {}


def make_loop(names: tuple[str, ...], robust: bool) -> Loop:
    """Return the dispatch loop for sends whose keyword names are ``names``."""
    cache = robust_loops if robust else plain_loops
    if names in cache:
        return cache[names]
    check_names(names)
    if not all(_is_literal_name(name) for name in names):
        return _generic_robust_loop if robust else _generic_loop
    loop = _compile(names, robust)
    if len(cache) < _MAX_LOOPS:
        cache[names] = loop
    return loop


def check_names(names: Iterable[str]) -> None:
    """Reject the keyword names that a send may not use."""
    if "signal" in names:
        raise TypeError(
            "Signal.send() got the keyword argument 'signal', which is reserved: "
            "every receiver already gets the signal as signal=. "
            "Rename the argument."
        )


def _is_literal_name(name: str) -> bool:
    return (
        name.isidentifier()
        and not keyword.iskeyword(name)
        and not name.startswith(_PREFIX)
    )


def _compile(names: tuple[str, ...], robust: bool) -> Loop:
    args = ", ".join(f"{name}={name}" for name in names)
    call = (_ROBUST_CALL if robust else _PLAIN_CALL).format(args=args)
    params = "*, " + ", ".join(names) if names else ""
    source = _TEMPLATE.format(params=params, call=call)
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<tocsin dispatch {names!r}>", "exec"), namespace)
    loop: Loop = namespace["loop"]
    return loop


def _generic_loop(
    records: Sequence[Callable[[], Any]], signal: Any, sender: Any, /, **named: Any
) -> Responses:
    responses: Responses = []
    for record in records:
        receiver = record()
        if receiver is not None:
            responses.append(
                (receiver, receiver(signal=signal, sender=sender, **named))
            )
    return responses


def _generic_robust_loop(
    records: Sequence[Callable[[], Any]], signal: Any, sender: Any, /, **named: Any
) -> Responses:
    responses: Responses = []
    for record in records:
        receiver = record()
        if receiver is not None:
            try:
                response = receiver(signal=signal, sender=sender, **named)
            except Exception as error:
                signal._log_robust_failure(receiver, error)
                response = error
            responses.append((receiver, response))
    return responses
