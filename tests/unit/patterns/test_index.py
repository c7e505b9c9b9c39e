"""The Matcher's per-path indexes against brute force."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from ondo.patterns.index import Affixes, Intervals

bound = st.one_of(st.integers(-6, 6), st.just(math.inf), st.just(-math.inf))
interval = st.tuples(bound, st.booleans(), bound, st.booleans()).filter(lambda i: i[0] < i[2])


def _inside(x: float, low: float, low_in: bool, high: float, high_in: bool) -> bool:
    above = x > low or (x == low and low_in)
    below = x < high or (x == high and high_in)
    return above and below


@settings(max_examples=200, deadline=None)
@given(
    intervals=st.lists(interval, max_size=30),
    removed=st.sets(st.integers(0, 29)),
    probes=st.lists(st.integers(-14, 14).map(lambda n: n / 2), min_size=1, max_size=10),
)
def test_intervals_find_exactly_the_intervals_holding_a_value(
    intervals: list[tuple[float, bool, float, bool]], removed: set[int], probes: list[float]
) -> None:
    index: Intervals[int] = Intervals()
    for number, bounds in enumerate(intervals):
        index.add(*bounds, number)
    live = dict(enumerate(intervals))
    for number in removed & set(live):
        index.remove(*live.pop(number), number)
    for x in probes:
        found: list[int] = []
        index.collect(x, found)
        assert sorted(found) == sorted(n for n, b in live.items() if _inside(x, *b))


word = st.text(alphabet="ab.", max_size=4)


@settings(max_examples=200, deadline=None)
@given(needles=st.lists(word, max_size=20), values=st.lists(word, min_size=1, max_size=10))
def test_affixes_find_every_prefix_and_suffix(needles: list[str], values: list[str]) -> None:
    prefixes: Affixes[int] = Affixes(suffix=False)
    suffixes: Affixes[int] = Affixes(suffix=True)
    for number, needle in enumerate(needles):
        prefixes.add(needle, number)
        suffixes.add(needle, number)
    for value in values:
        found: list[int] = []
        prefixes.collect(value, found)
        assert sorted(found) == [n for n, p in enumerate(needles) if value.startswith(p)]
        found = []
        suffixes.collect(value, found)
        assert sorted(found) == [n for n, p in enumerate(needles) if value.endswith(p)]
