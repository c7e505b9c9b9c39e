"""Issue 9 items 4 and 11: every bound of ondo.rules.limits refuses its input fast, with a 400
error naming the bound, and nothing past the parser can run out of stack on what it accepts."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ondo.api.errors import status_of
from ondo.errors import PatternTooLarge, RuleSyntaxError, RuleTooLarge
from ondo.patterns import Matcher
from ondo.patterns import compile as compile_pattern
from ondo.rules import limits
from ondo.rules.conditions import Condition
from ondo.rules.model import parse_rule, rule_from_json

DOCS = Path(__file__).parents[3] / "docs" / "rules.md"
EMIT = [{"kind": "emit", "target": "seen"}]


def _nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


RULE_TEXTS = {
    # The rule of the issue: 5,000 `and`ed conditions, 88 KB.
    "5000 ands": (
        "on x where " + " and ".join(f"field{i} == {i}" for i in range(5000)) + " do emit y",
        "MAX_RULE_TEXT_BYTES",
    ),
    "1500 ands": (
        "on x where " + " and ".join(f"f=={i % 10}" for i in range(1500)) + " do emit y",
        "MAX_CONDITIONS",
    ),
    "50000 parentheses": (
        "on x where " + "(" * 50_000 + "a == 1" + ")" * 50_000 + " do emit y",
        "MAX_RULE_TEXT_BYTES",
    ),
    "5000 parentheses": (
        "on x where " + "(" * 5_000 + "a == 1" + ")" * 5_000 + " do emit y",
        "MAX_CONDITION_DEPTH",
    ),
    "50000 nots": ("on x where " + "not " * 50_000 + "a == 1 do emit y", "MAX_RULE_TEXT_BYTES"),
    "3000 nots": ("on x where " + "not " * 3_000 + "a == 1 do emit y", "MAX_CONDITION_DEPTH"),
    "10000-segment path": (
        "on x where " + ".".join(["a"] * 10_000) + " == 1 do emit y",
        "MAX_RULE_TEXT_BYTES",
    ),
    "5000-segment path": (
        "on x where " + ".".join(["a"] * 5_000) + " == 1 do emit y",
        "MAX_PATH_SEGMENTS",
    ),
    "40-segment per": (
        "on x 3 times within 1h per " + ".".join(["a"] * 40) + " do emit y",
        "MAX_PATH_SEGMENTS",
    ),
    "deep with-JSON": (
        "on x do emit y with " + '{"a":' * 100 + "1" + "}" * 100,
        "MAX_PATTERN_DEPTH",
    ),
    "40 actions": ("on x do " + " and ".join(["emit y"] * 40), "MAX_ACTIONS"),
    "5100 event types": (
        "on " + " or ".join(f"t{i}" for i in range(5_100)) + " do emit y",
        "MAX_RULE_TEXT_BYTES",
    ),
}


@pytest.mark.parametrize("name", list(RULE_TEXTS))
def test_rule_text_past_a_bound_is_refused_naming_it(name: str) -> None:
    text, bound = RULE_TEXTS[name]
    with pytest.raises(RuleTooLarge, match=bound) as caught:
        parse_rule(text)
    assert status_of(caught.value) == 400


RULE_DEFINITIONS: dict[str, tuple[dict[str, Any], str]] = {
    "100000-deep pattern": (
        {"pattern": _nested(100_000, ["x"]), "actions": EMIT},
        "MAX_PATTERN_DEPTH",
    ),
    "10000-segment pattern path": (
        {"pattern": {".".join(["a"] * 10_000): [1]}, "actions": EMIT},
        "MAX_PATH_SEGMENTS",
    ),
    "6000 pattern values": ({"pattern": {"a": list(range(6_000))}, "actions": EMIT}, "SIZE"),
    "1200 $or branches": (
        {"pattern": {"$or": [{"a": [i]} for i in range(1_200)]}, "actions": EMIT},
        "MAX_ALTERNATIVES",
    ),
    "50000 CEL parentheses": (
        {"pattern": {"type": ["x"]}, "condition": "(" * 50_000 + "true" + ")" * 50_000},
        "MAX_CEL_BYTES",
    ),
    "100 CEL parentheses": (
        {"pattern": {"type": ["x"]}, "condition": "(" * 100 + "true" + ")" * 100},
        "MAX_CEL_DEPTH",
    ),
    "3000 CEL ands": (
        {"pattern": {"type": ["x"]}, "condition": " && ".join(["true"] * 1_000)},
        "MAX_CEL_DEPTH",
    ),
    "CEL literal path": (
        {"pattern": {"type": ["x"]}, "condition": f'values["{".".join(["a"] * 40)}"] != []'},
        "MAX_PATH_SEGMENTS",
    ),
    "deep action args": (
        {
            "pattern": {"type": ["x"]},
            "actions": [{"kind": "emit", "target": "y", "args": _nested(50, 1)}],
        },
        "MAX_PATTERN_DEPTH",
    ),
    "40 actions": ({"pattern": {"type": ["x"]}, "actions": EMIT * 40}, "MAX_ACTIONS"),
}


@pytest.mark.parametrize("name", list(RULE_DEFINITIONS))
def test_json_rule_past_a_bound_is_refused_naming_it(name: str) -> None:
    definition, bound = RULE_DEFINITIONS[name]
    with pytest.raises(RuleTooLarge, match=bound):
        rule_from_json({"actions": EMIT, **definition})


def test_pattern_states_are_bounded_before_the_matcher_builds_them() -> None:
    # 9 $or of 2 branches: 512 alternatives, each with the 30 plain fields too: 15,360 states.
    pattern: dict[str, Any] = {f"f{i}": [1] for i in range(30)}
    for i in range(9):
        pattern[f"o{i}"] = {"$or": [{"p": [1]}, {"q": [2]}]}
    with pytest.raises(PatternTooLarge, match="MAX_PATTERN_STATES"):
        Matcher().add("r", pattern)


def test_a_long_route_compiles_and_matches_without_recursion() -> None:
    """The old failure: a rule of thousands of conditions, and every later event of its
    namespace raised RecursionError in the Matcher's program compiler."""
    fields = {f"f{i}": [i] for i in range(2_000)}
    matcher = Matcher()
    matcher.add("long", {"type": ["x"], **fields})
    matcher.add("short", {"type": ["x"]})
    event = {"type": "x", **{f"f{i}": i for i in range(2_000)}}
    assert matcher.matching(event) == {"long", "short"}
    assert matcher.matching({"type": "x", "f0": 0}) == {"short"}


def test_lists_nested_deeper_than_the_stack_are_matched_without_recursion() -> None:
    deep: Any = 1
    for _ in range(5_000):
        deep = [deep]
    event = {"type": "x", "data": {"a": deep, "b": [{"c": deep}]}}
    matcher = Matcher()
    matcher.add("a", {"data": {"a": [1]}})
    matcher.add("c", {"data": {"b": {"c": [1]}}})
    assert matcher.matching(event) == {"a", "c"}
    assert compile_pattern({"data": {"b": {"c": [1]}}}).matches(event)
    assert Condition('1.0 in numbers["data.b.c"]').evaluate(event)


def test_a_cel_condition_computing_a_long_path_raises_rather_than_costing_its_square() -> None:
    condition = Condition(
        'values["a.a" + ".a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a"] != []'
    )
    with pytest.raises(RuleTooLarge, match="MAX_PATH_SEGMENTS"):
        condition.evaluate({"data": {}})


def _deepest_rule() -> str:
    """As deep and as long as the bounds let a rule be (and or, alternately, field to field)."""
    condition = "a0 > b0"
    for level in range(1, limits.MAX_CONDITION_DEPTH):  # and one more pair of parentheses
        condition = f"a{level} > b{level} {'or' if level % 2 else 'and'} ({condition})"
    tests = limits.MAX_CONDITION_DEPTH
    more = " and ".join(f"c{i} == d{i}" for i in range(limits.MAX_CONDITIONS - tests))
    return f"on x where ({condition}) and {more} do emit y"


def _with_frames_used(frames: int, call: Callable[[], bool]) -> bool:
    return call() if frames == 0 else _with_frames_used(frames - 1, call)


def test_the_largest_condition_allowed_evaluates_with_the_stack_a_dispatcher_has() -> None:
    try:
        spec = parse_rule(_deepest_rule())
    except RuleTooLarge as exc:  # refused by MAX_CEL_DEPTH is fine too: never a RecursionError
        assert "MAX_CEL_DEPTH" in str(exc)
        return
    assert spec.condition is not None
    condition = Condition(spec.condition)
    event = {"type": "x", "data": {"a9": 2, "b9": 1}}
    used = sys.getrecursionlimit() // 5  # what a request or the dispatcher stands on, and more
    assert _with_frames_used(used, lambda: condition.evaluate(event)) is False


CEL_SHAPES: dict[str, Callable[[int], str]] = {
    "chain": lambda n: " && ".join(["x > 1.0"] * n),
    "parentheses": lambda n: "(" * n + "x > 1.0" + ")" * n,
    "nots": lambda n: "!" * n + "(x > 1.0)",
    "macros": lambda n: "[1].exists(v, " * n + "x > 1.0" + ")" * n,
    "sums": lambda n: "x" + " + 1.0" * n + " > 1.0",
}


@pytest.mark.parametrize("shape", list(CEL_SHAPES))
def test_the_deepest_cel_allowed_evaluates_with_the_stack_a_dispatcher_has(shape: str) -> None:
    make = CEL_SHAPES[shape]
    size = 1
    while True:  # the largest size MAX_CEL_DEPTH lets through
        try:
            condition = Condition(make(size + 1))
        except RuleTooLarge:
            break
        size += 1
    condition = Condition(make(size))
    used = sys.getrecursionlimit() // 5
    assert _with_frames_used(used, lambda: condition.evaluate({"x": 0})) is False


def test_every_bound_is_documented_with_its_value() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    for name, value in limits.ALL.items():
        row = re.search(rf"`{name}`\s*\|\s*([\d,]+)", docs)
        assert row is not None, f"docs/rules.md does not list {name}"
        assert int(row.group(1).replace(",", "")) == value, name


@pytest.mark.timeout(30)
def test_a_chain_of_failing_tests_is_evaluated_in_linear_time() -> None:
    """cel-python wrote both sides' errors into the error of `&&` and `||`: a chain of tests
    that fail (here on a name the condition does not know) cost time and memory doubling with
    each test."""
    for operator in ("&&", "||"):
        condition = Condition(f" {operator} ".join(["systolic > 140.0"] * 26))
        assert condition.evaluate({"data": {}}) is False


def test_lists_in_lists_are_refused_without_recursing() -> None:
    with pytest.raises(RuleSyntaxError, match="a list holds only values"):
        parse_rule("on x where a in " + "[" * 5_000 + "1" + "]" * 5_000 + " do emit y")
