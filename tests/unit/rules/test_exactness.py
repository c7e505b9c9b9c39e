"""The compiled pattern (run by ondo.patterns) and the residual CEL together mean exactly the
condition as documented in docs/rules.md. Checked against a small reference evaluator on
random conditions and random events, and on the example sentences."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ondo.patterns import Matcher
from ondo.patterns import compile as compile_pattern
from ondo.rules.conditions import Condition, to_cel
from ondo.rules.model import RuleSpec, parse_rule
from ondo.rules.parser import parse_condition
from tests.unit.rules.test_parse_examples import BLOOD_PRESSURE, CSV, MARKS

Event = dict[str, Any]
Predicate = Callable[[Event], bool]

# --- reference semantics: a test on a field holds when any value the path reaches passes ---


def reference_values(event: Event, path: str) -> list[Any]:
    nodes: list[Any] = [event]
    for key in path.split("."):
        nodes = [
            item
            for node in nodes
            if isinstance(node, dict) and key in node
            for item in _flat(node[key])
        ]
    return [node for node in nodes if not isinstance(node, dict)]


def _flat(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [item for element in value for item in _flat(element)]
    return [value]


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def same(a: Any, b: Any) -> bool:
    if is_number(a) and is_number(b):
        return bool(a == b)
    return type(a) is type(b) and a == b


ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}

# --- random conditions (text + reference predicate) and events -----------------------------

FIELDS = {"a": "data.a", "b": "data.b", "r.x": "data.r.x", "r.y": "data.r.y", "$subject": "subject"}
SCALARS = [1, 2, 2.5, "x", "xy", "yx", True, False, None]


def literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, str) else str(value)


def any_value(path: str, test: Callable[[Any], bool]) -> Predicate:
    return lambda event: any(test(v) for v in reference_values(event, path))


@st.composite
def leaf(draw: st.DrawFn) -> tuple[str, Predicate]:
    name = draw(st.sampled_from(sorted(FIELDS)))
    path = FIELDS[name]
    kind = draw(st.sampled_from(["==", "!=", "order", "in", "has", "text", "exists", "fields"]))
    value = draw(st.sampled_from(SCALARS))
    number = draw(st.sampled_from([1, 2, 2.5]))
    text = draw(st.sampled_from(["x", "y", "xy"]))
    if kind == "==":
        return f"{name} == {literal(value)}", any_value(path, lambda v: same(v, value))
    if kind == "!=":
        return f"{name} != {literal(value)}", any_value(path, lambda v: not same(v, value))
    if kind == "order":
        op = draw(st.sampled_from(sorted(ORDER)))
        return f"{name} {op} {number}", any_value(
            path, lambda v: is_number(v) and ORDER[op](v, number)
        )
    if kind == "in":
        items = draw(st.lists(st.sampled_from(SCALARS), min_size=1, max_size=3))
        written = ", ".join(literal(i) for i in items)
        return f"{name} in [{written}]", any_value(path, lambda v: any(same(v, i) for i in items))
    if kind == "has":
        return f"{literal(value)} in {name}", any_value(path, lambda v: same(v, value))
    if kind == "text":
        word = draw(st.sampled_from(["startswith", "endswith", "contains"]))
        method = {
            "startswith": str.startswith,
            "endswith": str.endswith,
            "contains": str.__contains__,
        }[word]
        return f'{name} {word} "{text}"', any_value(
            path, lambda v: isinstance(v, str) and method(v, text)
        )
    if kind == "exists":
        return f"{name} exists", lambda event: bool(reference_values(event, path))
    other = FIELDS[draw(st.sampled_from(sorted(FIELDS)))]
    op = draw(st.sampled_from([*sorted(ORDER), "==", "!="]))
    other_name = next(n for n, p in FIELDS.items() if p == other)

    def compare(event: Event) -> bool:
        pairs = [
            (x, y) for x in reference_values(event, path) for y in reference_values(event, other)
        ]
        if op in ("==", "!="):
            return any(same(x, y) == (op == "==") for x, y in pairs)
        return any(is_number(x) and is_number(y) and ORDER[op](x, y) for x, y in pairs)

    return f"{name} {op} {other_name}", compare


def combine(children: st.SearchStrategy[tuple[str, Predicate]]) -> Any:
    def both(pair: list[tuple[str, Predicate]], word: str) -> tuple[str, Predicate]:
        (lt, lp), (rt, rp) = pair
        if word == "and":
            return f"({lt} and {rt})", lambda e: lp(e) and rp(e)
        return f"({lt} or {rt})", lambda e: lp(e) or rp(e)

    return st.one_of(
        children.map(lambda c: (f"not ({c[0]})", lambda e: not c[1](e))),
        st.lists(children, min_size=2, max_size=2).map(lambda p: both(p, "and")),
        st.lists(children, min_size=2, max_size=2).map(lambda p: both(p, "or")),
    )


conditions = st.recursive(leaf(), combine, max_leaves=5)
values = st.sampled_from(SCALARS)
field_value = st.one_of(values, st.lists(values, max_size=3))
inner = st.fixed_dictionaries({}, optional={"x": field_value, "y": field_value})
data = st.fixed_dictionaries(
    {},
    optional={
        "a": field_value,
        "b": field_value,
        "r": st.one_of(inner, st.lists(inner, max_size=3), values),
    },
)
events = st.builds(
    lambda payload, subject: {
        "id": "1",
        "source": "s",
        "type": "t",
        "subject": subject,
        "data": payload,
    },
    data,
    st.sampled_from(["x", "xy", "alice"]),
)


def rule_matches(spec: RuleSpec, event: Event) -> bool:
    """What the engine does: the indexed matcher, then the residual condition."""
    matcher = Matcher()
    matcher.add("rule", spec.pattern)
    by_index = "rule" in matcher.matching(event)
    assert by_index == compile_pattern(spec.pattern).matches(event)
    return by_index and (spec.condition is None or Condition(spec.condition).evaluate(event))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions, st.lists(events, min_size=1, max_size=6))
def test_pattern_and_residual_mean_exactly_the_condition(
    condition: tuple[str, Predicate], sample: list[Event]
) -> None:
    text, predicate = condition
    spec = parse_rule(f"on t where {text} do invoke f")
    full = Condition(to_cel(parse_condition(text)))
    for event in sample:
        expected = predicate(event)
        assert rule_matches(spec, event) == expected, (text, event, spec)
        assert full.evaluate(event) == expected, (text, event, full)


def test_blood_pressure_matches_high_readings_only() -> None:
    spec = parse_rule(BLOOD_PRESSURE)
    alice = {"type": "health.blood_pressure", "source": "clinic", "subject": "alice"}
    assert rule_matches(spec, {**alice, "data": {"systolic": 150, "diastolic": 80}})
    assert rule_matches(spec, {**alice, "data": {"systolic": 120, "diastolic": 95}})
    assert not rule_matches(spec, {**alice, "data": {"systolic": 120, "diastolic": 80}})
    assert not rule_matches(spec, {**alice, "subject": "bob", "data": {"systolic": 150}})


def test_csv_rule_matches_the_source_and_sources_below_it() -> None:
    spec = parse_rule(CSV)
    created = {"type": "object.created", "data": {"key": "in/marks.csv"}}
    assert rule_matches(spec, {**created, "source": "ftp"})
    assert rule_matches(spec, {**created, "source": "ftp/uploads"})
    assert not rule_matches(spec, {**created, "source": "ftpx"})
    assert not rule_matches(spec, {**created, "source": "ftp", "data": {"key": "a.txt"}})


def test_marks_rule_matches_changed_lists() -> None:
    spec = parse_rule(MARKS)
    row = {"type": "db.row.updated", "source": "school/db"}
    assert rule_matches(spec, {**row, "data": {"table": "marks", "changed": ["mark", "note"]}})
    assert not rule_matches(spec, {**row, "data": {"table": "marks", "changed": ["note"]}})
    assert not rule_matches(spec, {**row, "data": {"table": "pupils", "changed": ["mark"]}})


TRICKY = [
    ("r.x == 1 and r.y == 2", {"r": [{"x": 1}, {"y": 2}]}, True),
    ("r.x == 1 and r.y == 2", {"r": [{"x": 1, "y": 2}]}, True),
    ("r.x == 1 and not r.y exists", {"r": [{"x": 1}, {"y": 2}]}, False),
    ("x > 1 and x < 5", {"x": [0, 10]}, True),
    ("x > 1 and x < 5", {"x": [10]}, False),
    ('a != "x"', {}, False),
    ('a != "x"', {"a": None}, True),
    ('a != "x"', {"a": 5}, True),
    ('a != "x"', {"a": ["x", "y"]}, True),
    ('a != "x"', {"a": ["x"]}, False),
    ('a != "x"', {"a": {"b": 1}}, False),
    ("a != 1", {"a": 1.0}, False),
    ("not a exists", {"a": {"b": 1}}, True),
    ("not a exists", {"a": []}, True),
    ("a exists", {"a": None}, True),
    ("a == 1", {"a": 1.0}, True),
    ("a == 1", {"a": True}, False),
    ("a == true", {"a": 1}, False),
    ('"x" in a', {"a": "x"}, True),
    ('a contains "y*z"', {"a": "xy*zx"}, True),
    ('a contains "y*z"', {"a": "xyzx"}, False),
    ('a contains "b\\\\c"', {"a": "ab\\cd"}, True),
    ("a.b == 1", {"a.b": 1}, True),
    ('$subject == "alice" or a > 1', {"a": 0}, True),
]


@pytest.mark.parametrize(("condition", "payload", "expected"), TRICKY)
def test_tricky_cases(condition: str, payload: dict[str, Any], expected: bool) -> None:
    spec = parse_rule(f"on t where {condition} do invoke f")
    event = {"type": "t", "source": "s", "subject": "alice", "data": payload}
    assert rule_matches(spec, event) is expected
    full = Condition(to_cel(parse_condition(condition)))
    assert full.evaluate(event) is expected, "the all-CEL form must agree too"
