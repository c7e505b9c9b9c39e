"""The data fields a rule's condition tests, from its pattern and its residual CEL."""

from __future__ import annotations

from ondo.rules.fields import condition_fields
from ondo.rules.model import parse_rule, rule_from_json


def test_fields_in_the_pattern_and_in_cel() -> None:
    either = "on health.bp about alice where systolic > 140 or diastolic > 90 do notify bob"
    assert condition_fields(parse_rule(either)) == ("data.systolic", "data.diastolic")
    compared = "on h where systolic > diastolic and reading.kind == 'arm' do notify bob"
    assert condition_fields(parse_rule(compared)) == (
        "data.reading.kind",
        "data.systolic",
        "data.diastolic",
    )
    assert condition_fields(parse_rule("on h about alice do notify bob")) == ()


def test_fields_of_a_rule_written_in_cel() -> None:
    spec = rule_from_json(
        {
            "pattern": {"type": ["a"]},
            "condition": 'data.temp > 3 && event.data.room.name == "data.not_a_field"',
            "actions": [{"kind": "notify", "target": "bob"}],
        }
    )
    assert condition_fields(spec) == ("data.temp", "data.room.name")
