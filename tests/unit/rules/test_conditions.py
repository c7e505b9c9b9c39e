"""Residual CEL conditions evaluated with cel-python: missing fields, lists, types."""

from __future__ import annotations

from typing import Any

import pytest

from ondo.errors import RuleError
from ondo.rules.conditions import Condition
from ondo.rules.model import parse_rule


def event(**data: Any) -> dict[str, Any]:
    return {"id": "1", "source": "s", "type": "t", "subject": "alice", "data": data}


def cel_of(condition: str) -> Condition:
    spec = parse_rule(f"on t where {condition} do invoke f")
    assert spec.condition is not None, "expected a residual CEL condition"
    return Condition(spec.condition)


def test_missing_field_makes_a_test_false_and_its_negation_true() -> None:
    both = cel_of("not (a == 1 and b == 2)")
    assert both.evaluate(event()) is True
    assert both.evaluate(event(a=1)) is True
    assert both.evaluate(event(a=1, b=2)) is False


def test_field_against_field() -> None:
    higher = cel_of("systolic > diastolic")
    assert higher.evaluate(event(systolic=150, diastolic=90)) is True
    assert higher.evaluate(event(systolic=80, diastolic=90.5)) is False
    assert higher.evaluate(event(systolic=150)) is False
    assert higher.evaluate(event(systolic="150", diastolic=90)) is False
    same = cel_of("a == b")
    assert same.evaluate(event(a="x", b=["y", "x"])) is True
    assert same.evaluate(event(a=1, b=1.0)) is True
    assert same.evaluate(event(a=None, b=None)) is True
    assert same.evaluate(event(a=1, b="1")) is False


def test_any_element_of_a_list_may_satisfy_a_test() -> None:
    condition = cel_of("x > 1 and x < 5")
    assert condition.evaluate(event(x=[0, 10])) is True  # 10 > 1 and 0 < 5
    assert condition.evaluate(event(x=[10])) is False


def test_nested_paths_through_lists_of_objects() -> None:
    condition = cel_of("not readings.systolic <= 140")
    assert condition.evaluate(event(readings=[{"systolic": 120}, {"systolic": 150}])) is False
    assert condition.evaluate(event(readings=[{"systolic": 150}])) is True
    assert condition.evaluate(event(readings={"systolic": "high"})) is True


def test_not_equal_null_and_booleans() -> None:
    present = cel_of("owner != null")
    assert present.evaluate(event(owner="bob")) is True
    assert present.evaluate(event(owner=None)) is False
    assert present.evaluate(event()) is False
    not_urgent = cel_of("not urgent == true")
    assert not_urgent.evaluate(event(urgent=1)) is True
    assert not_urgent.evaluate(event(urgent=True)) is False


def test_attributes_with_a_dollar() -> None:
    condition = cel_of('not $subject in ["bob", "carol"]')
    assert condition.evaluate(event()) is True
    assert condition.evaluate({**event(), "subject": "bob"}) is False


def test_key_with_a_dot_is_found_like_the_pattern_matcher_does() -> None:
    condition = cel_of("not a.b == 1")
    assert condition.evaluate(event(**{"a.b": 1})) is False
    assert condition.evaluate(event(a={"b": 1})) is False
    assert condition.evaluate(event(a={"b": 2})) is True


@pytest.mark.parametrize(
    ("cel", "expected"),
    [
        ("data.systolic > 140", True),
        ("data.missing > 140", False),
        ('event.subject == "alice"', True),
        ("data.systolic", False),  # not a boolean: false
        ("data.systolic > 'x'", False),  # type error: false
        ('values["data.systolic"].exists(v, v > 140.0)', True),
        ('150.0 in numbers["data.systolic"] && data.systolic == 150', True),
        ('"alice" in strings["subject"] && event.subject == "alice"', True),
        ('strings["data.systolic"] == []', True),
    ],
)
def test_hand_written_cel(cel: str, expected: bool) -> None:
    assert Condition(cel).evaluate(event(systolic=150)) is expected


def test_invalid_cel_is_a_rule_error() -> None:
    with pytest.raises(RuleError, match="not valid CEL"):
        Condition("data.x >")


def test_event_without_data() -> None:
    assert Condition("data == null").evaluate({"type": "t"}) is True
    neither = cel_of("not (a exists and b > 1)")
    assert neither.evaluate({"type": "t"}) is True
    assert neither.evaluate({"type": "t", "data": "text"}) is True
    assert neither.evaluate({"type": "t", "data": [{"a": 1, "b": 2}]}) is False


def test_an_integer_past_int64_in_the_event_makes_the_condition_false_not_an_error() -> None:
    condition = Condition("data.n > 1")
    assert condition.evaluate({"type": "t", "data": {"n": 2**64}}) is False
    assert condition.evaluate({"type": "t", "data": {"n": 2}}) is True
