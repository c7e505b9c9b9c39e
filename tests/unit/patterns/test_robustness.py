"""Property tests: the pattern compiler raises only PatternError, on any input (a JSON value or
text), within a bound of work (hypothesis' deadline; inputs reach past every bound of
ondo.patterns.limits: 100,000 levels of nesting, 10,000-segment paths, thousands of values)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ondo.errors import PatternError
from ondo.patterns import Matcher, compile
from tests.unit.huge import Nested, Repeat, bounded, build, scalars

BOUNDED = bounded(200)

OPERATORS = ["prefix", "suffix", "anything-but", "numeric", "exists", "cidr", "wildcard"]
OPERATORS += ["equals-ignore-case", "$or", "Prefix"]
key = st.one_of(
    st.sampled_from(["type", "source", "data", "a", "a.b", "$or", *OPERATORS]),
    st.text(max_size=6),
    st.builds(Repeat, st.just("k"), st.integers(1, 10_000), st.just(".")),
)
scalar = scalars(*["*", "a*b*c*d*e*f", "10.0.0.0/8", ">", "<=", "="])
value = st.recursive(
    scalar,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(key, inner, max_size=4),
    max_leaves=40,
)


deep = st.builds(Nested, st.integers(1, 100_000), value, st.sampled_from(["{", "[", "$or"]))


@dataclass(frozen=True)
class Wide:
    """A field listing `value` `times` times."""

    times: int
    value: Any

    def build(self) -> Any:
        return {"a": [self.value] * self.times}


@dataclass(frozen=True)
class OrOf:
    """A $or of `branches` alternatives."""

    branches: int

    def build(self) -> Any:
        return {"$or": [{"a": [i]} for i in range(self.branches)]}


@dataclass(frozen=True)
class DeepText:
    """JSON text nesting `depth` levels of `opener`."""

    depth: int
    opener: str

    def build(self) -> str:
        inner, closer = ('{"a":', "}") if self.opener == "{" else ("[", "]")
        return inner * self.depth + "1" + closer * self.depth


text = st.one_of(
    st.text(max_size=40),
    st.builds(DeepText, st.integers(1, 100_000), st.sampled_from(["{", "["])),
    value.map(lambda v: json.dumps(build(v), allow_nan=True)),
)


pattern = st.one_of(
    value,
    deep,
    st.builds(Wide, st.integers(1, 20_000), scalar),
    st.builds(OrOf, st.integers(2, 3_000)),
)


def _built(recipe: Any) -> Any:
    return recipe.build() if isinstance(recipe, OrOf | DeepText | Wide) else build(recipe)


@BOUNDED
@given(st.one_of(pattern, text))
def test_any_input_compiles_or_fails_with_a_pattern_error(recipe: Any) -> None:
    try:
        compiled = compile(_built(recipe))
    except PatternError:
        return
    compiled.matches({"type": "t", "a": 1})


@BOUNDED
@given(pattern)
def test_the_matcher_takes_any_pattern_or_refuses_it_with_a_pattern_error(recipe: Any) -> None:
    matcher = Matcher()
    try:
        matcher.add("r", _built(recipe))
    except PatternError:
        assert "r" not in matcher
        return
    matcher.matching({"type": "t", "a": [1, {"b": 2}], "data": {"k": "x"}})
