"""The JSON form of a send: every supported value comes back equal, with its type."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from tocsin.durable import payload

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.datetimes(timezones=st.none() | st.just(dt.UTC))
    | st.dates()
    | st.times()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.uuids()
)
hashable = scalars.filter(lambda v: not isinstance(v, decimal.Decimal) or v.is_finite())
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.frozensets(hashable, max_size=4)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


def same(a: Any, b: Any) -> bool:
    """Equal and of the same type, all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, decimal.Decimal):
        return str(a) == str(b)
    return bool(a == b)


@settings(max_examples=60)
@given(
    st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), values, max_size=4)
)
def test_every_supported_value_round_trips_with_its_type(named: dict[str, Any]) -> None:
    text = payload.encode("sender", named, "receiver")
    json.loads(text)  # plain JSON
    sender, decoded = payload.decode(text, Session())
    assert sender == "sender"
    assert same(decoded, named)
