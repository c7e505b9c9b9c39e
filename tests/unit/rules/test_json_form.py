"""The JSON form of a rule: round trip, `{"text": …}`, and validation naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ondo.actions.model import Action
from ondo.errors import RuleError
from ondo.rules.model import (
    CountWindow,
    RuleSpec,
    SustainWindow,
    Throttle,
    parse_rule,
    rule_from_json,
    rule_to_json,
)
from tests.unit.rules.test_parse_examples import (
    BLOOD_PRESSURE,
    CLAIMS,
    CSV,
    HEAT,
    LOGIN,
    MARKS,
)


@pytest.mark.parametrize(
    "text",
    [
        BLOOD_PRESSURE,
        CLAIMS,
        CSV,
        MARKS,
        LOGIN,
        HEAT,
        'on t where a > b do invoke f with {"x": [1, {"y": null}]} and mqtt a/b',
    ],
)
def test_round_trip_through_json_text(text: str) -> None:
    spec = parse_rule(text)
    again = rule_from_json(json.loads(json.dumps(rule_to_json(spec))))
    assert again == spec


def test_text_alone_is_parsed() -> None:
    assert rule_from_json({"text": LOGIN}) == parse_rule(LOGIN)


def test_hand_written_json_rule() -> None:
    spec = rule_from_json(
        {
            "pattern": {"type": ["sensor.temperature"]},
            "condition": "data.celsius > 30",
            "window": {"for_s": 600, "per": "subject"},
            "throttle": {"per_s": 3600, "per": None},
            "actions": [{"kind": "emit", "target": "alert.heat"}],
        }
    )
    assert spec == RuleSpec(
        pattern={"type": ["sensor.temperature"]},
        condition="data.celsius > 30",
        window=SustainWindow(600.0, "subject"),
        throttle=Throttle(3600.0, None),
        actions=(Action("emit", "alert.heat"),),
        base_pattern={"type": ["sensor.temperature"]},
    )
    counted = rule_from_json(
        {
            "pattern": {"type": ["x"]},
            "window": {"kind": "count", "count": 2, "within_s": 60, "per": "data.user.id"},
            "actions": [{"kind": "invoke", "target": "f"}],
        }
    )
    assert counted.window == CountWindow(2, 60.0, "data.user.id")
    assert counted.condition is None


GOOD: dict[str, Any] = {"pattern": {"type": ["x"]}, "actions": [{"kind": "invoke", "target": "f"}]}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pattern": {}}, "pattern must be a non-empty EventBridge pattern"),
        ({"pattern": {"type": "x"}}, "pattern: type"),
        ({"base_pattern": {"type": [{"prefix": 1}]}}, "base_pattern: type"),
        ({"condition": "data.x >"}, "condition: condition is not valid CEL"),
        ({"condition": 3}, "condition must be a string or null"),
        ({"window": {"count": 0, "within_s": 1}}, "window.count must be a whole number"),
        ({"window": {"count": 2, "within_s": -1}}, "window.within_s must be a duration"),
        ({"window": {"count": 2, "within_s": "1h"}}, "window.within_s must be a number"),
        ({"window": {"for_s": 0}}, "window.for_s must be a duration"),
        ({"window": {"kind": "tumbling"}}, 'window.kind must be "count" or "sustain"'),
        ({"window": {"for_s": 1, "per": "a b"}}, "window.per must be an attribute name"),
        ({"throttle": {"per_s": 1, "every": 2}}, "throttle: unknown field 'every'"),
        ({"actions": []}, "actions must be a non-empty list"),
        ({"actions": [{"kind": "dance", "target": "x"}]}, "actions[0].kind must be one of"),
        ({"actions": [{"kind": "invoke", "target": ""}]}, "actions[0].target must be"),
        ({"actions": [{"kind": "invoke", "target": "f", "args": []}]}, "actions[0].args"),
        ({"actions": [{"kind": "notify", "target": "b", "cc": [1]}]}, "actions[0].cc"),
        ({"colour": "red"}, "unknown rule field 'colour'"),
    ],
)
def test_invalid_json_names_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleError) as caught:
        rule_from_json({**GOOD, **change})
    assert message in str(caught.value)
