"""What a notification says: templates checked when the rule is made, filled from the event,
and the default sentence naming only the rule, type, subject and the condition's fields."""

from __future__ import annotations

import pytest

from ondo.actions.message import MAX_VALUE_CHARS, check_template, default_message, render
from ondo.errors import RuleError

EVENT = {
    "id": "e-1",
    "type": "health.blood_pressure",
    "source": "fitbit",
    "subject": "alice",
    "data": {"systolic": 150, "diastolic": 85, "diagnosis": "confidential", "tags": ["a", "b"]},
}


def test_a_template_names_its_fields() -> None:
    text = "BP {data.systolic}/{data.diastolic} for {subject} ({type}, rule {rule}) {{literal}}"
    assert check_template(text, "here") == [
        "data.systolic",
        "data.diastolic",
        "subject",
        "type",
        "rule",
    ]
    filled, warnings = render(text, EVENT, "bp-alert")
    assert filled == "BP 150/85 for alice (health.blood_pressure, rule bp-alert) {literal}"
    assert warnings == []


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("hello {name}", "{name} is not a field an event has"),
        ("hello {data.a b}", "{data.a b} is not a field"),
        ("hello {}", "{} is not a field"),
        ("unclosed {data.x", "unmatched '{' at character 10"),
        ("stray } here", "unmatched '}' at character 7"),
    ],
)
def test_a_template_it_cannot_fill_is_refused(text: str, words: str) -> None:
    with pytest.raises(RuleError, match=words.replace("{", r"\{").replace("}", r"\}")):
        check_template(text, "notify bob")


def test_a_missing_field_is_a_visible_placeholder_and_a_warning() -> None:
    filled, warnings = render("{data.systolic} {data.note} {data.tags.1}", EVENT, "r")
    assert filled == "150 [no data.note] b"
    assert warnings == ["the event has no data.note"]
    _, no_subject = render("{subject}", {"type": "t"}, "r")
    assert no_subject == ["the event has no subject"]


def test_the_default_message_names_only_the_fields_the_condition_used() -> None:
    title, body = default_message(EVENT, "bp-alert", ["data.systolic", "data.diastolic"])
    assert title == "bp-alert: health.blood_pressure about alice"
    assert body == (
        "Rule bp-alert fired on a health.blood_pressure event about alice:"
        " systolic is 150, diastolic is 85."
    )
    assert "confidential" not in title + body and "fitbit" not in body
    _, plain = default_message({"type": "device.alarm"}, "pager", [])
    assert plain == "Rule pager fired on a device.alarm event."
    _, missing = default_message(EVENT, "r", ["data.pulse"])
    assert missing.endswith(": no pulse.")


def test_long_values_are_cut() -> None:
    filled, _ = render("{data.x}", {"data": {"x": "y" * 1000}}, "r")
    assert len(filled) == MAX_VALUE_CHARS and filled.endswith("…")
