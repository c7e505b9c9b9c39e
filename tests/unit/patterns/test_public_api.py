"""The public surface of ondo.patterns, as the rules engine uses it."""

from __future__ import annotations

import inspect

import ondo.patterns
from ondo.errors import PatternError


def test_all_lists_the_public_api() -> None:
    assert sorted(ondo.patterns.__all__) == [
        "CompiledPattern",
        "Matcher",
        "PatternError",
        "compile",
        "explain",
    ]
    for name in ondo.patterns.__all__:
        assert getattr(ondo.patterns, name) is not None


def test_pattern_error_is_the_one_in_errors() -> None:
    assert ondo.patterns.PatternError is PatternError


def test_signatures() -> None:
    assert list(inspect.signature(ondo.patterns.compile).parameters) == ["pattern"]
    assert list(inspect.signature(ondo.patterns.explain).parameters) == ["pattern", "event"]
    matcher = ondo.patterns.Matcher
    assert list(inspect.signature(matcher.add).parameters) == ["self", "rule_id", "pattern"]
    assert list(inspect.signature(matcher.remove).parameters) == ["self", "rule_id"]
    assert list(inspect.signature(matcher.matching).parameters) == ["self", "event"]
