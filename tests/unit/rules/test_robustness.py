"""Property tests: the rule language raises only its documented errors, on any input, and its
work per input is bounded (hypothesis' deadline fails an example that takes too long; inputs
reach past every bound of ondo.rules.limits).

Documented: parse_rule -> RuleSyntaxError | RuleError (RuleTooLarge among them);
rule_from_json -> RuleError (RuleSyntaxError for its "text"); Condition(text) -> RuleError;
Condition.evaluate -> bool, or RuleTooLarge for a path computed past MAX_PATH_SEGMENTS; the
Matcher never raises on an event.
"""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ondo.errors import RuleError, RuleSyntaxError, RuleTooLarge
from ondo.patterns import Matcher
from ondo.rules.conditions import Condition
from ondo.rules.model import parse_rule, rule_from_json, rule_to_json
from tests.unit.huge import Nested, Repeat, bounded, build

BOUNDED = bounded(150)

WORDS = ["on", "where", "do", "and", "or", "not", "in", "exists", "contains", "emit", "invoke"]
WORDS += ["from", "about", "for", "at", "most", "once", "per", "times", "within", "with"]
WORDS += ["t", "a.b", "x", "$subject", "*", "10", "-1", "2.5", "30d", "==", "!=", ">", "<="]
WORDS += ["(", ")", "[", "]", ",", '"s"', "'q'", '{"a": [1]}', "true", "null", "{", "}"]
piece = st.sampled_from(WORDS)
# Runs of one piece reach the bounds: 50,000 parentheses or `not`s, paths of many segments.
run = st.builds(Repeat, piece, st.integers(1, 50_000), st.just(" "))
long_path = st.builds(Repeat, st.just("a"), st.integers(1, 10_000), st.just("."))
rule_text = st.lists(st.one_of(piece, piece, piece, run, long_path), max_size=12)


@BOUNDED
@given(rule_text, st.booleans())
def test_any_rule_text_parses_or_fails_with_a_rule_error(parts: list[Any], prefixed: bool) -> None:
    text = " ".join(build(parts))
    try:
        spec = parse_rule(f"on t where {text}" if prefixed else text)
    except (RuleSyntaxError, RuleError):
        return
    assert rule_from_json(rule_to_json(spec)) == spec
    if spec.condition:
        Condition(spec.condition).evaluate({"type": "t", "data": {"a": {"b": 1}}})


scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.integers(0, 30).map(lambda n: 10**n),
)
json_value = st.recursive(
    scalar,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | long_path, inner, max_size=4)
    ),
    max_leaves=20,
)
deep_value = st.builds(Nested, st.integers(1, 100_000), json_value, st.sampled_from(["[", "{"]))
any_json = st.one_of(json_value, deep_value)
rule_fields = st.sampled_from(
    ["pattern", "base_pattern", "condition", "window", "throttle", "actions", "text", "other"]
)


@BOUNDED
@given(st.dictionaries(rule_fields, any_json, max_size=5))
def test_any_json_rule_is_read_or_fails_with_a_rule_error(definition: dict[str, Any]) -> None:
    with contextlib.suppress(RuleError, RuleSyntaxError):
        rule_from_json(build(definition))


CEL = ["data", ".", "a", "x", "values", "[", "]", '"data.a"', "(", ")", "!", "-", "&&", "||"]
CEL += ["+", ">", "==", "1", "1.5", "true", "null", "?", ":", ".exists(v,", "v", "size(", ","]
CEL += ['"' + ".a" * 40 + '"', "has(", "int(", "string(", "{", "}", '"k":']
cel_piece = st.sampled_from(CEL)
cel_run = st.builds(Repeat, cel_piece, st.integers(1, 6_000))
cel_text = st.lists(st.one_of(cel_piece, cel_piece, cel_run), max_size=16)
event = st.fixed_dictionaries({"type": st.just("t"), "data": json_value})


@BOUNDED
@given(cel_text, event)
def test_any_cel_condition_compiles_or_fails_and_evaluates_to_a_boolean(
    parts: list[Any], evented: dict[str, Any]
) -> None:
    try:
        condition = Condition(" ".join(build(parts)))
    except RuleError:
        return
    with contextlib.suppress(RuleTooLarge):
        assert condition.evaluate(evented) in (True, False)


# As deep as JSON carries events (json.loads stops at Python's recursion limit).
deep_data = st.builds(Nested, st.integers(1, 950), scalar, st.sampled_from(["[", "{"]))
deep_event = st.fixed_dictionaries({"type": st.just("t"), "data": deep_data})


@BOUNDED
@given(st.one_of(event, deep_event))
def test_the_matcher_never_raises_on_an_event(recipe: dict[str, Any]) -> None:
    evented = build(recipe)
    matcher = Matcher()
    matcher.add("plain", {"type": ["t"]})
    matcher.add("deep", {"data": {"k": {"k": [{"exists": True}]}}})
    matcher.add("list", {"data": [{"numeric": [">", 0]}]})
    assert "plain" in matcher.matching(evented)
