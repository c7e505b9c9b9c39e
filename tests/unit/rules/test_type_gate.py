"""The engine's type gate: which event types may skip matching (exactly those no rule can match)."""

from __future__ import annotations

from typing import Any

import pytest

from ondo.patterns import Matcher
from ondo.rules.engine import _type_conditions


def gate_allows(patterns: list[dict[str, Any]], event_type: str) -> bool:
    matcher = Matcher()
    for n, pattern in enumerate(patterns):
        matcher.add(f"r{n}", pattern)
    gate = _type_conditions(matcher)
    return gate is None or any(field.test(event_type) for field in gate)


@pytest.mark.parametrize(
    ("patterns", "event_type", "allowed"),
    [
        ([{"type": ["bench.hit"]}], "ondo.action.succeeded", False),
        ([{"type": ["bench.hit"]}], "bench.hit", True),
        ([{"type": [{"prefix": "ondo.action."}]}], "ondo.action.failed", True),
        ([{"type": ["a"]}, {"source": ["s"]}], "ondo.action.succeeded", True),  # no type: any
        ([{"$or": [{"type": ["a"]}, {"source": ["s"]}]}], "zzz", True),
        ([{"type": [{"exists": False}, "a"]}], "zzz", True),  # absent-ok: not a gate
        ([{"type": [{"anything-but": "b"}]}], "b", False),
        ([], "anything", False),
    ],
)
def test_gate_is_exact(patterns: list[dict[str, Any]], event_type: str, allowed: bool) -> None:
    assert gate_allows(patterns, event_type) is allowed
    event = {"specversion": "1.0", "id": "1", "source": "x", "type": event_type}
    matcher = Matcher()
    for n, pattern in enumerate(patterns):
        matcher.add(f"r{n}", pattern)
    if matcher.matching(event):  # whatever matches must pass the gate
        assert allowed


def test_gate_switches_off_past_its_size_limit() -> None:
    """Many rules: no per-event loop over their types; the Matcher decides alone."""
    from ondo.rules.engine import TYPE_GATE_MAX

    few = [{"type": [f"t{n}"]} for n in range(TYPE_GATE_MAX)]
    many = [{"type": [f"t{n}"]} for n in range(TYPE_GATE_MAX + 1)]
    assert not gate_allows(few, "ondo.action.succeeded")
    matcher = Matcher()
    for n, pattern in enumerate(many):
        matcher.add(f"r{n}", pattern)
    assert _type_conditions(matcher) is None
