"""Property tests: the pattern compiler raises only PatternError, on any input (a JSON value or
text), within a bound of work (hypothesis' deadline; inputs reach past every bound of
ondo.patterns.limits: 100,000 levels of nesting, 10,000-segment paths, thousands of values)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ondo.errors import PatternError
from ondo.patterns import Matcher, compile

BOUNDED = settings(
    max_examples=200,
    deadline=timedelta(seconds=3),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

OPERATORS = ["prefix", "suffix", "anything-but", "numeric", "exists", "cidr", "wildcard"]
OPERATORS += ["equals-ignore-case", "$or", "Prefix"]
key = st.one_of(
    st.sampled_from(["type", "source", "data", "a", "a.b", "$or", *OPERATORS]),
    st.text(max_size=6),
    st.integers(1, 10_000).map(lambda n: ".".join(["k"] * n)),
)
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["*", "a*b*c*d*e*f", "10.0.0.0/8", ">", "<=", "="]),
)
value = st.recursive(
    scalar,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(key, inner, max_size=4),
    max_leaves=40,
)


def _nested(depth: int, leaf: Any, via: str) -> Any:
    for _ in range(depth):
        leaf = {"$or": [leaf, leaf]} if via == "$or" else ([leaf] if via == "[" else {"k": leaf})
    return leaf


deep = st.builds(_nested, st.integers(1, 100_000), value, st.sampled_from(["{", "[", "$or"]))
wide = st.builds(lambda n, v: {"a": [v] * n}, st.integers(1, 20_000), scalar)
many_ors = st.builds(lambda n: {"$or": [{"a": [i]} for i in range(n)]}, st.integers(2, 3_000))
pattern = st.one_of(value, deep.filter(lambda v: v is not None), wide, many_ors)


def _text(depth: int, opener: str) -> str:
    closer = "]" if opener == "[" else "}"
    inner = '{"a":' if opener == "{" else "["
    return inner * depth + "1" + closer * depth


text = st.one_of(
    st.text(max_size=40),
    st.builds(_text, st.integers(1, 100_000), st.sampled_from(["{", "["])),
    value.map(lambda v: json.dumps(v, allow_nan=True)),
)


@BOUNDED
@given(st.one_of(pattern, text))
def test_any_input_compiles_or_fails_with_a_pattern_error(given_pattern: Any) -> None:
    try:
        compiled = compile(given_pattern)
    except PatternError:
        return
    compiled.matches({"type": "t", "a": 1})


@BOUNDED
@given(pattern)
def test_the_matcher_takes_any_pattern_or_refuses_it_with_a_pattern_error(
    given_pattern: Any,
) -> None:
    matcher = Matcher()
    try:
        matcher.add("r", given_pattern)
    except PatternError:
        assert "r" not in matcher
        return
    matcher.matching({"type": "t", "a": [1, {"b": 2}], "data": {"k": "x"}})
