"""`notify … saying "TEMPLATE"` in the rule language and its JSON form."""

from __future__ import annotations

import pytest

from ondo.actions.codec import action_from_json, action_to_json
from ondo.actions.model import Action
from ondo.errors import RuleError, RuleSyntaxError
from ondo.rules.model import parse_rule, rule_from_json, rule_to_json


def test_saying_follows_the_copies_and_round_trips() -> None:
    spec = parse_rule(
        "on bp where systolic > 140 do notify bob.mobile cc alice.family, carol"
        ' saying "BP {data.systolic} for {subject}" with {"title": "BP"} and invoke log'
    )
    notify, invoke = spec.actions
    assert notify == Action(
        "notify",
        "bob.mobile",
        {"title": "BP"},
        ("alice.family", "carol"),
        "BP {data.systolic} for {subject}",
    )
    assert invoke == Action("invoke", "log")
    assert rule_from_json(rule_to_json(spec)) == spec
    assert action_from_json(action_to_json(notify)) == notify
    assert "saying" not in rule_to_json(spec)["actions"][1]  # older stored forms stay equal


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("on x do notify bob saying hello", 'expected the message in quotes after "saying"'),
        ('on x do notify saying "hi"', 'expected what to notify after "notify"'),
        ('on x do invoke f saying "hi"', "unexpected"),
    ],
)
def test_saying_needs_a_quoted_message_on_notify(text: str, words: str) -> None:
    with pytest.raises(RuleSyntaxError, match=words):
        parse_rule(text)


def test_the_json_form_takes_saying_on_notify_only() -> None:
    rule = {"pattern": {"type": ["x"]}, "actions": [{"kind": "emit", "target": "y", "saying": "z"}]}
    with pytest.raises(RuleError, match=r"actions\[0\].saying"):
        rule_from_json(rule)
