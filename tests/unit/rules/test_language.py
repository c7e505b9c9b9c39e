"""Grammar details: event types, filters, operators, windows, actions, and what goes to CEL."""

from __future__ import annotations

import pytest

from ondo.actions.model import Action
from ondo.errors import RuleError
from ondo.rules.conditions import Condition
from ondo.rules.model import (
    CountWindow,
    SustainWindow,
    Throttle,
    parse_rule,
    rule_from_json,
    rule_to_json,
)


def where(condition: str) -> tuple[dict[str, object], str | None]:
    """The data part of the pattern and the residual CEL for one where-condition."""
    spec = parse_rule(f"on t where {condition} do invoke f")
    pattern = dict(spec.pattern)
    assert pattern.pop("type") == ["t"]
    return pattern, spec.condition


# --- event types, sources, subjects ------------------------------------------------------


@pytest.mark.parametrize(
    ("types", "matchers"),
    [
        ("health.*", [{"prefix": "health."}]),
        ("*.created", [{"suffix": ".created"}]),
        ("db.*.updated", [{"wildcard": "db.*.updated"}]),
        ("*", [{"prefix": ""}]),
        ("a.b or c.d", ["a.b", "c.d"]),
        ('"odd type!"', ["odd type!"]),
    ],
)
def test_event_types(types: str, matchers: list[object]) -> None:
    assert parse_rule(f"on {types} do invoke f").pattern == {"type": matchers}


def test_from_and_about_in_either_order_with_alternatives() -> None:
    spec = parse_rule("on t about alice or bob from sensors/* do invoke f")
    assert spec.pattern == {
        "type": ["t"],
        "subject": ["alice", "bob"],
        "source": [{"prefix": "sensors/"}],
    }


def test_from_matches_the_source_and_everything_below_it() -> None:
    spec = parse_rule("on t from https://example.com/shop do invoke f")
    assert spec.pattern["source"] == [
        "https://example.com/shop",
        {"prefix": "https://example.com/shop/"},
    ]


# --- conditions compiled into the pattern ------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "pattern"),
    [
        ('status == "open"', {"data": {"status": ["open"]}}),
        ("count == 3", {"data": {"count": [3]}}),
        ("urgent == true", {"data": {"urgent": [True]}}),
        ("owner == null", {"data": {"owner": [None]}}),
        ('status != "done"', {"data": {"status": [{"anything-but": "done"}]}}),
        ("level != 3", {"data": {"level": [{"anything-but": 3}]}}),
        ("x >= 1.5", {"data": {"x": [{"numeric": [">=", 1.5]}]}}),
        ("140 < systolic", {"data": {"systolic": [{"numeric": [">", 140]}]}}),
        ("x <= -2", {"data": {"x": [{"numeric": ["<=", -2]}]}}),
        ("reading.systolic > 1", {"data": {"reading": {"systolic": [{"numeric": [">", 1]}]}}}),
        ('name startswith "Dr "', {"data": {"name": [{"prefix": "Dr "}]}}),
        ("key endswith '.csv'", {"data": {"key": [{"suffix": ".csv"}]}}),
        ('note contains "urgent"', {"data": {"note": [{"wildcard": "*urgent*"}]}}),
        ('note contains "a*b"', {"data": {"note": [{"wildcard": "*a\\*b*"}]}}),
        ('kind in ["a", "b", 3]', {"data": {"kind": ["a", "b", 3]}}),
        ('"mark" in changed', {"data": {"changed": ["mark"]}}),
        ("owner exists", {"data": {"owner": [{"exists": True}]}}),
        ("not owner exists", {"data": {"owner": [{"exists": False}]}}),
        ("owner not exists", {"data": {"owner": [{"exists": False}]}}),
        ('$subject startswith "pat-"', {"subject": [{"prefix": "pat-"}]}),
        (
            "a > 1 and b < 2",
            {"data": {"a": [{"numeric": [">", 1]}], "b": [{"numeric": ["<", 2]}]}},
        ),
        (
            "not (a exists or b exists)",
            {"data": {"a": [{"exists": False}], "b": [{"exists": False}]}},
        ),
        (
            "a == 1 or (b == 2 or c == 3)",
            {
                "$or": [
                    {"data": {"a": [1]}},
                    {"data": {"b": [2]}},
                    {"data": {"c": [3]}},
                ]
            },
        ),
        (
            "(a == 1 and b == 2) or c == 3",
            {"$or": [{"data": {"a": [1], "b": [2]}}, {"data": {"c": [3]}}]},
        ),
    ],
)
def test_conditions_compiled_into_the_pattern(condition: str, pattern: dict[str, object]) -> None:
    assert where(condition) == (pattern, None)


# --- conditions that stay in CEL ---------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "pattern", "cel"),
    [
        (
            "not (a == 1 and b == 2)",
            {},
            '!(1.0 in numbers["data.a"]) || !(2.0 in numbers["data.b"])',
        ),
        (
            "a > b",
            {},
            'highest["data.a"] > lowest["data.b"]',
        ),
        ('not status == "done"', {}, '!("done" in strings["data.status"])'),
        (
            'not kind in ["a", "b"]',
            {},
            '!(strings["data.kind"].exists(v, v in ["a", "b"]))',
        ),
        (
            'not kind in [1, "b"]',
            {},
            '!(values["data.kind"].exists(v, (type(v) == double && v == 1.0)'
            ' || (type(v) == string && v == "b")))',
        ),
        (
            "owner != null",
            {},
            'values["data.owner"].exists(v, !(type(v) == null_type))',
        ),
        (
            # Same field twice: the first test is indexed, the second checked in CEL, because
            # on a list field each test may be met by a different element.
            "x > 1 and x < 5",
            {"data": {"x": [{"numeric": [">", 1]}]}},
            'lowest["data.x"] < 5.0',
        ),
        (
            # Fields under one parent: the matcher would take both from one list element.
            "r.a == 1 and r.b == 2",
            {"data": {"r": {"a": [1]}}},
            '2.0 in numbers["data.r.b"]',
        ),
        (
            "(a == 1 or b == 1) and (c == 1 or d == 1)",
            {"$or": [{"data": {"a": [1]}}, {"data": {"b": [1]}}]},
            '1.0 in numbers["data.c"] || 1.0 in numbers["data.d"]',
        ),
    ],
)
def test_conditions_left_in_cel(condition: str, pattern: dict[str, object], cel: str) -> None:
    assert where(condition) == (pattern, cel)


def test_about_and_a_subject_condition_do_not_clash() -> None:
    spec = parse_rule('on t about alice where $subject != "bob" do invoke f')
    assert spec.pattern == {"type": ["t"], "subject": ["alice"]}
    assert spec.condition == ('values["subject"].exists(v, !(type(v) == string && v == "bob"))')
    assert spec.condition is not None
    condition = Condition(spec.condition)
    assert condition.evaluate({"type": "t", "subject": "alice"}) is True
    assert condition.evaluate({"type": "t", "subject": "bob"}) is False


def test_string_escapes() -> None:
    pattern, _ = where(r'a == "say \"hi\" \u00e9" and b == ' + "'it\\'s'")
    assert pattern == {"data": {"a": ['say "hi" é'], "b": ["it's"]}}


# --- windows -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clause", "window"),
    [
        ("3 times within 30s", CountWindow(3, 30.0, None)),
        ("1 time within 2w", CountWindow(1, 14 * 86400.0, None)),
        ("5 times within 1.5h per source", CountWindow(5, 5400.0, "source")),
        ("5 times within 1h per patient.id", CountWindow(5, 3600.0, "data.patient.id")),
        ("5 times within 1h per data.subject", CountWindow(5, 3600.0, "data.subject")),
        ("5 times within 1h per $myext", CountWindow(5, 3600.0, "myext")),
    ],
)
def test_count_windows(clause: str, window: CountWindow) -> None:
    assert parse_rule(f"on t {clause} do invoke f").window == window


def test_sustain_window_per_subject_and_throttle_every() -> None:
    spec = parse_rule(
        "on t where x > 1 for 10m per subject at most once every 1d per room do invoke f"
    )
    assert spec.window == SustainWindow(600.0, "subject")
    assert spec.throttle == Throttle(86400.0, "data.room")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("on t 0 times within 1h do invoke f", "at least 1, got 0 at column 6"),
        ("on t 2.5 times within 1h do invoke f", "at least 1, got 2.5 at column 6"),
        ("on t 3 times within 0s do invoke f", "duration 0s at column 21 must be more than zero"),
        ("on t where x > 1 for -5m do invoke f", "duration -5m at column 22 must be"),
        ("on t for 10m do invoke f", "has no where-condition"),
    ],
)
def test_window_value_errors(text: str, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(text)
    assert message in str(caught.value)


# --- actions -----------------------------------------------------------------------------


def test_several_actions_with_and_or_commas() -> None:
    spec = parse_rule(
        'on t do invoke a with {"x": [1, 2]}, emit b.c and notify bob cc alice, carol, '
        'mqtt alerts/+/heat with {"qos": 1} and webhook "https://example.com/h?x=1" '
        "and bcc dave and forward archive@example.com"
    )
    assert spec.actions == (
        Action("invoke", "a", {"x": [1, 2]}),
        Action("emit", "b.c"),
        Action("notify", "bob", None, ("alice", "carol")),
        Action("mqtt", "alerts/+/heat", {"qos": 1}),
        Action("webhook", "https://example.com/h?x=1"),
        Action("bcc", "dave"),
        Action("forward", "archive@example.com"),
    )
    assert all(a.available for a in spec.actions)


def test_notify_with_cc_and_arguments() -> None:
    spec = parse_rule('on t do notify bob.mobile cc alice.family with {"template": "bp"}')
    assert spec.actions == (Action("notify", "bob.mobile", {"template": "bp"}, ("alice.family",)),)


def test_a_comma_then_an_action_word_ends_the_cc_list() -> None:
    spec = parse_rule("on t do notify bob cc alice, carol, invoke log")
    assert spec.actions == (
        Action("notify", "bob", None, ("alice", "carol")),
        Action("invoke", "log"),
    )


def test_rules_may_span_lines_and_compare_with_attributes() -> None:
    spec = parse_rule('on t\n  where owner == $subject\n    and status not in ["a"]\n  do invoke f')
    assert spec.pattern == {"type": ["t"]}
    assert spec.condition is not None
    condition = Condition(spec.condition)
    assert condition.evaluate({"subject": "bob", "data": {"owner": "bob", "status": "b"}})
    assert not condition.evaluate({"subject": "bob", "data": {"owner": "bob", "status": "a"}})
    assert not condition.evaluate({"subject": "bob", "data": {"owner": "eve", "status": "b"}})


def test_too_repetitive_contains_stays_in_cel_and_bad_globs_are_rule_errors() -> None:
    pattern, cel = where('note contains "xxxxxxxxxxxxxxxxxxxx"')
    assert pattern == {}
    assert cel == 'strings["data.note"].exists(v, v.contains("xxxxxxxxxxxxxxxxxxxx"))'
    with pytest.raises(RuleError, match='the "on … from … about" part: type: wildcard'):
        parse_rule("on a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b do invoke f")


def test_pattern_and_base_pattern_share_no_objects() -> None:
    spec = parse_rule("on t where x > 1 for 1m do invoke f")
    assert spec.base_pattern is not None
    assert spec.pattern["type"] == spec.base_pattern["type"]
    assert spec.pattern["type"] is not spec.base_pattern["type"]


def test_field_names_in_any_script() -> None:
    assert where("température > 30 and größe == 'L'") == (
        {"data": {"température": [{"numeric": [">", 30]}], "größe": ["L"]}},
        None,
    )


def test_bcc_and_forward_take_several_recipients_and_forward_reads_to() -> None:
    spec = parse_rule(
        "on mail.received do bcc trent, t@example.org and forward to archive@example.org,"
        " exams.office, invoke log"
    )
    assert spec.actions == (
        Action("bcc", "trent", None, ("t@example.org",)),
        Action("forward", "archive@example.org", None, ("exams.office",)),
        Action("invoke", "log"),
    )
    assert parse_rule("on mail.received do forward to").actions == (Action("forward", "to"),)
    assert rule_from_json(rule_to_json(spec)).actions == spec.actions
