"""Property tests: the indexed Matcher agrees with compiled patterns one by one.

Patterns and events are drawn from one small vocabulary of field paths and values, so that a
good share of (pattern, event) pairs match, including through arrays of objects, dotted keys,
$or and every operator.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ondo.patterns import Matcher, PatternError, compile, explain

STRINGS = ["", "a", "ab", "abc", "AB", "x.png", "X.PNG", "10.0.0.1", "10.0.1.5", "::1", "a*b"]
NUMBERS = [0, 1, 1.0, 1.5, 2, -3, 100]
SCALARS = [*STRINGS, *NUMBERS, True, False, None]
PATHS = ["a", "b", "d.x", "d.y", "d.z", "xs.p", "xs.q", "xs.ys.r"]

scalar = st.sampled_from(SCALARS)
string = st.sampled_from(STRINGS)
number = st.sampled_from(NUMBERS)
some_strings = st.lists(string, min_size=1, max_size=3)
nonempty_strings = st.lists(string.filter(bool), min_size=1, max_size=2)


@st.composite
def numeric(draw: st.DrawFn) -> dict[str, Any]:
    low, high = sorted(draw(st.lists(number, min_size=2, max_size=2, unique_by=float)))
    form = draw(st.sampled_from(["low", "high", "both", "equal"]))
    if form == "equal":
        return {"numeric": ["=", low]}
    lower = [draw(st.sampled_from([">", ">="])), low]
    upper = [draw(st.sampled_from(["<", "<="])), high]
    return {"numeric": {"low": lower, "high": upper, "both": lower + upper}[form]}


def _one_or_list(values: st.SearchStrategy[list[Any]]) -> st.SearchStrategy[Any]:
    return values.flatmap(lambda vs: st.sampled_from([vs[0], vs]))


anything_but = st.one_of(
    string.map(lambda s: {"anything-but": s}),
    number.map(lambda n: {"anything-but": n}),
    some_strings.map(lambda s: {"anything-but": s}),
    _one_or_list(nonempty_strings).map(lambda s: {"anything-but": {"prefix": s}}),
    _one_or_list(nonempty_strings).map(lambda s: {"anything-but": {"suffix": s}}),
    _one_or_list(some_strings).map(lambda s: {"anything-but": {"equals-ignore-case": s}}),
    st.sampled_from(["a*", "*b", "x.*"]).map(lambda w: {"anything-but": {"wildcard": w}}),
)

operator = st.one_of(
    scalar,
    string.map(lambda s: {"prefix": s}),
    string.map(lambda s: {"prefix": {"equals-ignore-case": s}}),
    string.map(lambda s: {"suffix": s}),
    string.map(lambda s: {"suffix": {"equals-ignore-case": s}}),
    string.map(lambda s: {"equals-ignore-case": s}),
    st.sampled_from(["a*", "*b*", "", "*.png", "a\\*b", "*"]).map(lambda w: {"wildcard": w}),
    numeric(),
    st.sampled_from(["10.0.0.0/24", "10.0.0.1", "::/0", "10.0.0.0/8"]).map(lambda c: {"cidr": c}),
    st.booleans().map(lambda b: {"exists": b}),
    anything_but,
)


def _place(pattern: dict[str, Any], path: str, values: list[Any], dotted: bool) -> None:
    """Put a value list at a path, as nested objects or (sometimes) one dotted key."""
    parts = [path] if dotted else path.split(".")
    node = pattern
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return
        node = child
    if not isinstance(node.get(parts[-1], []), dict):
        node[parts[-1]] = values


@st.composite
def simple_pattern(draw: st.DrawFn) -> dict[str, Any]:
    pattern: dict[str, Any] = {}
    for path in draw(st.lists(st.sampled_from(PATHS), min_size=1, max_size=3, unique=True)):
        values = draw(st.lists(operator, min_size=1, max_size=3))
        _place(pattern, path, values, dotted=draw(st.booleans()))
    return pattern


def _compiles(candidate: dict[str, Any]) -> bool:
    """Rare draws stack wildcards on one field past the complexity limit; leave those out."""
    try:
        compile(candidate)
    except PatternError:
        return False
    return True


@st.composite
def _pattern(draw: st.DrawFn) -> dict[str, Any]:
    base = draw(simple_pattern())
    if draw(st.integers(0, 3)) == 0:
        base["$or"] = draw(st.lists(simple_pattern(), min_size=2, max_size=3))
    return base


def pattern() -> st.SearchStrategy[dict[str, Any]]:
    return _pattern().filter(_compiles)


leaf = st.one_of(scalar, st.lists(scalar, max_size=3))


@st.composite
def event(draw: st.DrawFn) -> dict[str, Any]:
    result: dict[str, Any] = {}
    often = st.integers(0, 3).map(bool)  # a field is present three times in four
    for key in ("a", "b"):
        if draw(often):
            result[key] = draw(leaf)
    d = {key: draw(leaf) for key in ("x", "y", "z") if draw(often)}
    if draw(st.booleans()):
        result["d"] = d
    elif d:
        result.update({f"d.{key}": value for key, value in d.items()})  # dotted event keys
    elements = []
    for _ in range(draw(st.integers(0, 3))):
        element = {key: draw(scalar) for key in ("p", "q") if draw(often)}
        if draw(st.booleans()):
            element["ys"] = [{"r": draw(scalar)} for _ in range(draw(st.integers(0, 2)))]
        elements.append(element)
    if elements or draw(st.booleans()):
        result["xs"] = elements
    return result


FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(patterns=st.lists(pattern(), min_size=1, max_size=12), events=st.lists(event(), max_size=6))
def test_matcher_returns_exactly_the_rules_whose_pattern_matches(
    patterns: list[dict[str, Any]], events: list[dict[str, Any]]
) -> None:
    compiled = [compile(p) for p in patterns]
    matcher = Matcher()
    for number, p in enumerate(compiled):
        matcher.add(str(number), p)
    for e in events:
        expected = {str(n) for n, p in enumerate(compiled) if p.matches(e)}
        assert matcher.matching(e) == expected


@FAST
@given(
    patterns=st.lists(pattern(), min_size=2, max_size=10),
    removed=st.sets(st.integers(0, 9)),
    events=st.lists(event(), min_size=1, max_size=4),
)
def test_matcher_after_removals_and_replacements(
    patterns: list[dict[str, Any]], removed: set[int], events: list[dict[str, Any]]
) -> None:
    matcher = Matcher()
    for number, p in enumerate(patterns):
        matcher.add(str(number), p)
    live = dict(enumerate(patterns))
    for number in removed:
        matcher.remove(str(number))
        live.pop(number, None)
    matcher.add("0", patterns[-1])  # replacement of a (possibly removed) id
    live[0] = patterns[-1]
    assert len(matcher) == len(live)
    for e in events:
        expected = {str(n) for n, p in live.items() if compile(p).matches(e)}
        assert matcher.matching(e) == expected


@FAST
@given(p=pattern(), e=event())
def test_explain_is_none_exactly_when_the_pattern_matches(
    p: dict[str, Any], e: dict[str, Any]
) -> None:
    reason = explain(p, e)
    assert (reason is None) == compile(p).matches(e)
    if reason is not None:
        assert reason.strip()


def test_generators_produce_matches_often() -> None:
    """Guards the property tests above against drifting into vacuous no-match cases."""
    found = []

    @settings(max_examples=200, deadline=None, database=None)
    @given(p=pattern(), e=event())
    def sample(p: dict[str, Any], e: dict[str, Any]) -> None:
        found.append(compile(p).matches(e))

    sample()
    assert sum(found) >= len(found) // 20


@FAST
@given(
    patterns=st.lists(pattern(), min_size=2, max_size=8),
    edits=st.lists(st.tuples(st.booleans(), st.integers(0, 7)), min_size=1, max_size=12),
    events=st.lists(event(), min_size=1, max_size=3),
)
def test_matcher_between_edits(
    patterns: list[dict[str, Any]], edits: list[tuple[bool, int]], events: list[dict[str, Any]]
) -> None:
    """Matching after every add or remove: what the walk compiled for earlier rules must not
    outlive an edit of them."""
    matcher = Matcher()
    live: dict[int, dict[str, Any]] = {}
    for adding, number in edits:
        number %= len(patterns)
        if adding:
            matcher.add(str(number), patterns[number])
            live[number] = patterns[number]
        else:
            matcher.remove(str(number))
            live.pop(number, None)
        for e in events:
            expected = {str(n) for n, p in live.items() if compile(p).matches(e)}
            assert matcher.matching(e) == expected
