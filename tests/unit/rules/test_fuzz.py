"""Any text either parses or fails with RuleSyntaxError / RuleError — never another exception."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from ondo.errors import RuleError, RuleSyntaxError
from ondo.rules.model import parse_rule, rule_from_json, rule_to_json

PIECES = [
    "on",
    "from",
    "about",
    "where",
    "do",
    "and",
    "or",
    "not",
    "in",
    "exists",
    "contains",
    "startswith",
    "endswith",
    "for",
    "at",
    "most",
    "once",
    "per",
    "every",
    "times",
    "within",
    "invoke",
    "emit",
    "notify",
    "cc",
    "bcc",
    "forward",
    "webhook",
    "mqtt",
    "with",
    "t",
    "a.b",
    "x",
    "$subject",
    "$Bad",
    "*",
    "a*",
    "10",
    "0",
    "-1",
    "2.5",
    "30d",
    "0s",
    "1x",
    "==",
    "!=",
    "<",
    ">=",
    "=>",
    "=",
    "!",
    "(",
    ")",
    "[",
    "]",
    ",",
    '"s"',
    "'q'",
    '"open',
    '{"a": 1}',
    "{",
    "true",
    "null",
    "?",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=14))
def test_token_soup_fails_cleanly(pieces: list[str]) -> None:
    for text in (" ".join(pieces), " ".join(["on", "t", *pieces])):
        try:
            spec = parse_rule(text)
        except (RuleSyntaxError, RuleError):
            continue
        assert rule_from_json(rule_to_json(spec)) == spec


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_text_fails_cleanly(text: str) -> None:
    with contextlib.suppress(RuleSyntaxError, RuleError):
        parse_rule(text)
