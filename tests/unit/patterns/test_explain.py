"""explain(pattern, event): None when it matches, else a sentence about the first failing field."""

from __future__ import annotations

from ondo.patterns import compile, explain


def test_matching_event_explains_to_none() -> None:
    assert explain({"type": ["a"]}, {"type": "a"}) is None


def test_names_the_field_its_value_and_the_need() -> None:
    pattern = {"data": {"systolic": [{"numeric": [">", 140]}]}}
    reason = explain(pattern, {"data": {"systolic": 120}})
    assert reason == "data.systolic is 120, pattern needs numeric > 140"


def test_missing_field() -> None:
    assert explain({"subject": ["x"]}, {"type": "a"}) == 'field "subject" is missing'


def test_first_failing_field_in_pattern_order() -> None:
    pattern = {"type": ["a"], "data": {"n": [1]}}
    assert explain(pattern, {"type": "b", "data": {"n": 2}}) == 'type is "b", pattern needs "a"'


def test_several_operators_and_a_range() -> None:
    pattern = {"b": [{"prefix": "x"}, {"numeric": [">=", 1, "<", 2.5]}]}
    reason = explain(pattern, {"b": "y"})
    assert reason == 'b is "y", pattern needs one of: prefix "x", numeric >= 1 and < 2.5'


def test_value_that_must_be_absent() -> None:
    assert explain({"n": [{"exists": False}]}, {"n": 5}) == "n is 5, pattern needs it to be absent"


def test_every_or_alternative_is_reported() -> None:
    pattern = {"$or": [{"a": [1]}, {"b": [{"anything-but": ["y", "z"]}]}]}
    reason = explain(pattern, {"a": 2, "b": "y"})
    assert reason == (
        "none of the 2 $or alternatives matched: a is 2, pattern needs 1; "
        'b is "y", pattern needs anything-but ["y", "z"]'
    )


def test_array_consistency_is_explained() -> None:
    pattern = {"xs": {"a": [1], "b": [4]}}
    reason = explain(pattern, {"xs": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]})
    assert reason is not None
    assert "xs.a, xs.b" in reason and "same array" in reason


def test_explain_accepts_compiled_patterns_and_json_text() -> None:
    event = {"type": "b"}
    assert explain(compile({"type": ["a"]}), event) == explain('{"type": ["a"]}', event)
    assert compile({"type": ["a"]}).explain(event) == 'type is "b", pattern needs "a"'
